"""COCO bbox evaluation settings for compact sources, and a pycocotools run that honours them.

Why not COCO's defaults: COCO calls a box "small" below 32^2 px^2, so every Clump Scout clump (square boxes, side
4-48 px, median 16.6 px in the 200x200 crop) would be "small" and APm/APl would be empty (-1). astrodet keeps the
names small/medium/large (pycocotools' summarize looks them up by name) but moves the boundaries to the quartiles of
the real box sides: in shared/data/clumpscout_boxes (train, the 29,725 boxes kept inside the 5% crop margin) the side
quartiles are 12.9 and 20.7 px, so

- small  : area <  13^2 px^2  (side < 13 px, ~25% of clumps: the faint, barely resolved ones near the PSF size)
- medium : 13^2 .. 21^2       (~50%)
- large  : area >= 21^2 px^2  (side >= 21 px, ~25%)

Each range then holds enough clumps for a stable AP (valid split: 24% / 51% / 25%). pycocotools treats both range
ends as inclusive, as it does for its own defaults.

``maxDets``: COCO's headline AP uses 100 detections per image; a model capped at N detections must be evaluated at
N, or AP/AR silently change meaning. pycocotools' ``summarize`` hard-codes maxDets=100 for the headline AP (it
prints -1 for other caps), so :func:`coco_stats` reads the accumulated arrays with the configured cap instead.
AP itself is always pycocotools' own (``evaluate`` + ``accumulate``); nothing here re-implements it.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Iterator, Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from astrodet.errors import AstrodetInputError

SMALL_MAX_SIDE = 13.0  # px: lower quartile of real Clump Scout box sides (12.9 px)
LARGE_MIN_SIDE = 21.0  # px: upper quartile (20.7 px)
MAX_AREA = 1e5**2  # px^2: COCO's "no upper limit"
DEFAULT_MAX_DETECTIONS = 100  # must equal the model's per-image detection cap
AREA_LABELS = ("all", "small", "medium", "large")


def area_ranges(
    small_max_side: float = SMALL_MAX_SIDE, large_min_side: float = LARGE_MIN_SIDE
) -> dict[str, list[float]]:
    """COCO area ranges (px^2) named all/small/medium/large, from box-side boundaries in pixels."""
    if not 0 < small_max_side <= large_min_side:
        raise AstrodetInputError(
            f"area ranges need 0 < small_max_side <= large_min_side (px), got {small_max_side}, {large_min_side}"
        )
    small, large = float(small_max_side) ** 2, float(large_min_side) ** 2
    return {"all": [0.0, MAX_AREA], "small": [0.0, small], "medium": [small, large], "large": [large, MAX_AREA]}


ASTRODET_AREA_RANGES = area_ranges()


def max_dets_list(max_detections: int = DEFAULT_MAX_DETECTIONS) -> list[int]:
    """COCO's three maxDets (AR@1, AR@10, AR@cap) with the cap last, as pycocotools expects."""
    if not isinstance(max_detections, int | np.integer) or isinstance(max_detections, bool) or max_detections < 1:
        raise AstrodetInputError(f"max detections per image must be a positive integer, got {max_detections!r}")
    cap = int(max_detections)
    return [1, 10, cap] if cap >= 10 else [1, cap, cap]


def apply_astrodet_params(
    coco_eval: COCOeval,
    max_detections: int = DEFAULT_MAX_DETECTIONS,
    ranges: Mapping[str, Sequence[float]] | None = None,
) -> COCOeval:
    """Set ``areaRng``, ``areaRngLbl`` and ``maxDets`` of a COCOeval (before ``evaluate``); returns it for chaining."""
    ranges = dict(ASTRODET_AREA_RANGES if ranges is None else ranges)
    if tuple(ranges) != AREA_LABELS:
        raise AstrodetInputError(f"area ranges must be named {list(AREA_LABELS)} in that order, got {list(ranges)}")
    coco_eval.params.areaRng = [[float(lo), float(hi)] for lo, hi in ranges.values()]
    coco_eval.params.areaRngLbl = list(AREA_LABELS)
    coco_eval.params.maxDets = max_dets_list(max_detections)
    return coco_eval


