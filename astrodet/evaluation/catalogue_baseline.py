"""A baseline without images: a random forest on the catalogue's numeric columns, scored like the image classifiers.

Why: Pruitt & Romanowsky classify Perseus cluster dwarfs from cutouts, but the same catalogue (Wittmann et al. 2019)
lists photometry and structure for every object. Whether a CNN beats a classifier on those numbers, on the same
objects, says how much the images add. The rows come from the classification COCO files themselves: the catalogue
converter (:mod:`astrodet.data.catalog`) stores each object's catalogue row in its annotation (``catalog``), so the
baseline trains and tests on exactly the image classifier's splits, and the test metrics (balanced accuracy, ROC AUC,
bootstrap intervals) come from the same function that scores the image classifier
(:func:`astrodet.evaluation.classification.evaluate_classification`).

Features: the selection config's ``numeric_columns`` (the converter's record of which columns are numbers), or,
without them, every catalogue field whose values are all numbers. Never features: the label column and every column
the class mapping reads (the label itself, as text: a leak), and the id and position columns
(RA/Dec say where an object is, not what it is; the image classifier does not see them either). Missing values
('N/A') stay NaN: scikit-learn's trees route them at each split. The forest's settings are fixed (500 trees, seeded),
not tuned: the 5-fold cross-validation on the training split reports how stable the score is, and the held-out test
split is scored once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from astrodet.data.cuts import build_mapping
from astrodet.data.toolkit import read_structured
from astrodet.errors import AstrodetInputError
from astrodet.evaluation.classification import evaluate_classification

N_TREES = 500
DEFAULT_FOLDS = 5
# Config keys naming the columns that identify or place an object rather than describe it.
PLACE_KEYS = ("id_column", "ra_column", "dec_column")
PLACE_FIELDS = ("ra", "dec")
LABEL_REASON = "the label: the class mapping reads it"
PLACE_REASON = "identifies or places the object"


@dataclass(frozen=True)
class CatalogueSplit:
    """One split's catalogue features: ``X`` (objects x features, NaN where missing), ``y`` (class indices)."""

    path: Path
    features: tuple[str, ...]
    classes: tuple[str, ...]
    object_ids: tuple[str, ...]
    X: np.ndarray
    y: np.ndarray


def read_coco(path: Path) -> dict[str, Any]:
    coco = read_structured(Path(path), "COCO file")
    if not isinstance(coco, dict) or (coco.get("info") or {}).get("task") != "classification":
        raise AstrodetInputError(f"{path}: not a whole-image classification COCO file (info.task)")
    return coco


def leaky_columns(info: Mapping[str, Any]) -> dict[str, str]:
    """Columns that must never be features, with the reason: the label (and what the class mapping reads), the
    object's id and position."""
    config = (info.get("options") or {}).get("config") or {}
    mapping = build_mapping(config, source=f"{info.get('converter', 'the converter')}'s selection config")
    if mapping is None or not mapping.columns:
        raise AstrodetInputError(
            "the dataset's info records no class mapping, so the label column is unknown: convert the catalogue with "
            "a selection config (--config) that names label_column and classes"
        )
    excluded = {column: LABEL_REASON for column in mapping.columns}
    places = [config[key] for key in PLACE_KEYS if config.get(key)] + list(PLACE_FIELDS)
    excluded |= {column: PLACE_REASON for column in places if column not in excluded}
    return excluded


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def choose_features(
    coco: Mapping[str, Any], requested: Sequence[str] | None = None
) -> tuple[tuple[str, ...], dict[str, str]]:
    """The feature columns and ``{column: reason}`` for each catalogue column left out. ``requested`` (None: the
    default of the module doc) may name any numeric column except a label column, which is refused."""
    excluded = leaky_columns(coco["info"])
    rows = [a.get("catalog") or {} for a in coco["annotations"]]
    fields = sorted({k for row in rows for k in row})
    numeric = {k for k in fields if all(_is_number(row[k]) for row in rows if k in row)}
    if requested:
        leaks = [c for c in requested if excluded.get(c) == LABEL_REASON]
        if leaks:
            raise AstrodetInputError(f"feature column(s) {leaks} would leak the label: {LABEL_REASON}")
        unknown = [c for c in requested if c not in fields]
        if unknown:
            raise AstrodetInputError(f"feature column(s) {unknown} not in the catalogue rows; columns: {fields}")
        text = [c for c in requested if c not in numeric]
        if text:
            raise AstrodetInputError(f"feature column(s) {text} are not numeric in every row")
        features = tuple(requested)
    else:
        config_numeric = ((coco["info"].get("options") or {}).get("config") or {}).get("numeric_columns")
        candidates = list(config_numeric) if config_numeric else fields
        features = tuple(c for c in candidates if c in numeric and c not in excluded)
    if not features:
        raise AstrodetInputError("no numeric catalogue column is left to use as a feature")
    unused = "not numeric", "not requested"
    left_out = {c: excluded.get(c) or unused[c in numeric] for c in fields if c not in features}
    return features, left_out


