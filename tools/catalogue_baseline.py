#!/usr/bin/env python
"""A random forest on a named dataset's catalogue columns, on the image classifier's own splits.

    tools/catalogue_baseline.py --dataset perseus_dev
    tools/catalogue_baseline.py --dataset perseus_dev_all --output-dir output/baseline_all
    tools/catalogue_baseline.py --dataset perseus_dev --image-predictions output/perseus_dev_test.ecsv

Cross-validated (5 folds) on the training split, then scored once on the held-out test split with the image
classifiers' metrics: balanced accuracy and ROC AUC with bootstrap intervals. Writes report.json / report.md
(the classification report of astrodet.evaluation.classification, plus a ``catalogue_baseline`` block: features,
left-out columns and why, cross-validation, feature importances) into the output folder and prints a summary.
With --image-predictions (an image classifier's ``astrodet predict`` catalogue of the test split's images) it also
scores that classifier alone and the image + catalogue model, the mean of both models' class probabilities
(astrodet.evaluation.image_catalogue), on the same objects.
The datasets are those converted from a catalogue with a selection config (perseus, perseus_all, perseus_dev,
perseus_dev_all); see astrodet/evaluation/catalogue_baseline.py for which columns are used. Needs scikit-learn
(the ``baseline`` extra).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from astrodet.data import catalogue
from astrodet.errors import AstrodetInputError
from astrodet.evaluation.catalogue_baseline import DEFAULT_FOLDS, N_TREES, catalogue_baseline, summary_lines
from astrodet.evaluation.classification import DEFAULT_BOOTSTRAP, write_classification_report
from astrodet.runs import refuse_to_overwrite


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="a named classification dataset converted from a catalogue")
    parser.add_argument("--train-splits", nargs="+", default=["train"], metavar="SPLIT", help="default: train")
    parser.add_argument("--test-split", default="test", metavar="SPLIT", help="default: test")
    parser.add_argument("--features", nargs="+", metavar="COLUMN", help="feature columns (default: see the module)")
    parser.add_argument("--folds", type=int, default=DEFAULT_FOLDS, help="cross-validation folds (default 5)")
    parser.add_argument("--trees", type=int, default=N_TREES, help="trees in the forest (default 500)")
    parser.add_argument("--bootstrap", type=int, default=DEFAULT_BOOTSTRAP, help="bootstrap resamples (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="forest, folds and bootstrap seed (default 0)")
    parser.add_argument("--output-dir", metavar="DIR", help="default: output/catalogue_baseline/<dataset>")
    parser.add_argument(
        "--image-predictions",
        type=Path,
        metavar="CATALOGUE",
        help="an image classifier's `astrodet predict` catalogue of the test split's images: also score it alone and "
        "the image + catalogue model (the mean of both models' probabilities) on the same objects",
    )
    parser.add_argument("--overwrite", action="store_true", help="write over a report already in the output folder")
    args = parser.parse_args(argv)
    if args.trees < 1 or args.bootstrap < 0:
        parser.error("--trees must be >= 1 and --bootstrap >= 0")
    args.output_dir = Path(args.output_dir or Path("output") / "catalogue_baseline" / args.dataset)
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    try:
        if not args.overwrite:
            refuse_to_overwrite(args.output_dir, resumable=False)
        recipe = catalogue.recipe(args.dataset)
        if recipe.task != "classification":
            raise AstrodetInputError(f"--dataset {args.dataset}: a {recipe.task} dataset, not a classification one")
        unknown = sorted({*args.train_splits, args.test_split} - set(recipe.splits))
        if unknown:
            raise AstrodetInputError(f"--dataset {args.dataset} has splits {list(recipe.splits)}, not {unknown}")
        if args.test_split in args.train_splits:
            raise AstrodetInputError(f"--test-split {args.test_split} is also a training split")
        files = catalogue.ensure(args.dataset)
        result = catalogue_baseline(
            [files[s] for s in args.train_splits],
            files[args.test_split],
            features=args.features,
            folds=args.folds,
            seed=args.seed,
            n_bootstrap=args.bootstrap,
            n_trees=args.trees,
            image_predictions=args.image_predictions,
        )
    except (AstrodetInputError, KeyError) as err:
        print(f"catalogue_baseline.py: error: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        sys.exit(2)
    block = result["catalogue_baseline"]
    meta = {
        "model": block["model"],
        "dataset": args.dataset,
        "train_splits": args.train_splits,
        "test_split": args.test_split,
        "features": block["features"],
        "cv_balanced_accuracy": f"{block['cross_validation']['balanced_accuracy']['mean']:.3f}",
        "cv_roc_auc": f"{block['cross_validation']['roc_auc']['mean']:.3f}",
    }
    fused = block.get("image_catalogue")
    for label in ("image_only", "fused") if fused else ():
        for name in ("balanced_accuracy", "roc_auc"):
            interval = fused[label]["bootstrap"].get(name) or [float("nan")] * 2
            meta[f"{label}_{name}"] = f"{fused[label][name]:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"
    for name, gain in (fused["fused_minus_forest"] if fused else {}).items():
        interval = gain["interval"] or [float("nan")] * 2
        paired = f"{gain['difference']:+.3f} [{interval[0]:+.3f}, {interval[1]:+.3f}] (paired)"
        meta[f"fused_minus_forest_{name}"] = paired
    report = write_classification_report(args.output_dir, result, meta)
    print(f"catalogue baseline on {args.dataset}: {args.output_dir / 'report.json'}")
    print("\n".join(summary_lines(report)), flush=True)
    return report


if __name__ == "__main__":
    main()