def _mean_valid(values: np.ndarray) -> float | None:
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else None


def _select(coco_eval: COCOeval, ap: bool, iou: float | None, area: str, max_det: int, k: Any = slice(None)) -> Any:
    """The slice of pycocotools' accumulated precision/recall that its own ``summarize`` averages."""
    p = coco_eval.params
    a = p.areaRngLbl.index(area)
    m = [i for i, d in enumerate(p.maxDets) if d == max_det]
    t = slice(None) if iou is None else np.flatnonzero(np.isclose(p.iouThrs, iou))
    if ap:  # precision: [T, R, K, A, M]
        return coco_eval.eval["precision"][t][:, :, k, a][..., m]
    return coco_eval.eval["recall"][t][:, k, a][..., m]  # recall: [T, K, A, M]


def _stat_specs(max_dets: Sequence[int]) -> dict[str, tuple[bool, float | None, str, int]]:
    """(is AP, IoU or None for 0.50:0.95, area label, maxDets) of each named statistic, in COCO's order."""
    cap = max_dets[-1]
    specs: dict[str, tuple[bool, float | None, str, int]] = {
        "AP": (True, None, "all", cap),
        "AP50": (True, 0.5, "all", cap),
        "AP75": (True, 0.75, "all", cap),
        "APs": (True, None, "small", cap),
        "APm": (True, None, "medium", cap),
        "APl": (True, None, "large", cap),
    }
    for d in dict.fromkeys(max_dets):
        specs[f"AR@{d}"] = (False, None, "all", d)
    specs.update({"ARs": (False, None, "small", cap), "ARm": (False, None, "medium", cap)})
    specs["ARl"] = (False, None, "large", cap)
    return specs


def coco_stats(coco_eval: COCOeval) -> dict[str, float | None]:
    """Named COCO statistics of an accumulated COCOeval, at its own maxDets cap; None where pycocotools has -1."""
    if not coco_eval.eval:
        raise AstrodetInputError("run COCOeval.evaluate() and accumulate() before reading its statistics")
    specs = _stat_specs(coco_eval.params.maxDets)
    return {name: _mean_valid(_select(coco_eval, *spec)) for name, spec in specs.items()}


def per_class_ap(coco_eval: COCOeval, names: Mapping[int, str]) -> dict[str, dict[str, float | None]]:
    """AP and AP50 per category (area all, maxDets cap), read from the accumulated precision array."""
    cap = coco_eval.params.maxDets[-1]
    out: dict[str, dict[str, float | None]] = {}
    for k, cat_id in enumerate(coco_eval.params.catIds):
        name = names.get(cat_id, str(cat_id))
        out[name] = {
            "AP": _mean_valid(_select(coco_eval, True, None, "all", cap, k)),
            "AP50": _mean_valid(_select(coco_eval, True, 0.5, "all", cap, k)),
        }
    return out


def _coco_from_dict(data: Mapping[str, Any]) -> COCO:
    """A pycocotools COCO object from a dict (deep-copied; ``area`` filled as w*h and ``iscrowd`` 0 where absent)."""
    dataset = copy.deepcopy(dict(data))
    for key in ("images", "annotations", "categories"):
        if not isinstance(dataset.get(key), list):
            raise AstrodetInputError(f"ground truth must be a COCO dict with a list under {key!r}")
    for ann in dataset["annotations"]:
        ann.setdefault("area", float(ann["bbox"][2]) * float(ann["bbox"][3]))
        ann.setdefault("iscrowd", 0)
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _load_results(gt: COCO, results: Sequence[Mapping[str, Any]]) -> COCO:
    """pycocotools' loadRes on a copy of ``results``; an empty list gives an empty result set (AP 0, not a crash)."""
    known = set(gt.getImgIds())
    for i, res in enumerate(results):
        if res.get("image_id") not in known:
            raise AstrodetInputError(f"result {i}: image_id {res.get('image_id')!r} is not in the ground truth")
        if len(res.get("bbox", ())) != 4 or "score" not in res:
            raise AstrodetInputError(f"result {i}: needs bbox [x, y, w, h] and score")
    if not results:
        return _coco_from_dict(
            {"images": gt.dataset["images"], "annotations": [], "categories": gt.dataset["categories"]}
        )
    with contextlib.redirect_stdout(io.StringIO()):
        return gt.loadRes([dict(r, bbox=[float(v) for v in r["bbox"]]) for r in results])


