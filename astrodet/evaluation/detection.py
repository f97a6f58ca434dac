"""Completeness and purity of detections: the numbers astronomers quote (Popp et al. 2024), with their curves and bins.

completeness = matched truths / all truths; purity = matched predictions / predictions with score >= the threshold.
Matching is :func:`astrodet.evaluation.matching.match` on boxes or :func:`astrodet.evaluation.sky.match_sky` on
RA/Dec (one-to-one, greedy by descending score), class-aware unless ``class_agnostic``. Undefined ratios are None,
never 0 or NaN: no truths -> completeness None, no predictions -> purity None. Images without truths still count:
their predictions are false positives that lower purity.

Curves over score thresholds come from a single matching per image, and that is exact, not an approximation:
greedy matching visits predictions by descending score, so a prediction's match depends only on the predictions
scored at least as high. The predictions kept at threshold s are exactly such a prefix (equal scores are kept or
dropped together), so matching them alone reproduces the full matching restricted to them. Hence
n_matched(s) = #{matched predictions with score >= s}, and the full curve costs one sort.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from astrodet.errors import AstrodetInputError
from astrodet.evaluation.bootstrap import BootstrapSpec, count_intervals
from astrodet.evaluation.coco_params import LARGE_MIN_SIDE, SMALL_MAX_SIDE
from astrodet.evaluation.matching import MatchResult, MatchRule, as_boxes, match

DEFAULT_SCORE_THRESHOLD = 0.3  # Popp et al. 2024's operating threshold
DEFAULT_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(20))  # 0.00 .. 0.95
# sqrt(area) bin edges in px: around the COCO small/medium/large boundaries, covering the real 1-99% range (7-32 px)
DEFAULT_SIZE_EDGES = (0.0, 8.0, SMALL_MAX_SIDE, 17.0, LARGE_MIN_SIDE, 32.0, math.inf)
BRIGHTNESS_FIELDS = ("mag", "flux")
DEFAULT_BRIGHTNESS_BINS = 5  # quantile bins when no edges are given: equal numbers of truths per bin


@dataclass
class ImageRecord:
    """One image's truths and predictions. Boxes XYXY px; ``true_extra`` holds per-truth numbers (``mag``, ``flux``).

    Classes default to 1 for all boxes (single-class detection) when left as None. ``true_sky`` / ``pred_sky`` are
    (N, 2) RA, Dec in degrees, needed by the sky rule; with them, boxes may be None (a truth table without boxes):
    such objects are then left out of the size bins. A catalogue compared with a truth table is one record.
    """

    true_boxes: Any
    true_classes: Any = None
    pred_boxes: Any = None
    pred_scores: Any = None
    pred_classes: Any = None
    true_extra: Mapping[str, Any] = field(default_factory=dict)
    image_id: Hashable = None
    true_sky: Any = None
    pred_sky: Any = None

    def __post_init__(self) -> None:
        where = f"image {self.image_id!r}" if self.image_id is not None else "image record"
        self.true_sky = _sky(self.true_sky, f"{where}: true positions")
        self.pred_sky = _sky(self.pred_sky, f"{where}: predicted positions")
        self.true_boxes = _boxes(self.true_boxes, self.true_sky, f"{where}: true boxes")
        pred_boxes = [] if self.pred_boxes is None and self.pred_sky is None else self.pred_boxes
        self.pred_boxes = _boxes(pred_boxes, self.pred_sky, f"{where}: predicted boxes")
        n_true, n_pred = len(self.true_boxes), len(self.pred_boxes)
        self.true_classes = _classes(self.true_classes, n_true, f"{where}: true classes")
        self.pred_classes = _classes(self.pred_classes, n_pred, f"{where}: predicted classes")
        scores = np.asarray([] if self.pred_scores is None else self.pred_scores, dtype=float).reshape(-1)
        if scores.shape[0] != n_pred or not np.isfinite(scores).all():
            raise AstrodetInputError(
                f"{where}: need one finite score per predicted box ({n_pred}), got {scores.shape[0]}"
            )
        self.pred_scores = scores
        extra = {}
        for name, values in dict(self.true_extra).items():
            arr = np.asarray(values, dtype=float).reshape(-1)
            if arr.shape[0] != n_true:
                raise AstrodetInputError(f"{where}: true_extra[{name!r}] has {arr.shape[0]} values for {n_true} truths")
            extra[name] = arr
        self.true_extra = extra


def _sky(values: Any, what: str) -> np.ndarray | None:
    if values is None:
        return None
    from astrodet.evaluation.sky import as_sky  # astropy's coordinates load only for sky matching

    return as_sky(values, what)


def _boxes(boxes: Any, sky: np.ndarray | None, what: str) -> np.ndarray:
    """XYXY boxes; NaN rows (unknown size) when only sky positions are given; one box per position."""
    if boxes is None:
        if sky is None:
            raise AstrodetInputError(f"{what}: give boxes or sky positions")
        return np.full((len(sky), 4), np.nan)
    arr = as_boxes(boxes, what)
    if sky is not None and len(sky) != len(arr):
        raise AstrodetInputError(f"{what}: {len(arr)} boxes for {len(sky)} sky positions")
    return arr


def _classes(values: Any, n: int, what: str) -> np.ndarray:
    arr = np.ones(n, dtype=np.int64) if values is None else np.asarray(values).reshape(-1)
    if arr.size == 0:
        arr = arr.astype(np.int64)  # an empty list is float to numpy; keep pooled class ids integers
    if arr.shape[0] != n:
        raise AstrodetInputError(f"{what}: {arr.shape[0]} classes for {n} boxes")
    return arr


def as_record(record: ImageRecord | Mapping[str, Any]) -> ImageRecord:
    """Accept an :class:`ImageRecord` or a mapping with the same keys."""
    if isinstance(record, ImageRecord):
        return record
    if not isinstance(record, Mapping):
        raise AstrodetInputError(f"image record must be an ImageRecord or a mapping, got {type(record).__name__}")
    unknown = set(record) - set(ImageRecord.__dataclass_fields__)
    if unknown:
        raise AstrodetInputError(f"image record has unknown keys {sorted(unknown)}")
    return ImageRecord(**record)


def box_sizes(boxes: np.ndarray) -> np.ndarray:
    """sqrt(area) of XYXY boxes in px: the side of the equal-area square (Clump Scout boxes are square)."""
    return np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))


@dataclass
class _Pooled:
    """Every truth and prediction of the data set after matching, as flat arrays."""

    true_class: np.ndarray
    true_size: np.ndarray
    true_match_score: np.ndarray  # score of the prediction that matched the truth; -inf if none
    true_match_class: np.ndarray  # class of that prediction (valid where true_match_score > -inf)
    true_extra: dict[str, np.ndarray]
    pred_class: np.ndarray
    pred_score: np.ndarray
    pred_size: np.ndarray
    pred_matched: np.ndarray
    true_image: np.ndarray  # index of the record each truth comes from (the bootstrap's image units)
    pred_image: np.ndarray
    pred_truth: np.ndarray  # pooled index of the truth each prediction matched; -1 if none


def _top_k(rec: ImageRecord, max_detections: int | None) -> np.ndarray:
    """Indices of the image's predictions kept: the ``max_detections`` best scores (stable) when a cap is given."""
    n = len(rec.pred_scores)
    if max_detections is None or n <= max_detections:
        return np.arange(n)
    return np.sort(np.argsort(-rec.pred_scores, kind="stable")[:max_detections])


