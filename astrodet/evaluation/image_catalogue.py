"""An image + catalogue classifier: the image model's and the catalogue forest's class probabilities, averaged.

Why: on Perseus the forest on the catalogue's columns beats the image classifier (README, "Measured: random init vs
a pretrained encoder"); whether the images add anything to the numbers is the question an image + catalogue model
answers. The simplest such model that cannot be tuned on the test split is late fusion with equal weights, fixed in
advance: each object's class probabilities are the mean of the forest's (trained on the training split's catalogue
rows) and the image classifier's (an ``astrodet predict`` catalogue of the same test images, ``p_<class>`` columns).
Stacking (a model on both outputs) would need out-of-fold image probabilities for the training split, that is one
image training per fold.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from astrodet.data.toolkit import read_structured
from astrodet.errors import AstrodetInputError
from astrodet.evaluation.bootstrap import percentile_interval, resamples
from astrodet.evaluation.classification import auc_scores, balanced_accuracy, evaluate_classification

RULE = "mean of the catalogue forest's and the image classifier's class probabilities (equal weights, fixed)"
HEADLINE = ("accuracy", "balanced_accuracy", "roc_auc", "n_images")


def image_probabilities(predictions: Path, test_file: Path, classes: Sequence[str]) -> np.ndarray:
    """The image classifier's probabilities for each annotation of ``test_file`` (rows in its order), read from an
    ``astrodet predict`` catalogue of its images; an image of the split without a row is an error naming it."""
    from astropy.table import Table

    try:
        table = Table.read(str(predictions))
    except (OSError, ValueError) as err:
        raise AstrodetInputError(f"{predictions}: not a readable predict catalogue ({err})") from None
    columns = [f"p_{name}" for name in classes]
    missing = [c for c in ("file", *columns) if c not in table.colnames]
    if missing:
        raise AstrodetInputError(f"{predictions}: no column(s) {missing}; a classifier's predict catalogue has them")
    rows: dict[str, int] = {}
    for k, file in enumerate(table["file"]):
        name = Path(str(file)).name
        if name in rows:
            raise AstrodetInputError(f"{predictions}: two rows for images named {name!r}: cannot tell them apart")
        rows[name] = k
    coco = read_structured(Path(test_file), "COCO file")
    names = {image["id"]: Path(image["file_name"]).name for image in coco["images"]}
    probs = np.zeros((len(coco["annotations"]), len(classes)))
    for i, ann in enumerate(coco["annotations"]):
        name = names[ann["image_id"]]
        if name not in rows:
            raise AstrodetInputError(f"{predictions}: no row for {name} of {test_file} (predict every test image)")
        probs[i] = [float(table[c][rows[name]]) for c in columns]
    return probs


def fused_evaluation(
    labels: np.ndarray,
    forest_probs: np.ndarray,
    image_probs: np.ndarray,
    classes: Sequence[str],
    n_bootstrap: int,
    seed: int,
) -> dict[str, Any]:
    """The image classifier alone and the fused model on the same objects, with bootstrap intervals, and the fused
    model against the forest alone with a paired bootstrap (the same resampled objects score both)."""
    if forest_probs.shape != image_probs.shape:
        shapes = f"{image_probs.shape} against the forest's {forest_probs.shape}"
        raise AstrodetInputError(f"image probabilities do not fit the test objects: {shapes}")
    out: dict[str, Any] = {"rule": RULE}
    for name, probs in (("image_only", image_probs), ("fused", (forest_probs + image_probs) / 2)):
        result = evaluate_classification(labels, probs, list(classes), n_bootstrap=n_bootstrap, seed=seed)
        out[name] = {key: result[key] for key in HEADLINE} | {"bootstrap": result.get("bootstrap", {})}
    out["fused_minus_forest"] = paired_gain(labels, forest_probs, (forest_probs + image_probs) / 2, n_bootstrap, seed)
    return out


def _scores(y: np.ndarray, p: np.ndarray) -> tuple[float | None, float | None]:
    return balanced_accuracy(y, p.argmax(axis=1)), auc_scores(y, p)[0]


def paired_gain(labels: np.ndarray, before: np.ndarray, after: np.ndarray, n_bootstrap: int, seed: int) -> dict:
    """Balanced accuracy and ROC AUC of ``after`` minus ``before`` on the same objects, with a paired bootstrap
    interval (resamples where either is undefined, e.g. one class only, are skipped and counted)."""
    y = np.asarray(labels)
    pairs = zip(_scores(y, before), _scores(y, after), strict=True)
    point = [None if b is None or a is None else a - b for b, a in pairs]
    deltas: list[list[float]] = [[], []]
    for idx in resamples(len(y), n_bootstrap, seed):
        for k, (b, a) in enumerate(zip(_scores(y[idx], before[idx]), _scores(y[idx], after[idx]), strict=True)):
            if a is not None and b is not None:
                deltas[k].append(a - b)
    out: dict[str, Any] = {}
    for k, name in enumerate(("balanced_accuracy", "roc_auc")):
        values = np.asarray(deltas[k])
        out[name] = {
            "difference": point[k],
            "interval": percentile_interval(values.tolist(), 0.95),
            "share_not_better": float(np.mean(values <= 0)) if values.size else None,
            "defined_in": int(values.size),
        }
    return out