def build_coco_eval(
    gt: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    max_detections: int = DEFAULT_MAX_DETECTIONS,
    ranges: Mapping[str, Sequence[float]] | None = None,
) -> COCOeval:
    """A bbox COCOeval on a COCO dataset dict and COCO-format results, with astrodet's params, not yet evaluated."""
    gt_coco = _coco_from_dict(gt)
    return apply_astrodet_params(COCOeval(gt_coco, _load_results(gt_coco, results), "bbox"), max_detections, ranges)


def run_coco_bbox(
    gt: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    max_detections: int = DEFAULT_MAX_DETECTIONS,
    ranges: Mapping[str, Sequence[float]] | None = None,
) -> dict[str, Any]:
    """COCO bbox evaluation with astrodet's settings: ``{AP, AP50, ..., per_class, params}`` (None = undefined).

    ``gt`` is a COCO dataset dict, ``results`` COCO-format detections (image_id, category_id, bbox xywh, score).
    """
    return coco_summary(evaluated_coco_eval(gt, results, max_detections, ranges))


def evaluated_coco_eval(
    gt: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    max_detections: int = DEFAULT_MAX_DETECTIONS,
    ranges: Mapping[str, Sequence[float]] | None = None,
) -> COCOeval:
    """:func:`build_coco_eval`, evaluated and accumulated quietly: for the summary and for bootstrapping AP50."""
    coco_eval = build_coco_eval(gt, results, max_detections, ranges)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval.evaluate()
        coco_eval.accumulate()
    return coco_eval


def coco_summary(coco_eval: COCOeval) -> dict[str, Any]:
    """The report's ``coco`` entry from an accumulated COCOeval: ``{AP, AP50, ..., per_class, params}``.

    One layout for astrodet's own runs and both framework adapters, so reports compare key for key.
    """
    names = {c["id"]: c["name"] for c in coco_eval.cocoGt.dataset["categories"]}
    params = coco_eval.params
    return {
        **coco_stats(coco_eval),
        "per_class": per_class_ap(coco_eval, names),
        "params": {
            "iou_type": params.iouType,
            "max_dets": list(params.maxDets),
            "area_ranges": dict(zip(params.areaRngLbl, params.areaRng, strict=True)),
        },
    }


@contextlib.contextmanager
def patched_cocoeval(
    module: ModuleType, names: Sequence[str], max_detections: int, built: list[COCOeval] | None = None
) -> Iterator[None]:
    """Within the block, the COCOeval classes ``module`` uses apply astrodet's params when constructed.

    Detectron2's and mmdet's evaluators build their own ``COCOeval`` (or subclasses) with COCO's fixed area ranges
    inside their evaluation code; swapping those module-level names for subclasses that call
    :func:`apply_astrodet_params` keeps everything else the framework's own code path. Each object built is appended
    to ``built`` when given, so the caller can read the accumulated evaluation afterwards.
    """

    def with_params(base: type[COCOeval]) -> type[COCOeval]:
        class AstrodetCOCOeval(base):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                apply_astrodet_params(self, max_detections)
                if built is not None:
                    built.append(self)

        return AstrodetCOCOeval

    saved = {name: getattr(module, name) for name in names}
    try:
        for name, base in saved.items():
            setattr(module, name, with_params(base))
        yield
    finally:
        for name, base in saved.items():
            setattr(module, name, base)