def _match_record(rec: ImageRecord, keep: np.ndarray, rule: MatchRule, class_agnostic: bool) -> MatchResult:
    """The record's kept predictions matched to its truths by boxes (iou, centre) or by RA/Dec (sky)."""
    classes = (None, None) if class_agnostic else (rec.pred_classes[keep], rec.true_classes)
    where = f"image {rec.image_id!r}" if rec.image_id is not None else "image record"
    if rule.kind == "sky":
        if rec.true_sky is None or rec.pred_sky is None:
            raise AstrodetInputError(f"{where}: the sky rule needs RA/Dec of the truths and of the predictions")
        from astrodet.evaluation.sky import match_sky  # astropy's coordinates load only for sky matching

        return match_sky(rec.pred_sky[keep], rec.pred_scores[keep], rec.true_sky, rule, *classes)
    if np.isnan(rec.true_boxes).any() or np.isnan(rec.pred_boxes).any():
        raise AstrodetInputError(f"{where}: {rule.kind} matching needs boxes; without them use a sky rule")
    return match(rec.pred_boxes[keep], rec.pred_scores[keep], rec.true_boxes, rule, *classes)


def _extra_fields(records: Sequence[ImageRecord], names: Iterable[str]) -> list[str]:
    """Fields carried, finite, by every truth of every image (images without truths do not count against a field)."""
    with_truths = [r for r in records if len(r.true_boxes)]

    def carried(name: str) -> bool:
        return all(name in r.true_extra and np.isfinite(r.true_extra[name]).all() for r in with_truths)

    return [name for name in names if with_truths and carried(name)]


