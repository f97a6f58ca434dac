"""The evaluation report: OUTPUT_DIR/report.json (numbers), report.md (for people) and PNG plots.

Every file is written atomically; report.json is written last, so its presence means the whole report is there.
The JSON is the detection result of :func:`astrodet.evaluation.detection.evaluate_detections` plus ``coco`` (from
:func:`astrodet.evaluation.coco_params.run_coco_bbox` or an adapter's evaluator), free-form ``meta`` and ``plots``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from astrodet import __version__
from astrodet.errors import AstrodetInputError
from astrodet.evaluation import plots
from astrodet.evaluation.markdown import fmt, plain, render_markdown, table
from astrodet.io import atomic_write_json, atomic_write_text

REPORT_JSON, REPORT_MD = "report.json", "report.md"
PLOT_FILES = {
    "pr_curve": "pr_curve.png",
    "threshold_curves": "threshold_curves.png",
    "bins": "bins.png",
    "examples": "examples.png",
}


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
    return plain(report)


def _ci(boot: Mapping[str, Any], key: str) -> str:
    """`` [lo, hi]`` when the bootstrap has an interval for ``key``, else nothing."""
    ci = boot.get(key)
    return f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else ""


def _headline(report: Mapping[str, Any]) -> list[str]:
    n = report.get("n_matched")
    coco = report.get("coco") or {}
    boot = report.get("bootstrap") or {}
    completeness, purity = (fmt(report[k]) + _ci(boot, k) for k in ("completeness", "purity"))
    rows = [
        ("Completeness", f"{completeness} ({n} of {report.get('n_true')} true objects)"),
        ("Purity", f"{purity} ({n} of {report.get('n_pred')} predictions)"),
        ("F1", fmt(report.get("f1"))),
        ("Score threshold", fmt(report["score_threshold"], 2)),
        ("Matching", _matching_text(report["matching"])),
        ("Images", fmt(report.get("n_images"))),
    ]
    rows += [(f"COCO {k}", fmt(coco.get(k)) + _ci(boot, k)) for k in ("AP", "AP50") if k in coco]
    lines = ["## Headline", "", "Completeness, purity, F1 and AP are fractions of 1 (0.5 = 50 %).", ""]
    lines += [*table(("metric", "value"), rows), ""]
    if boot:
        lines += [
            f"[brackets]: {round(100 * boot['confidence'])} % bootstrap intervals, {boot['n_resamples']} resamples "
            f"of the {boot['unit']}s, seed {boot['seed']}.",
            "",
        ]
    return lines


def _matching_text(matching: Mapping[str, Any]) -> str:
    aware = "class-aware" if matching.get("class_aware", True) else "class-agnostic"
    cap = matching.get("max_detections")
    return f"{matching.get('text', matching.get('kind'))}; {aware}" + (f"; top {cap} per image" if cap else "")


def _coco_section(coco: Mapping[str, Any] | None) -> list[str]:
    if not coco:
        return []
    stats = [k for k in coco if k not in ("per_class", "params")]
    lines = ["## COCO bbox (pycocotools)", "", *table(stats, [[coco[k] for k in stats]]), ""]
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
    return ["## Per class", "", *table(header, rows), ""]


def _bin_range(b: Mapping[str, Any]) -> str:
    hi = "∞" if b["hi"] is None else f"{b['hi']:.4g}"
    return f"{b['lo']:.4g} – {hi}"


def _bins_section(bins: Mapping[str, Any]) -> list[str]:
    lines = ["## Bins (at the score threshold)", ""]
    for name, binned in bins.items():
        kind = "purity" if name.startswith("purity") else "completeness"
        count = "n_pred" if kind == "purity" else "n_true"
        rows = [(_bin_range(b), b[count], b["n_matched"], b[kind]) for b in binned["bins"]]
        lines += [
            f"### {name.replace('_', ' ')} ({binned['field']})",
            "",
            *table(("bin", count, "matched", kind), rows),
            "",
        ]
    return lines


def detection_sections(report: Mapping[str, Any]) -> list[str]:
    """report.md's detection part: headline, COCO, per class, bins."""
    lines = _headline(report) + _coco_section(report.get("coco")) + _per_class_section(report)
    return lines + _bins_section(report.get("bins") or {})


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
