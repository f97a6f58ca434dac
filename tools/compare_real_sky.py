"""Two detectors' ``tools/real_sky.py`` runs on the same Stripe 82 galaxies: the change, with a paired bootstrap.

``python tools/compare_real_sky.py --before DIR --after DIR --out DIR``

Why: each run's report gives every number its own 95% interval over the 21 trusted galaxies; whether the second
model finds more catalogued clumps than the first on the *same* galaxies is a paired question
(:mod:`astrodet.evaluation.paired`). For the trusted galaxies, both classes and the clump class alone, at IoU 0.5 and
within 1" (the rules of ``tools/real_sky.py``, class-agnostic, score >= 0.3), it writes completeness and purity of
both runs, the difference with its paired interval and the share of resamples in which the second run is not
better, to ``DIR/report.md`` and ``DIR/report.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from itertools import product
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from astrodet.errors import AstrodetInputError  # noqa: E402
from astrodet.evaluation.detection import DEFAULT_SCORE_THRESHOLD  # noqa: E402
from astrodet.evaluation.inputs import prepare, read_predictions, read_truth  # noqa: E402
from astrodet.evaluation.markdown import fmt, table  # noqa: E402
from astrodet.evaluation.matching import MatchRule  # noqa: E402
from astrodet.evaluation.paired import image_counts, paired_difference  # noqa: E402
from astrodet.io import atomic_write_json, atomic_write_text  # noqa: E402

TRUTH = Path("truth") / "s82_trusted" / "clumps.json"  # what tools/real_sky.py converts for the trusted galaxies
CATALOGUES = (("any", Path("catalogues") / "s82.ecsv"), ("clump only", Path("catalogues") / "s82_clump.ecsv"))
MATCHES = (("IoU 0.5", "iou:0.5"), ('sky 1"', "radius:1.0arcsec"))
MAX_DETECTIONS = 100  # astrodet evaluate's default, as tools/real_sky.py uses it


def _truth_images(run: Path) -> list[str]:
    path = run / TRUTH
    if not path.is_file():
        raise AstrodetInputError(f"{run}: no {TRUTH} (is it a tools/real_sky.py output folder with the s82 set?)")
    return [Path(i["file_name"]).name for i in json.loads(path.read_text(encoding="utf-8"))["images"]]


def _counts(run: Path, truth_path: Path, catalogue: Path, rule: MatchRule, threshold: float) -> Any:
    if not (run / catalogue).is_file():
        raise AstrodetInputError(f"{run}: no {catalogue} (is it a tools/real_sky.py output folder?)")
    prepared = prepare(read_truth(truth_path, {}), read_predictions(run / catalogue), rule, class_agnostic=True)
    return image_counts(prepared.records, rule, threshold, class_agnostic=True, max_detections=MAX_DETECTIONS)


def compare(before: Path, after: Path, n_bootstrap: int, threshold: float, seed: int = 0) -> dict[str, Any]:
    """The paired comparison of the two runs, row by row (class, match)."""
    if _truth_images(before) != _truth_images(after):
        raise AstrodetInputError(f"{before} and {after}: the runs scored different Stripe 82 galaxies (--limit?)")
    rows = []
    for (kind, catalogue), (match, rule_text) in product(CATALOGUES, MATCHES):
        rule = MatchRule.parse(rule_text)
        counts = [_counts(run, after / TRUTH, catalogue, rule, threshold) for run in (before, after)]
        rows.append({"class": kind, "match": match, **paired_difference(*counts, n_resamples=n_bootstrap, seed=seed)})
    return {"before": str(before), "after": str(after), "score_threshold": threshold, "rows": rows}


def _cell(entry: dict[str, Any]) -> list[str]:
    low_high = entry["interval"]
    interval = f"[{low_high[0]:+.3f}, {low_high[1]:+.3f}]" if low_high else "-"
    diff = "-" if entry["difference"] is None else f"{entry['difference']:+.3f}"
    return [fmt(entry["before"]), fmt(entry["after"]), f"{diff} {interval}", fmt(entry["share_not_better"])]


def render(result: dict[str, Any]) -> str:
    header = ["class", "match", "metric", "before", "after", "after - before [95%]", "resamples not better"]
    body = [[row["class"], row["match"], metric, *_cell(row[metric])]
            for row in result["rows"] for metric in ("completeness", "purity")]  # fmt: skip
    n = result["rows"][0]["n_images"] if result["rows"] else 0
    lines = [
        "# Real sky, paired: two detectors on the same trusted Stripe 82 galaxies",
        "",
        f"Before: `{result['before']}`; after: `{result['after']}`. {n} galaxies (Mehta et al. 2021, alignment_z > 3), "
        f"class-agnostic matching, score >= {result['score_threshold']}. Intervals: paired bootstrap over galaxies "
        f"({result['rows'][0]['resamples'] if result['rows'] else 0} resamples: both runs scored on each resample).",
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
    args = parser.parse_args(argv)
    if args.bootstrap < 1:
        parser.error(f"--bootstrap: expected a positive number of resamples, got {args.bootstrap}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = compare(args.before, args.after, args.bootstrap, args.score_threshold)
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