def _pool(
    records: Sequence[ImageRecord], rule: MatchRule, class_agnostic: bool, max_detections: int | None, fields: list[str]
) -> _Pooled:
    parts: dict[str, list[np.ndarray]] = {k: [] for k in _Pooled.__dataclass_fields__ if k != "true_extra"}
    extras: dict[str, list[np.ndarray]] = {name: [] for name in fields}
    n_true_before = 0
    for index, rec in enumerate(records):
        keep = _top_k(rec, max_detections)
        boxes, scores, classes = rec.pred_boxes[keep], rec.pred_scores[keep], rec.pred_classes[keep]
        result = _match_record(rec, keep, rule, class_agnostic)
        matched_to = np.maximum(result.true_to_pred, 0)
        has = result.true_matched
        parts["true_class"].append(rec.true_classes)
        parts["true_size"].append(box_sizes(rec.true_boxes))
        parts["true_match_score"].append(np.where(has, scores[matched_to] if len(scores) else 0.0, -np.inf))
        parts["true_match_class"].append(classes[matched_to] if len(classes) else rec.true_classes)
        parts["pred_class"].append(classes)
        parts["pred_score"].append(scores)
        parts["pred_size"].append(box_sizes(boxes))
        parts["pred_matched"].append(result.pred_matched)
        parts["true_image"].append(np.full(len(rec.true_boxes), index, dtype=np.int64))
        parts["pred_image"].append(np.full(len(boxes), index, dtype=np.int64))
        parts["pred_truth"].append(np.where(result.pred_matched, result.pred_to_true + n_true_before, -1))
        n_true_before += len(rec.true_boxes)
        for name in fields:
            extras[name].append(rec.true_extra.get(name, np.zeros(0)))  # absent only where the image has no truths
    flat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}
    flat["pred_matched"] = flat["pred_matched"].astype(bool)
    for key in ("true_image", "pred_image", "pred_truth"):
        flat[key] = flat[key].astype(np.int64)
    return _Pooled(**flat, true_extra={k: np.concatenate(v) for k, v in extras.items()})


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _f1(completeness: float | None, purity: float | None) -> float | None:
    if completeness is None or purity is None:
        return None
    total = completeness + purity
    return 2 * completeness * purity / total if total > 0 else 0.0


def _scores(n_true: int, n_pred: int, n_matched_true: int, n_matched_pred: int) -> dict[str, Any]:
    c, p = _ratio(n_matched_true, n_true), _ratio(n_matched_pred, n_pred)
    return {"completeness": c, "purity": p, "f1": _f1(c, p), "n_true": n_true, "n_pred": n_pred}


