"""``astrodet evaluate``: score a catalogue or COCO results against a truth, with the training report's layout.

Why a command over the core and nothing more: the numbers come from the same functions the framework adapters call
after training (:func:`astrodet.evaluation.detection.evaluate_detections`, pycocotools through
:mod:`astrodet.evaluation.coco_params`, :func:`astrodet.evaluation.report.write_report`), so a model's report from
training and from ``astrodet evaluate`` on its predictions agree rule for rule. This module reads the arguments,
prints what it did, and refuses to replace another run's report unless told to.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from astrodet.data.clumpscout_table import CATEGORIES
from astrodet.errors import AstrodetInputError
from astrodet.evaluation.bootstrap import DEFAULT_BOOTSTRAP, BootstrapSpec, ap50_intervals
from astrodet.evaluation.coco_params import DEFAULT_MAX_DETECTIONS, coco_summary, evaluated_coco_eval
from astrodet.evaluation.detection import DEFAULT_SCORE_THRESHOLD, evaluate_detections
from astrodet.evaluation.inputs import Predictions, Prepared, Truth, prepare, read_predictions, read_truth
from astrodet.evaluation.markdown import fmt
from astrodet.evaluation.matching import MatchRule
from astrodet.evaluation.panels import example_panels
from astrodet.evaluation.report import REPORT_JSON, write_report

DEFAULT_EXAMPLES = 8


def _labels(text: str) -> dict[int, str]:
    """``1=clump,2=odd_clump`` -> {1: "clump", 2: "odd_clump"}."""
    labels: dict[int, str] = {}
    for item in text.split(","):
        code, sep, name = item.partition("=")
        try:
            labels[int(code)] = name.strip()
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r} is not LABEL=NAME (e.g. 1=clump,2=odd_clump)") from None
        if not sep or not name.strip():
            raise argparse.ArgumentTypeError(f"{item!r} is not LABEL=NAME (e.g. 1=clump,2=odd_clump)")
    return labels


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one column name")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    truth_help = "COCO file (images with ra, dec, pixel_scale for sky matching) or a table with ra, dec and a class"
    parser.add_argument("--truth", required=True, type=Path, metavar="TRUTH", help=truth_help)
    pred_help = "astrodet predict catalogue (.fits, .ecsv, .csv, .parquet) or COCO detection results (.json)"
    parser.add_argument("--pred", required=True, type=Path, metavar="PREDICTIONS", help=pred_help)
    match_help = (
        "matching rule: iou:0.5 (default with a COCO truth), centre:4px (box centres) or radius:1.5arcsec "
        "(RA/Dec; needed with a truth table); one-to-one, greedy by score"
    )
    parser.add_argument("--match", metavar="RULE", help=match_help)
    threshold_help = f"operating score threshold (default {DEFAULT_SCORE_THRESHOLD}, Popp et al.'s)"
    parser.add_argument("--score-threshold", type=float, default=DEFAULT_SCORE_THRESHOLD, help=threshold_help)
    classes = parser.add_mutually_exclusive_group()
    aware_help = "a prediction matches only a truth of its class (default)"
    classes.add_argument("--class-aware", dest="class_agnostic", action="store_false", help=aware_help)
    agnostic_help = "any class matches; the report's confusion table counts the classes of matched pairs"
    classes.add_argument("--class-agnostic", dest="class_agnostic", action="store_true", help=agnostic_help)
    parser.set_defaults(class_agnostic=False)  # argparse would take the default of the first flag (store_false)
    boot_help = f"bootstrap resamples for confidence intervals (default {DEFAULT_BOOTSTRAP}; 0: none)"
    parser.add_argument("--bootstrap", type=int, default=DEFAULT_BOOTSTRAP, metavar="N", help=boot_help)
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    cap_help = f"COCO truth: detections kept per image, as the model's cap (default {DEFAULT_MAX_DETECTIONS})"
    parser.add_argument("--max-detections", type=int, default=DEFAULT_MAX_DETECTIONS, metavar="N", help=cap_help)
    default_labels = ",".join(f"{k}={v}" for k, v in CATEGORIES.items())
    labels_help = f"truth table: class name of each integer label (default {default_labels}, Clump Scout's)"
    parser.add_argument("--labels", type=_labels, default=dict(CATEGORIES), metavar="L=NAME,...", help=labels_help)
    brightness_help = "truth columns to bin completeness by (default: mag, mag_<band>; else flux, flux_<band>)"
    parser.add_argument("--brightness", type=_names, metavar="COLUMN,...", help=brightness_help)
    examples_help = f"COCO truth: images drawn in examples.png (default {DEFAULT_EXAMPLES}; 0: none)"
    parser.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES, metavar="N", help=examples_help)
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="report folder (created)")
    overwrite_help = "replace the report already in DIR (refused otherwise)"
    parser.add_argument("--overwrite", action="store_true", help=overwrite_help)


def _rule(text: str | None, truth: Truth) -> MatchRule:
    if text:
        return MatchRule.parse(text)
    if truth.coco is None:
        raise AstrodetInputError(f"{truth.path}: a truth table is matched on the sky: give --match radius:Rarcsec")
    return MatchRule()


def _meta(args: argparse.Namespace, truth: Truth, preds: Predictions, notes: list[str]) -> dict[str, Any]:
    """The run, as report.json's ``meta``: inputs, the catalogue's provenance, and what was noted on the way."""
    meta: dict[str, Any] = {
        "command": "astrodet evaluate",
        "truth": str(args.truth),
        "truth_kind": "coco" if truth.coco is not None else "table",
        "predictions": str(args.pred),
        "predictions_kind": "catalogue" if preds.files is not None else "coco_results",
    }
    for key, value in preds.provenance.items():
        meta["catalogue_score_threshold" if key == "score_threshold" else key] = value
    if notes:
        meta["notes"] = list(notes)
    return meta


def _panels(truth: Truth, results: list[dict], n: int, notes: list[str]) -> list:
    if truth.coco is None or n <= 0:
        return []
    root = truth.path.parent / (truth.coco.get("info") or {}).get("image_root", ".")
    try:
        return example_panels(truth.coco, results, root, n)
    except OSError as err:  # missing or unreadable images: the numbers do not need them
        notes.append(f"examples.png not drawn: {err}")
        return []


def _bootstrap(args: argparse.Namespace, prepared: Prepared) -> BootstrapSpec | None:
    if args.bootstrap < 0:
        raise AstrodetInputError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    return BootstrapSpec(args.bootstrap, args.seed, unit=prepared.bootstrap_unit) if args.bootstrap else None


def _check_threshold(args: argparse.Namespace, preds: Predictions, notes: list[str]) -> None:
    kept_from = preds.provenance.get("score_threshold")
    if isinstance(kept_from, int | float) and args.score_threshold < kept_from:
        notes.append(
            f"the catalogue holds only detections with score >= {kept_from:g}: below that, curves and "
            f"the operating point at {args.score_threshold:g} see no more detections"
        )


def _images_predicted(preds: Predictions) -> int:
    """Images the catalogue covers: predict's own count (inputs - rejected), else the distinct files with rows."""
    inputs, rejected = preds.provenance.get("inputs"), preds.provenance.get("rejected")
    if isinstance(inputs, int) and isinstance(rejected, int):
        return inputs - rejected
    return len(set(preds.files or []))