def read_split(path: Path, features: Sequence[str], classes: Sequence[str] | None = None) -> CatalogueSplit:
    """Features and labels of every record in a split file; a record without a catalogue row, or a text value in
    a feature column, is an error naming the file, the object and the field."""
    coco = read_coco(path)
    categories = sorted(coco["categories"], key=lambda c: c["id"])
    names = tuple(c["name"] for c in categories)
    if classes is not None and tuple(classes) != names:
        raise AstrodetInputError(f"{path}: classes {list(names)} differ from the training split's {list(classes)}")
    index = {c["id"]: k for k, c in enumerate(categories)}
    images = {img["id"]: img for img in coco["images"]}
    X = np.full((len(coco["annotations"]), len(features)), np.nan)
    y = np.zeros(len(coco["annotations"]), dtype=np.int64)
    ids = []
    for i, ann in enumerate(coco["annotations"]):
        object_id = str(images.get(ann["image_id"], {}).get("object_id", ann["image_id"]))
        row = ann.get("catalog")
        if not isinstance(row, dict):
            raise AstrodetInputError(f"{path}: object {object_id} has no catalogue row (annotation 'catalog')")
        for j, column in enumerate(features):
            value = row.get(column)
            if value is not None and not _is_number(value):
                raise AstrodetInputError(f"{path}: object {object_id}, field {column}: {value!r} is not a number")
            X[i, j] = np.nan if value is None else float(value)
        y[i] = index[ann["category_id"]]
        ids.append(object_id)
    return CatalogueSplit(Path(path), tuple(features), names, tuple(ids), X, y)


def forest(seed: int, n_trees: int = N_TREES) -> Any:
    """The fixed, seeded random forest (scikit-learn, the ``baseline`` extra)."""
    try:
        from sklearn.ensemble import RandomForestClassifier
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "scikit-learn is not installed: pip install 'astrodet[baseline]' (scripts/install.sh installs it)"
        ) from None
    return RandomForestClassifier(n_estimators=n_trees, random_state=seed, n_jobs=1)


def cross_validate_forest(train: CatalogueSplit, folds: int, seed: int, n_trees: int = N_TREES) -> dict[str, Any]:
    """Stratified ``folds``-fold cross-validation on the training split: balanced accuracy and ROC AUC per fold,
    their mean and standard deviation."""
    from sklearn.model_selection import StratifiedKFold, cross_validate

    smallest = int(np.bincount(train.y, minlength=len(train.classes)).min())
    if folds < 2 or smallest < folds:
        raise AstrodetInputError(
            f"{train.path}: {folds}-fold cross-validation needs >= {max(folds, 2)} objects of every class; the "
            f"smallest class has {smallest}: lower --folds"
        )
    auc = "roc_auc" if len(train.classes) == 2 else "roc_auc_ovr"
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scoring = {"balanced_accuracy": "balanced_accuracy", "roc_auc": auc}
    scores = cross_validate(forest(seed, n_trees), train.X, train.y, cv=splitter, scoring=scoring)
    out: dict[str, Any] = {"folds": folds, "seed": seed, "split": str(train.path)}
    for name in ("balanced_accuracy", "roc_auc"):
        values = [float(v) for v in scores[f"test_{name}"]]
        out[name] = {"per_fold": values, "mean": float(np.mean(values)), "std": float(np.std(values))}
    return out


