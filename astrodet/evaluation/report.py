"""The evaluation report: OUTPUT_DIR/report.json (numbers), report.md (for people) and PNG plots.

Every file is written atomically; report.json is written last, so its presence means the whole report is there.
The JSON is the detection result of :func:`astrodet.evaluation.detection.evaluate_detections` plus ``coco`` (from
:func:`astrodet.evaluation.coco_params.run_coco_bbox` or an adapter's evaluator), free-form ``meta`` and ``plots``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from astrodet import __version__
from astrodet.errors import AstrodetInputError
from astrodet.evaluation import plots
from astrodet.io import atomic_write_json, atomic_write_text

REPORT_JSON, REPORT_MD = "report.json", "report.md"
PLOT_FILES = {
    "pr_curve": "pr_curve.png",
    "threshold_curves": "threshold_curves.png",
    "bins": "bins.png",
    "examples": "examples.png",
}
COCO_HEADLINE = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def _plain(value: Any) -> Any:
    """JSON-able copy: numpy scalars and arrays to Python, paths to strings, non-finite floats to None."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def build_report(
    detection: Mapping[str, Any],
    coco: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    plot_files: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The report dict: ``astrodet_version``, ``meta``, ``coco`` (None if not run), the detection keys, ``plots``."""
    for key in ("completeness", "purity", "score_threshold", "matching", "per_class", "curves", "bins"):
        if key not in detection:
            raise AstrodetInputError(f"detection result lacks {key!r}: pass the dict from evaluate_detections")
    report = {"astrodet_version": __version__, "meta": dict(meta or {}), "coco": None if coco is None else dict(coco)}
    report.update(detection)
    report["plots"] = dict(plot_files or {})
    return _plain(report)


def _fmt(value: Any, digits: int = 3) -> str:
    """A table cell: None as a dash, floats rounded, pipes escaped so a value cannot break the table."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value).replace("|", "\\|")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]


def _headline(report: Mapping[str, Any]) -> list[str]:
    n = report.get("n_matched")
    coco = report.get("coco") or {}
    rows = [
        ("Completeness", f"{_fmt(report['completeness'])} ({n} of {report.get('n_true')} true objects)"),
        ("Purity", f"{_fmt(report['purity'])} ({n} of {report.get('n_pred')} predictions)"),
        ("F1", _fmt(report.get("f1"))),
        ("Score threshold", _fmt(report["score_threshold"], 2)),
        ("Matching", _matching_text(report["matching"])),
        ("Images", _fmt(report.get("n_images"))),
    ]
    rows += [(f"COCO {k}", _fmt(coco.get(k))) for k in ("AP", "AP50") if k in coco]
    return ["## Headline", "", *_table(("metric", "value"), rows), ""]


def _matching_text(matching: Mapping[str, Any]) -> str:
    aware = "class-aware" if matching.get("class_aware", True) else "class-agnostic"
    cap = matching.get("max_detections")
    return f"{matching.get('text', matching.get('kind'))}; {aware}" + (f"; top {cap} per image" if cap else "")


def _coco_section(coco: Mapping[str, Any] | None) -> list[str]:
    if not coco:
        return []
    stats = [k for k in coco if k not in ("per_class", "params")]
    lines = ["## COCO bbox (pycocotools)", "", *_table(stats, [[coco[k] for k in stats]]), ""]
    params = coco.get("params") or {}
    if params.get("area_ranges"):
        ranges = ", ".join(
            f"{name} {math.sqrt(lo):.0f}-{math.sqrt(hi):.0f} px" if hi < 1e9 else f"{name} >= {math.sqrt(lo):.0f} px"
            for name, (lo, hi) in params["area_ranges"].items()
            if name != "all"
        )
        lines += [f"Area ranges (box side): {ranges}; maxDets {params.get('max_dets')}.", ""]
    return lines


