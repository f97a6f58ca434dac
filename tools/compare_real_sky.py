"""Two detectors' ``tools/real_sky.py`` runs on the same Stripe 82 galaxies: the change, with a paired bootstrap.

``python tools/compare_real_sky.py --before DIR --after DIR --out DIR``

Why: each run's report gives every number its own 95% interval over the 21 trusted galaxies; whether the second
model finds more catalogued clumps than the first on the *same* galaxies is a paired question
(:mod:`astrodet.evaluation.paired`). For the trusted galaxies, both classes and the clump class alone, at IoU 0.5 and
within 1" (the rules of ``tools/real_sky.py``, class-agnostic, score >= 0.3), it writes completeness and purity of
both runs, the difference with its paired interval and the share of resamples in which the second run is not
better, to ``DIR/report.md`` and ``DIR/report.json``. It also gives completeness over the catalogued clumps that
stand out in the picture the model saw (display step, :mod:`astrodet.evaluation.visibility`, above
``--visible-step``: by default the 90th percentile of the disc without a clump on the calibration galaxies of
``tools/clump_visibility.py``, never on these): what the detectors do with the clumps that can be seen at all.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from collections.abc import Sequence
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from astrodet.errors import AstrodetInputError  # noqa: E402
from astrodet.evaluation.detection import DEFAULT_SCORE_THRESHOLD  # noqa: E402
from astrodet.evaluation.inputs import prepare, read_predictions, read_truth  # noqa: E402
from astrodet.evaluation.markdown import fmt, table  # noqa: E402
from astrodet.evaluation.matching import MatchRule  # noqa: E402
from astrodet.evaluation.paired import image_counts, paired_difference  # noqa: E402
from astrodet.evaluation.visibility import clump_statistics, luminance, model_view  # noqa: E402
from astrodet.io import atomic_write_json, atomic_write_text  # noqa: E402

TRUTH = Path("truth") / "s82_trusted" / "clumps.json"  # what tools/real_sky.py converts for the trusted galaxies
CATALOGUES = (("any", Path("catalogues") / "s82.ecsv"), ("clump only", Path("catalogues") / "s82_clump.ecsv"))
MATCHES = (("IoU 0.5", "iou:0.5"), ('sky 1"', "radius:1.0arcsec"))
MAX_DETECTIONS = 100  # astrodet evaluate's default, as tools/real_sky.py uses it
# The display step that "stands out": the 90th percentile of the disc without a clump on the 24 calibration galaxies
# (docs/results/clump_visibility/report.json, "standing_out_cut"), fixed before these runs were compared
VISIBLE_STEP = 0.032
STEP_FIELD = "display_step"


def _truth_images(run: Path) -> list[str]:
    path = run / TRUTH
    if not path.is_file():
        raise AstrodetInputError(f"{run}: no {TRUTH} (is it a tools/real_sky.py output folder with the s82 set?)")
    return [Path(i["file_name"]).name for i in json.loads(path.read_text(encoding="utf-8"))["images"]]


def _model_scale(run: Path) -> tuple[float, int]:
    """(training PSF in model pixels, model input side) that the run showed the galaxies at."""
    path = run / "report.json"
    try:
        model = json.loads(path.read_text(encoding="utf-8"))["model"]
        return float(model["training_psf_px"]), int(model["input_size"])
    except (OSError, ValueError, KeyError, TypeError):
        message = f"{path}: not a tools/real_sky.py report (model.training_psf_px, input_size)"
        raise AstrodetInputError(message) from None


def display_steps(truth_path: Path, target_psf_px: float, input_size: int) -> dict[Any, np.ndarray]:
    """Per truth image id: each catalogued clump's display step in the picture the model saw (-1, never standing
    out, where the clump's surroundings fall off the picture)."""
    coco = json.loads(truth_path.read_text(encoding="utf-8"))
    by_image: dict[Any, list[dict[str, Any]]] = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    steps = {}
    for image in coco["images"]:
        anns = by_image.get(image["id"], [])
        if not anns:
            continue
        psf = statistics.median(float(a["psf_fwhm_r_arcsec"]) for a in anns)
        path = truth_path.parent / image["file_name"]
        if not path.is_file():
            raise AstrodetInputError(f"{truth_path}: image {image['file_name']!r} not found (moved since the run?)")
        with Image.open(path) as im:
            seen = model_view(im, float(image["pixel_scale"]), psf, target_psf_px, input_size)
        picture, values = luminance(seen.picture), []
        for ann in anns:
            x, y, w, h = ann["bbox"]
            found = clump_statistics(picture, *seen.position(x + w / 2, y + h / 2), seen.psf_px)
            values.append(-1.0 if found is None else found["step"])
        steps[image["id"]] = np.asarray(values, dtype=float)
    return steps


