"""Percentile bootstrap confidence intervals, shared by the detection and classification reports.

Why resample images: objects in one image share its seeing, depth, crowding and host galaxy, so they are not
independent; resampling whole images keeps that correlation in the interval. A catalogue compared with a truth table
has no images; there the units are the matching's own objects (each matched pair, each missed truth, each false
detection), which ``unit`` records.

Every resample is ``numpy.random.default_rng(seed).integers(0, N, N)`` in turn, so a seed fixes the intervals, and
the completeness/purity and AP50 intervals of one report are computed on the same resamples. A resample on which a
metric is undefined (no truths, no predictions) is skipped and counted (``<metric>_defined_in``). AP50 is
pycocotools' own ``accumulate`` over the resampled images' per-image matches from one ``evaluate`` (no image is
re-matched: an image drawn twice counts twice).
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools.cocoeval import COCOeval

from astrodet.errors import AstrodetInputError

DEFAULT_BOOTSTRAP = 1000
DEFAULT_CONFIDENCE = 0.95
BOOTSTRAP_UNITS = ("image", "object")


@dataclass(frozen=True)
class BootstrapSpec:
    """How many resamples, the seed, the interval's confidence and what is resampled (``image`` or ``object``)."""

    n_resamples: int = DEFAULT_BOOTSTRAP
    seed: int = 0
    confidence: float = DEFAULT_CONFIDENCE
    unit: str = "image"

    def __post_init__(self) -> None:
        if isinstance(self.n_resamples, bool) or not isinstance(self.n_resamples, int) or self.n_resamples < 0:
            raise AstrodetInputError(f"bootstrap resamples must be an integer >= 0, got {self.n_resamples!r}")
        if not 0 < float(self.confidence) < 1:
            raise AstrodetInputError(f"bootstrap confidence must be in (0, 1), got {self.confidence!r}")
        if self.unit not in BOOTSTRAP_UNITS:
            raise AstrodetInputError(f"bootstrap unit must be one of {BOOTSTRAP_UNITS}, got {self.unit!r}")

    def describe(self) -> dict[str, Any]:
        return {"n_resamples": self.n_resamples, "seed": self.seed, "confidence": self.confidence, "unit": self.unit}


def resamples(n_units: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Unit indices of each resample: ``n_units`` draws with replacement; none when there is nothing to draw."""
    rng = np.random.default_rng(seed)
    if n_units <= 0:
        return
    for _ in range(n_resamples):
        yield rng.integers(0, n_units, size=n_units)


def percentile_interval(values: Sequence[float], confidence: float) -> list[float] | None:
    """The central ``confidence`` percentile interval of ``values``; None when there are none."""
    if not len(values):
        return None
    lo_q, hi_q = (1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100
    return [float(np.percentile(values, lo_q)), float(np.percentile(values, hi_q))]


def intervals(values: Mapping[str, Sequence[float]], confidence: float) -> dict[str, Any]:
    """``{metric: [lo, hi] | None, metric_defined_in: count}`` for each metric's resampled values."""
    out: dict[str, Any] = {}
    for key, vals in values.items():
        out[key] = percentile_interval(vals, confidence)
        out[f"{key}_defined_in"] = len(vals)
    return out


def count_intervals(
    true_unit: np.ndarray,
    true_hit: np.ndarray,
    pred_unit: np.ndarray,
    pred_kept: np.ndarray,
    n_units: int,
    spec: BootstrapSpec,
) -> dict[str, Any]:
    """Completeness and purity intervals from each truth's and prediction's unit and its outcome at the threshold.

    ``true_hit``: the truth is matched by a kept prediction; ``pred_kept``: the prediction scores >= the threshold.
    A matched kept prediction sits in its truth's unit, so a unit's matched truths are also its matched predictions.
    """
    n_true = np.bincount(true_unit, minlength=n_units)
    n_hit = np.bincount(true_unit[true_hit], minlength=n_units)
    n_pred = np.bincount(pred_unit[pred_kept], minlength=n_units)
    values: dict[str, list[float]] = {"completeness": [], "purity": []}
    for idx in resamples(n_units, spec.n_resamples, spec.seed):
        weight = np.bincount(idx, minlength=n_units)
        hit, truths, preds = int(weight @ n_hit), int(weight @ n_true), int(weight @ n_pred)
        if truths:
            values["completeness"].append(hit / truths)
        if preds:
            values["purity"].append(hit / preds)
    return {**spec.describe(), **intervals(values, spec.confidence)}


def _at_iou(entry: Mapping[str, Any] | None, t: int) -> dict[str, Any] | None:
    """One evaluateImg result reduced to the IoU threshold of index ``t`` (what accumulate reads of it)."""
    if entry is None:
        return None
    return {
        "dtScores": entry["dtScores"],
        "dtMatches": entry["dtMatches"][t : t + 1],
        "dtIgnore": entry["dtIgnore"][t : t + 1],
        "gtIgnore": entry["gtIgnore"],
    }


def ap50_intervals(coco_eval: COCOeval, image_ids: Sequence[Any], spec: BootstrapSpec) -> dict[str, Any]:
    """AP50 interval (area all, the evaluation's detection cap) over resamples of ``image_ids``.

    ``coco_eval`` has run ``evaluate()``; ``image_ids`` are in the order the completeness/purity resamples index
    (the records' order), so both intervals come from the same resamples.
    """
    if spec.unit != "image":
        raise AstrodetInputError("AP50 is resampled by image; a bootstrap over objects has no AP50")
    p = coco_eval.params
    if not coco_eval.evalImgs:
        raise AstrodetInputError("run COCOeval.evaluate() before bootstrapping AP50")
    at_50 = np.flatnonzero(np.isclose(p.iouThrs, 0.5))
    if at_50.size == 0 or "all" not in p.areaRngLbl:
        raise AstrodetInputError("AP50 needs IoU 0.5 among the thresholds and an 'all' area range")
    t, a = int(at_50[0]), p.areaRngLbl.index("all")
    n_cats = len(p.catIds) if p.useCats else 1
    n_img, n_area = len(p.imgIds), len(p.areaRng)
    position = {img: i for i, img in enumerate(p.imgIds)}
    unknown = [img for img in image_ids if img not in position]
    if unknown:
        raise AstrodetInputError(f"image ids {unknown[:5]} were not evaluated by COCOeval")
    entries = [
        [_at_iou(coco_eval.evalImgs[k * n_area * n_img + a * n_img + position[img]], t) for img in image_ids]
        for k in range(n_cats)
    ]
    shell = copy.copy(coco_eval)  # pycocotools' accumulate, run on the resampled per-image results
    params = copy.copy(p)
    params.iouThrs, params.areaRng, params.areaRngLbl = np.array([0.5]), [p.areaRng[a]], ["all"]
    params.maxDets, params.imgIds = [p.maxDets[-1]], list(range(len(image_ids)))
    shell.params, shell._paramsEval = params, copy.copy(params)
    values: list[float] = []
    with contextlib.redirect_stdout(io.StringIO()):
        for idx in resamples(len(image_ids), spec.n_resamples, spec.seed):
            shell.evalImgs = [entries[k][i] for k in range(n_cats) for i in idx.tolist()]
            shell.accumulate()
            precision = shell.eval["precision"]
            valid = precision[precision > -1]
            if valid.size:
                values.append(float(np.mean(valid)))
    return intervals({"AP50": values}, spec.confidence)