def _per_class_section(report: Mapping[str, Any]) -> list[str]:
    coco_pc = (report.get("coco") or {}).get("per_class") or {}
    header = ("class", "n_true", "n_pred", "matched", "completeness", "purity", "F1", "AP", "AP50")
    rows = []
    for name, r in report["per_class"].items():
        ap = coco_pc.get(name, {})
        counts = (r["n_true"], r["n_pred"], r["n_matched"])
        rows.append((name, *counts, r["completeness"], r["purity"], r["f1"], ap.get("AP"), ap.get("AP50")))
    return ["## Per class", "", *_table(header, rows), ""]


def _bin_range(b: Mapping[str, Any]) -> str:
    hi = "∞" if b["hi"] is None else f"{b['hi']:.4g}"
    return f"{b['lo']:.4g} – {hi}"


def _bins_section(bins: Mapping[str, Any]) -> list[str]:
    lines = ["## Bins (at the score threshold)", ""]
    for name, table in bins.items():
        kind = "purity" if name.startswith("purity") else "completeness"
        count = "n_pred" if kind == "purity" else "n_true"
        rows = [(_bin_range(b), b[count], b["n_matched"], b[kind]) for b in table["bins"]]
        lines += [
            f"### {name.replace('_', ' ')} ({table['field']})",
            "",
            *_table(("bin", count, "matched", kind), rows),
            "",
        ]
    return lines


def _meta_cell(value: Any) -> Any:
    """Meta is free-form: keep small floats (learning rates) and nested values readable; None stays a dash."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return json.dumps(value) if isinstance(value, dict | list) else value


def _meta_section(meta: Mapping[str, Any]) -> list[str]:
    if not meta:
        return []
    return [*_table(("run", "value"), [(k, _meta_cell(v)) for k, v in meta.items()]), ""]


def render_markdown(report: Mapping[str, Any]) -> str:
    """A readable summary of a report dict: headline, COCO, per class, bins, then the plots."""
    lines = ["# astrodet evaluation report", "", *_meta_section(report.get("meta") or {})]
    lines += _headline(report) + _coco_section(report.get("coco")) + _per_class_section(report)
    lines += _bins_section(report.get("bins") or {})
    if report.get("plots"):
        lines += ["## Plots", ""] + [f"![{name}]({file})" for name, file in report["plots"].items()] + [""]
    return "\n".join(lines)


def write_plots(
    output_dir: Path,
    detection: Mapping[str, Any],
    panels: Sequence[plots.ImagePanel | Sequence[Any]] | None = None,
    class_names: Mapping[Any, str] | None = None,
) -> dict[str, str]:
    """Write the PNGs into ``output_dir``; returns plot name -> file name (relative, as report.md links them)."""
    threshold = float(detection["score_threshold"])
    plots.plot_pr_curve(detection["curves"], threshold, output_dir / PLOT_FILES["pr_curve"])
    plots.plot_threshold_curves(detection["curves"], threshold, output_dir / PLOT_FILES["threshold_curves"])
    plots.plot_bins(detection["bins"], output_dir / PLOT_FILES["bins"])
    written = {k: PLOT_FILES[k] for k in ("pr_curve", "threshold_curves", "bins")}
    if panels:
        plots.plot_image_grid(panels, output_dir / PLOT_FILES["examples"], class_names, min_score=threshold)
        written["examples"] = PLOT_FILES["examples"]
    return written


def write_report(
    output_dir: str | os.PathLike[str],
    detection: Mapping[str, Any],
    coco: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    panels: Sequence[plots.ImagePanel | Sequence[Any]] | None = None,
    class_names: Mapping[Any, str] | None = None,
) -> dict[str, Any]:
    """Write plots, report.md and (last) report.json into ``output_dir``; returns the report dict."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if class_names is None:  # colour and name classes as the detection result does
        class_names = {row["class_id"]: name for name, row in detection["per_class"].items()}
    report = build_report(detection, coco, meta, write_plots(out, detection, panels, class_names))
    atomic_write_text(out / REPORT_MD, render_markdown(report))
    atomic_write_json(out / REPORT_JSON, report, indent=2)
    return report