def _counts(run: Path, truth_path: Path, catalogue: Path, rule: MatchRule, threshold: float,
            steps: dict[Any, np.ndarray], visible_step: float | None) -> Any:  # fmt: skip
    if not (run / catalogue).is_file():
        raise AstrodetInputError(f"{run}: no {catalogue} (is it a tools/real_sky.py output folder?)")
    prepared = prepare(read_truth(truth_path, {}), read_predictions(run / catalogue), rule, class_agnostic=True)
    records = prepared.records
    only_above = None
    if visible_step is not None:
        records = [dataclasses.replace(r, true_extra={**r.true_extra, STEP_FIELD: steps[r.image_id]})
                   if r.image_id in steps else r for r in records]  # fmt: skip
        only_above = (STEP_FIELD, visible_step)
    return image_counts(records, rule, threshold, True, max_detections=MAX_DETECTIONS, only_above=only_above)


def compare(before: Path, after: Path, n_bootstrap: int, threshold: float, visible_step: float = VISIBLE_STEP,
            seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """The paired comparison of the two runs, row by row (clumps, class, match)."""
    if _truth_images(before) != _truth_images(after):
        raise AstrodetInputError(f"{before} and {after}: the runs scored different Stripe 82 galaxies (--limit?)")
    scale = _model_scale(after)
    if _model_scale(before) != scale:
        raise AstrodetInputError(f"{before} and {after}: the runs showed the galaxies at different scales")
    steps = display_steps(after / TRUTH, *scale)
    every = np.concatenate(list(steps.values())) if steps else np.zeros(0)
    rows = []
    for subset, cut in (("all", None), ("standing out", visible_step)):
        for (kind, catalogue), (match, rule_text) in product(CATALOGUES, MATCHES):
            rule = MatchRule.parse(rule_text)
            counts = [_counts(run, after / TRUTH, catalogue, rule, threshold, steps, cut) for run in (before, after)]
            paired = paired_difference(*counts, n_resamples=n_bootstrap, seed=seed)
            rows.append({"clumps": subset, "class": kind, "match": match, **paired})
    return {
        "before": str(before), "after": str(after), "score_threshold": threshold, "visible_step": visible_step,
        "n_clumps": int(every.size), "n_standing_out": int(np.count_nonzero(every > visible_step)), "rows": rows,
    }  # fmt: skip


def _cell(entry: dict[str, Any]) -> list[str]:
    low_high = entry["interval"]
    interval = f"[{low_high[0]:+.3f}, {low_high[1]:+.3f}]" if low_high else "-"
    diff = "-" if entry["difference"] is None else f"{entry['difference']:+.3f}"
    return [fmt(entry["before"]), fmt(entry["after"]), f"{diff} {interval}", fmt(entry["share_not_better"])]


def render(result: dict[str, Any]) -> str:
    header = ["clumps", "class", "match", "metric", "before", "after", "after - before [95%]", "resamples not better"]
    body = [[row["clumps"], row["class"], row["match"], metric, *_cell(row[metric])]
            for row in result["rows"] for metric in ("completeness", "purity")
            if row["clumps"] == "all" or metric == "completeness"]  # fmt: skip
    n = result["rows"][0]["n_images"] if result["rows"] else 0
    lines = [
        "# Real sky, paired: two detectors on the same trusted Stripe 82 galaxies",
        "",
        f"Before: `{result['before']}`; after: `{result['after']}`. {n} galaxies (Mehta et al. 2021, alignment_z > 3), "
        f"class-agnostic matching, score >= {result['score_threshold']}. Intervals: paired bootstrap over galaxies "
        f"({result['rows'][0]['resamples'] if result['rows'] else 0} resamples: both runs scored on each resample). "
        f"'standing out': the {result['n_standing_out']} of {result['n_clumps']} catalogued clumps whose display step "
        f"in the picture the model saw exceeds {result['visible_step']} (completeness only: every detection is "
        f"still counted, so purity is not defined for a subset).",
        "",
        *table(header, body),
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, type=Path, help="tools/real_sky.py output folder of one model")
    parser.add_argument("--after", required=True, type=Path, help="... and of the other, on the same galaxies")
    parser.add_argument("--out", required=True, type=Path, help="folder for report.md and report.json")
    parser.add_argument("--bootstrap", type=int, default=1000, help="paired resamples (default 1000)")
    parser.add_argument("--score-threshold", type=float, default=DEFAULT_SCORE_THRESHOLD, help="default 0.3")
    parser.add_argument(
        "--visible-step",
        type=float,
        default=VISIBLE_STEP,
        help=f"display step above which a catalogued clump stands out (default {VISIBLE_STEP}, tools/clump_visibility)",
    )
    args = parser.parse_args(argv)
    if args.bootstrap < 1:
        parser.error(f"--bootstrap: expected a positive number of resamples, got {args.bootstrap}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = compare(args.before, args.after, args.bootstrap, args.score_threshold, args.visible_step)
    except AstrodetInputError as error:
        print(f"compare_real_sky: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "report.json", result, indent=2)
    atomic_write_text(args.out / "report.md", render(result))
    print(render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