def _curves(pool: _Pooled, thresholds: np.ndarray) -> dict[str, list[Any]]:
    """Completeness, purity and F1 at each threshold, by counting sorted scores (see the module docstring)."""
    pred_sorted = np.sort(pool.pred_score)
    hit_sorted = np.sort(pool.pred_score[pool.pred_matched])
    n_pred = len(pred_sorted) - np.searchsorted(pred_sorted, thresholds, side="left")
    n_hit = len(hit_sorted) - np.searchsorted(hit_sorted, thresholds, side="left")
    n_true = len(pool.true_class)
    rows = [_scores(n_true, int(p), int(m), int(m)) for p, m in zip(n_pred, n_hit, strict=True)]
    return {
        "score_threshold": [float(t) for t in thresholds],
        "completeness": [r["completeness"] for r in rows],
        "purity": [r["purity"] for r in rows],
        "f1": [r["f1"] for r in rows],
        "n_pred": [int(p) for p in n_pred],
        "n_matched": [int(m) for m in n_hit],
    }


def _label(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _per_class(pool: _Pooled, threshold: float, names: Mapping[Any, str]) -> dict[str, dict[str, Any]]:
    true_hit = pool.true_match_score >= threshold
    pred_kept = pool.pred_score >= threshold
    out: dict[str, dict[str, Any]] = {}
    for cls in _class_ids(pool, names):
        is_true, is_pred = pool.true_class == cls, (pool.pred_class == cls) & pred_kept
        n_hit_true = int(np.count_nonzero(is_true & true_hit))
        n_hit_pred = int(np.count_nonzero(is_pred & pool.pred_matched))
        row = _scores(int(is_true.sum()), int(is_pred.sum()), n_hit_true, n_hit_pred)
        out[names.get(cls, str(cls))] = {
            "class_id": _label(cls),
            **row,
            "n_matched": n_hit_true,
            "n_matched_pred": n_hit_pred,
        }
    return out


def _class_ids(pool: _Pooled, names: Mapping[Any, str]) -> list[Any]:
    seen = set(np.unique(pool.true_class).tolist()) | set(np.unique(pool.pred_class).tolist()) | set(names)
    ids = sorted(seen, key=lambda c: (str(type(c)), c))
    labels = [names.get(c, str(c)) for c in ids]
    if len(set(labels)) != len(labels):
        raise AstrodetInputError(f"class names must be unique, got {labels}")
    return ids


def _confusion(pool: _Pooled, threshold: float, names: Mapping[Any, str]) -> dict[str, dict[str, int]]:
    """Matched pairs by (true class, predicted class): off-diagonal only when matching is class-agnostic."""
    hit = pool.true_match_score >= threshold
    ids = _class_ids(pool, names)
    return {
        names.get(t, str(t)): {
            names.get(p, str(p)): int(np.count_nonzero(hit & (pool.true_class == t) & (pool.true_match_class == p)))
            for p in ids
        }
        for t in ids
    }


def _bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value, bins [lo, hi) except the last, which is closed; -1 outside the edges or unknown (NaN)."""
    idx = np.searchsorted(edges, values, side="right") - 1
    idx[values == edges[-1]] = len(edges) - 2
    idx[(values < edges[0]) | (values > edges[-1]) | np.isnan(values)] = -1
    return idx


def _edge(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _binned(values: np.ndarray, hit: np.ndarray, edges: Sequence[float], kind: str, label: str) -> dict[str, Any]:
    """Counts and ratio per bin; ``kind`` is completeness (over truths) or purity (over kept predictions)."""
    edges_arr = np.asarray(edges, dtype=float)
    idx = _bin_index(values, edges_arr)
    n_key = "n_true" if kind == "completeness" else "n_pred"
    bins = []
    for b in range(len(edges_arr) - 1):
        inside = idx == b
        n, m = int(inside.sum()), int(np.count_nonzero(inside & hit))
        bins.append(
            {"lo": _edge(edges_arr[b]), "hi": _edge(edges_arr[b + 1]), n_key: n, "n_matched": m, kind: _ratio(m, n)}
        )
    return {"field": label, "bins": bins}


def _quantile_edges(values: np.ndarray, n_bins: int) -> list[float]:
    """Edges putting equal numbers of truths in each bin; one closed bin [v, v] if all values are equal."""
    if not values.size:
        return []
    edges = [float(v) for v in np.unique(np.quantile(values, np.linspace(0, 1, n_bins + 1)))]
    return edges if len(edges) > 1 else edges * 2


def _bins(
    pool: _Pooled,
    threshold: float,
    size_edges: Sequence[float],
    brightness_edges: Mapping[str, Sequence[float]],
    n_bins: int,
) -> dict[str, Any]:
    true_hit = pool.true_match_score >= threshold
    kept = pool.pred_score >= threshold
    out = {
        "completeness_by_size": _binned(pool.true_size, true_hit, size_edges, "completeness", "sqrt_area_px"),
        "purity_by_size": _binned(pool.pred_size[kept], pool.pred_matched[kept], size_edges, "purity", "sqrt_area_px"),
    }
    if pool.true_size.size and np.isnan(pool.true_size).all():
        del out["completeness_by_size"]  # truths from a table without boxes: no size to bin by
    for name, values in pool.true_extra.items():
        given = brightness_edges.get(name)
        edges = _quantile_edges(values, n_bins) if given is None else given
        if len(edges) >= 2:
            out[f"completeness_by_{name}"] = _binned(values, true_hit, edges, "completeness", name)
    return out


def _check_edges(edges: Sequence[float], what: str) -> None:
    arr = np.asarray(edges, dtype=float)
    if arr.ndim != 1 or arr.size < 2 or np.isnan(arr).any() or not (np.diff(arr) > 0).all():
        raise AstrodetInputError(f"{what} must be at least two increasing numbers, got {list(edges)}")


def evaluate_detections(
    records: Iterable[ImageRecord | Mapping[str, Any]],
    rule: MatchRule | None = None,
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    class_agnostic: bool = False,
    class_names: Mapping[Any, str] | None = None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    size_edges: Sequence[float] = DEFAULT_SIZE_EDGES,
    brightness_fields: Sequence[str] = BRIGHTNESS_FIELDS,
    brightness_edges: Mapping[str, Sequence[float]] | None = None,
    n_brightness_bins: int = DEFAULT_BRIGHTNESS_BINS,
    max_detections: int | None = None,
    bootstrap: BootstrapSpec | None = None,
) -> dict[str, Any]:
    """Completeness, purity and F1 overall and per class, their curves over ``thresholds``, and binned completeness.

    ``max_detections`` keeps each image's best-scored predictions only (set it to the model's cap if the predictions
    were not already capped). ``bootstrap`` adds confidence intervals of completeness and purity (``bootstrap`` key)
    from resamples of the records (unit ``image``) or of the matched pairs and unmatched objects (unit ``object``).
    Returns a JSON-able dict; see docs/evaluation.md for its layout.
    """
    rule = rule or MatchRule()
    recs = [as_record(r) for r in records]
    grid = np.asarray(sorted(set(float(t) for t in thresholds)), dtype=float)
    if not math.isfinite(score_threshold) or grid.size == 0 or not np.isfinite(grid).all():
        raise AstrodetInputError("score threshold and threshold grid must be finite numbers")
    _check_edges(size_edges, "size bin edges")
    for name, edges in (brightness_edges or {}).items():
        _check_edges(edges, f"{name} bin edges")
    if max_detections is not None and max_detections < 1:
        raise AstrodetInputError(f"max_detections must be >= 1 or None, got {max_detections}")
    names = dict(class_names or {})
    pool = _pool(recs, rule, class_agnostic, max_detections, _extra_fields(recs, brightness_fields))
    t = float(score_threshold)
    n_true, n_pred = len(pool.true_class), int(np.count_nonzero(pool.pred_score >= t))
    n_matched = int(np.count_nonzero(pool.true_match_score >= t))
    result = {
        **_scores(n_true, n_pred, n_matched, n_matched),
        "n_matched": n_matched,
        "n_images": len(recs),
        "score_threshold": t,
        "matching": {**rule.describe(), "class_aware": not class_agnostic, "max_detections": max_detections},
        "per_class": _per_class(pool, t, names),
        "confusion": _confusion(pool, t, names),
        "curves": _curves(pool, grid),
        "bins": _bins(pool, t, size_edges, dict(brightness_edges or {}), n_brightness_bins),
    }
    if bootstrap is not None:
        result["bootstrap"] = _bootstrap(pool, t, len(recs), bootstrap)
    return result


def _bootstrap(pool: _Pooled, threshold: float, n_records: int, spec: BootstrapSpec) -> dict[str, Any]:
    """Intervals over images (each truth and prediction in its record) or over objects: a matched pair is one unit,
    each unmatched truth or prediction another."""
    true_hit, kept = pool.true_match_score >= threshold, pool.pred_score >= threshold
    if spec.unit == "image":
        return count_intervals(pool.true_image, true_hit, pool.pred_image, kept, n_records, spec)
    n_true = len(pool.true_class)
    alone = pool.pred_truth < 0
    pred_unit = pool.pred_truth.copy()
    pred_unit[alone] = n_true + np.arange(int(alone.sum()))
    return count_intervals(np.arange(n_true), true_hit, pred_unit, kept, n_true + int(alone.sum()), spec)


def coco_class_names(gt: Mapping[str, Any]) -> dict[int, str]:
    """Category id -> name of a COCO dataset dict."""
    return {int(c["id"]): str(c["name"]) for c in gt.get("categories", [])}


def _xywh_to_xyxy(boxes: list[Sequence[float]]) -> np.ndarray:
    arr = np.asarray(boxes, dtype=float).reshape(-1, 4)
    return np.concatenate([arr[:, :2], arr[:, :2] + arr[:, 2:]], axis=1)


def records_from_coco(
    gt: Mapping[str, Any], results: Sequence[Mapping[str, Any]], extra_fields: Sequence[str] = BRIGHTNESS_FIELDS
) -> list[ImageRecord]:
    """Per-image records from a COCO dataset dict and COCO-format results (bbox xywh), one per ground-truth image.

    An annotation field in ``extra_fields`` is carried when every annotation has it as a number.
    """
    images = [img["id"] for img in gt.get("images", [])]
    anns: dict[Any, list[Mapping[str, Any]]] = {i: [] for i in images}
    dets: dict[Any, list[Mapping[str, Any]]] = {i: [] for i in images}
    for ann in gt.get("annotations", []):
        anns.setdefault(ann["image_id"], []).append(ann)
    for i, det in enumerate(results):
        if det.get("image_id") not in dets:
            raise AstrodetInputError(f"result {i}: image_id {det.get('image_id')!r} is not in the ground truth")
        dets[det["image_id"]].append(det)
    all_anns = gt.get("annotations", [])
    carried = [
        f
        for f in extra_fields
        if all(isinstance(a.get(f), int | float) and not isinstance(a.get(f), bool) for a in all_anns)
    ]
    return [
        ImageRecord(
            true_boxes=_xywh_to_xyxy([a["bbox"] for a in anns[i]]),
            true_classes=[a["category_id"] for a in anns[i]],
            pred_boxes=_xywh_to_xyxy([d["bbox"] for d in dets[i]]),
            pred_scores=[d["score"] for d in dets[i]],
            pred_classes=[d["category_id"] for d in dets[i]],
            true_extra={f: [a[f] for a in anns[i]] for f in carried},
            image_id=i,
        )
        for i in images
    ]


def evaluate_coco_detections(
    gt: Mapping[str, Any], results: Sequence[Mapping[str, Any]], **kwargs: Any
) -> dict[str, Any]:
    """:func:`evaluate_detections` on a COCO dataset dict and COCO-format results, named by the COCO categories."""
    kwargs.setdefault("class_names", coco_class_names(gt))
    return evaluate_detections(records_from_coco(gt, results), **kwargs)
