"""report.md for every report astrodet writes: one renderer, one table style, one way to show run metadata.

Why one module: detection and classification reports sit side by side in a run folder and should read alike. A
report module contributes only its own sections (``detection_sections`` in :mod:`astrodet.evaluation.report`,
``classification_sections`` in :mod:`astrodet.evaluation.classification`); :func:`render_markdown` adds the title,
the run metadata and the plot links, choosing the sections by the report's ``task``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def plain(value: Any) -> Any:
    """JSON-able copy: numpy scalars and arrays to Python, paths to strings, non-finite floats to None."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def fmt(value: Any, digits: int = 3) -> str:
    """A table cell: None as a dash, floats rounded, pipes escaped so a value cannot break the table."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value).replace("|", "\\|")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]


def _meta_cell(value: Any) -> Any:
    """Meta is free-form: keep small floats (learning rates) and nested values readable; None stays a dash."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return json.dumps(value) if isinstance(value, dict | list) else value


def _meta_section(meta: Mapping[str, Any]) -> list[str]:
    if not meta:
        return []
    return [*table(("run", "value"), [(k, _meta_cell(v)) for k, v in meta.items()]), ""]


def render_markdown(report: Mapping[str, Any]) -> str:
    """A readable summary of a report dict: title, run metadata, the task's sections, then the plots."""
    # Imported here: the report modules import this one for their tables.
    if report.get("task") == "classification":
        from astrodet.evaluation.classification import classification_sections as sections

        title = "# astrodet classification report"
    else:
        from astrodet.evaluation.report import detection_sections as sections

        title = "# astrodet evaluation report"
    lines = [title, "", *_meta_section(report.get("meta") or {}), *sections(report)]
    if report.get("plots"):
        lines += ["## Plots", ""] + [f"![{name}]({file})" for name, file in report["plots"].items()] + [""]
    return "\n".join(lines)