def catalogue_baseline(
    train_files: Sequence[Path],
    test_file: Path,
    *,
    features: Sequence[str] | None = None,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    n_bootstrap: int = 1000,
    n_trees: int = N_TREES,
    image_predictions: Path | None = None,
) -> dict[str, Any]:
    """Cross-validate on the training split(s), fit on all of it, score the test split once: the classification
    result of :func:`evaluate_classification` plus a ``catalogue_baseline`` block (features, left-out columns with
    reasons, cross-validation, feature importances). With ``image_predictions`` (an image classifier's ``astrodet
    predict`` catalogue of the test images) the block also scores that classifier alone and the image + catalogue
    model (:mod:`astrodet.evaluation.image_catalogue`) on the same objects."""
    first = read_coco(train_files[0])
    chosen, left_out = choose_features(first, features)
    parts = [read_split(path, chosen) for path in train_files]
    classes = parts[0].classes
    parts = [parts[0]] + [read_split(p.path, chosen, classes) for p in parts[1:]]
    train = CatalogueSplit(
        parts[0].path,
        chosen,
        classes,
        tuple(i for p in parts for i in p.object_ids),
        np.vstack([p.X for p in parts]),
        np.concatenate([p.y for p in parts]),
    )
    test = read_split(test_file, chosen, classes)
    overlap = sorted(set(train.object_ids) & set(test.object_ids))
    if overlap:
        shared = f"{len(overlap)} test objects are also training objects, e.g. {overlap[0]}"
        raise AstrodetInputError(f"{test_file}: {shared}")
    cv = cross_validate_forest(train, folds, seed, n_trees)
    model = forest(seed, n_trees).fit(train.X, train.y)
    probs = np.zeros((len(test.y), len(classes)))
    probs[:, model.classes_] = model.predict_proba(test.X)
    result = evaluate_classification(test.y, probs, list(classes), n_bootstrap=n_bootstrap, seed=seed)
    importance = sorted(zip(chosen, model.feature_importances_.tolist(), strict=True), key=lambda t: -t[1])
    result["catalogue_baseline"] = {
        "model": f"scikit-learn RandomForestClassifier({n_trees} trees, random_state={seed})",
        "features": list(chosen),
        "left_out": left_out,
        "train_files": [str(p) for p in train_files],
        "test_file": str(test_file),
        "n_train": len(train.y),
        "train_class_counts": np.bincount(train.y, minlength=len(classes)).tolist(),
        "missing_values": {c: int(n) for c, n in zip(chosen, np.isnan(train.X).sum(axis=0).tolist(), strict=True)},
        "cross_validation": cv,
        "feature_importance": {name: value for name, value in importance},
    }
    if image_predictions is not None:
        from astrodet.evaluation.image_catalogue import fused_evaluation, image_probabilities

        image_probs = image_probabilities(Path(image_predictions), test_file, classes)
        block = fused_evaluation(test.y, probs, image_probs, classes, n_bootstrap, seed)
        result["catalogue_baseline"]["image_catalogue"] = {"image_predictions": str(image_predictions), **block}
    return result


def summary_lines(result: Mapping[str, Any]) -> list[str]:
    """What the command prints: the features, what was left out and why, cross-validation, the test scores."""
    block = result["catalogue_baseline"]
    cv = block["cross_validation"]
    boot = result["bootstrap"]
    counts = dict(zip(result["classes"], block["train_class_counts"], strict=True))
    lines = [
        f"features ({len(block['features'])}): {', '.join(block['features'])}",
        "left out: " + "; ".join(f"{c} ({why})" for c, why in block["left_out"].items()),
        f"training: {block['n_train']} objects {counts}",
    ]
    for name in ("balanced_accuracy", "roc_auc"):
        lines.append(
            f"{cv['folds']}-fold cross-validation on training, {name}: {cv[name]['mean']:.3f} +- {cv[name]['std']:.3f}"
        )
    for name in ("accuracy", "balanced_accuracy", "roc_auc"):
        value, interval = result[name], boot.get(name)
        shown = "undefined" if value is None or not math.isfinite(value) else f"{value:.3f}"
        ci = f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""
        lines.append(f"test ({result['n_images']} objects), {name}: {shown}{ci}")
    fused = block.get("image_catalogue")
    for label in ("image_only", "fused") if fused else ():
        for name in ("balanced_accuracy", "roc_auc"):
            value, interval = fused[label][name], fused[label]["bootstrap"].get(name)
            shown = "undefined" if value is None or not math.isfinite(value) else f"{value:.3f}"
            ci = f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""
            lines.append(f"test, {label.replace('_', ' ')}, {name}: {shown}{ci}")
    for name, gain in (fused["fused_minus_forest"] if fused else {}).items():
        low_high = gain["interval"]
        ci = f" [{low_high[0]:+.3f}, {low_high[1]:+.3f}]" if low_high else ""
        diff = "undefined" if gain["difference"] is None else f"{gain['difference']:+.3f}"
        lines.append(f"test, fused minus forest (paired), {name}: {diff}{ci}")
    return lines