def _summary(report: dict[str, Any]) -> str:
    boot = report.get("bootstrap") or {}

    def value(key: str, number: Any) -> str:
        ci = boot.get(key)
        return fmt(number) + (f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else "")

    n = report["n_matched"]
    parts = [
        f"completeness {value('completeness', report['completeness'])} ({n} of {report['n_true']})",
        f"purity {value('purity', report['purity'])} ({n} of {report['n_pred']})",
        f"F1 {fmt(report['f1'])}",
    ]
    if report.get("coco"):
        parts.append(f"COCO AP50 {value('AP50', report['coco']['AP50'])}")
    return ", ".join(parts) + f"; {report['matching']['text']}, score >= {report['score_threshold']:g}"


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    if (out / REPORT_JSON).exists() and not args.overwrite:
        raise AstrodetInputError(f"{out} already holds a report: choose another --out, or pass --overwrite")
    truth = read_truth(args.truth, args.labels, args.brightness)
    rule = _rule(args.match, truth)
    preds = read_predictions(args.pred)
    prepared = prepare(truth, preds, rule, args.class_agnostic)
    notes = prepared.notes
    _check_threshold(args, preds, notes)
    spec = _bootstrap(args, prepared)
    cap = args.max_detections if truth.coco is not None else None
    detection = evaluate_detections(
        prepared.records,
        rule,
        score_threshold=args.score_threshold,
        class_agnostic=args.class_agnostic,
        class_names=prepared.class_names,
        brightness_fields=sorted({k for r in prepared.records for k in r.true_extra}),
        max_detections=cap,
        bootstrap=spec,
    )
    if truth.coco is None:  # one catalogue-wide record: count the images predicted on instead
        detection["n_images"] = _images_predicted(preds)
    coco = None
    if prepared.coco_results is not None and truth.coco is not None:
        coco_eval = evaluated_coco_eval(truth.coco, prepared.coco_results, args.max_detections)
        coco = coco_summary(coco_eval)
        if spec is not None:
            detection["bootstrap"].update(ap50_intervals(coco_eval, [r.image_id for r in prepared.records], spec))
    panels = _panels(truth, prepared.coco_results or [], args.examples, notes)
    report = write_report(out, detection, coco, _meta(args, truth, preds, notes), panels, prepared.class_names)
    for note in notes:
        print(f"note: {note}")
    print(_summary(report))
    print(f"wrote {out / REPORT_JSON}, report.md and {len(report['plots'])} plots")
    return 0
