"""Post-processing of one image's detections as Popp et al. (2024): score threshold, NMS, and optional clean-ups.

Steps, in order (each configurable on the command line):

1. keep detections with score >= ``score_threshold`` (Popp et al.: 0.3);
2. remove duplicates with SAHI's postprocess: ``nms`` (default; IoU ``nms_iou``, Popp et al.: 0.2, per class
   unless ``class_agnostic``), or ``greedynmm`` / ``nmm`` (merge instead of suppress: the union box, the best
   score). On tiled frames this is also what merges an object reported by two overlapping tiles;
3. optionally merge touching detections of one class (boxes that overlap or lie within ``touch_gap`` px: SAHI's
   transitive NMM on the grown boxes), for clumps split in two by the detector;
4. optionally drop detections whose centre lies within ``drop_centre`` of the image centre: the host galaxy's
   bulge on a cutout centred on the galaxy, which detectors tend to report as a clump.

The result is sorted by score (highest first; ties by position), which fixes each detection's ``object_index``.
SAHI runs on its numpy backend so results do not depend on the machine (its torchvision backend is chosen on GPUs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from astrodet.errors import AstrodetInputError
from astrodet.inference.model import Detections

MERGE_MODES = ("nms", "greedynmm", "nmm")
MATCH_METRICS = ("iou", "ios")
_TOUCH_THRESHOLD = 1e-9  # any positive overlap of the grown boxes


@dataclass(frozen=True)
class PostProcessing:
    score_threshold: float = 0.3
    nms_iou: float = 0.2
    merge: str = "nms"
    match_metric: str = "iou"
    class_agnostic: bool = False
    merge_touching: bool = False
    touch_gap: float = 1.0
    drop_centre: float | None = None  # radius in pixels of the input image

    def __post_init__(self) -> None:
        if not 0.0 <= self.score_threshold <= 1.0:
            raise AstrodetInputError(f"--score-threshold: expected a score in [0, 1], got {self.score_threshold}")
        if not 0.0 < self.nms_iou <= 1.0:
            raise AstrodetInputError(f"--nms-iou: expected an overlap in (0, 1], got {self.nms_iou}")
        if self.merge not in MERGE_MODES:
            raise AstrodetInputError(f"--merge: expected one of {', '.join(MERGE_MODES)}, got {self.merge!r}")
        if self.match_metric not in MATCH_METRICS:
            raise AstrodetInputError(f"--match-metric: expected iou or ios, got {self.match_metric!r}")
        if self.touch_gap < 0:
            raise AstrodetInputError(f"--touch-gap: expected pixels >= 0, got {self.touch_gap}")
        if self.drop_centre is not None and self.drop_centre < 0:
            raise AstrodetInputError(f"--drop-centre: expected a radius >= 0, got {self.drop_centre}")

    def to_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _sahi():
    """SAHI's combine module on its numpy backend (set once; imported lazily: it is only needed here)."""
    from sahi.postprocess import combine
    from sahi.postprocess.backends import get_postprocess_backend, set_postprocess_backend

    if get_postprocess_backend() != "numpy":
        set_postprocess_backend("numpy")
    return combine


def _as_sahi(found: Detections, boxes: np.ndarray | None = None) -> np.ndarray:
    """SAHI's (N, 6) layout: x1, y1, x2, y2, score, category."""
    chosen = found.boxes if boxes is None else boxes
    return np.column_stack([chosen, found.scores, found.labels.astype(np.float64)])


def _merged(found: Detections, groups: dict[int, list[int]]) -> Detections:
    """Each kept detection grown to the union of the boxes merged into it, with the best score."""
    keep = sorted(groups)
    boxes = np.empty((len(keep), 4))
    scores = np.empty(len(keep))
    for k, index in enumerate(keep):
        members = [index, *groups[index]]
        chosen = found.boxes[members]
        boxes[k] = (chosen[:, 0].min(), chosen[:, 1].min(), chosen[:, 2].max(), chosen[:, 3].max())
        scores[k] = found.scores[members].max()
    return Detections(boxes, scores, found.labels[keep])


def suppress(found: Detections, post: PostProcessing) -> Detections:
    """Step 2: SAHI NMS / greedy NMM / NMM with the configured metric and threshold."""
    if len(found) < 2:
        return found
    combine = _sahi()
    metric = post.match_metric.upper()
    table = _as_sahi(found)
    if post.merge == "nms":
        func = combine.nms if post.class_agnostic else combine.batched_nms
        return found.select(np.asarray(func(table, match_metric=metric, match_threshold=post.nms_iou), dtype=int))
    if post.merge == "greedynmm":
        func = combine.greedy_nmm if post.class_agnostic else combine.batched_greedy_nmm
    else:
        func = combine.nmm if post.class_agnostic else combine.batched_nmm
    return _merged(found, func(table, match_metric=metric, match_threshold=post.nms_iou))


def merge_touching(found: Detections, gap: float, class_agnostic: bool) -> Detections:
    """Step 3: detections whose boxes, grown by ``gap / 2`` on each side, overlap become one (transitively)."""
    if len(found) < 2:
        return found
    combine = _sahi()
    grown = found.boxes + np.array([-gap / 2, -gap / 2, gap / 2, gap / 2])
    table = _as_sahi(found, grown)
    func = combine.nmm if class_agnostic else combine.batched_nmm
    return _merged(found, func(table, match_metric="IOS", match_threshold=_TOUCH_THRESHOLD))


def drop_centre(found: Detections, width: int, height: int, radius_px: float) -> Detections:
    """Step 4: remove detections centred within ``radius_px`` of the image centre."""
    cx = (found.boxes[:, 0] + found.boxes[:, 2]) / 2 - width / 2
    cy = (found.boxes[:, 1] + found.boxes[:, 3]) / 2 - height / 2
    return found.select(np.hypot(cx, cy) > radius_px)


def sort_by_score(found: Detections) -> Detections:
    """Highest score first; ties by y then x, so the order (and object_index) is the same on every run."""
    order = np.lexsort((found.boxes[:, 0], found.boxes[:, 1], -found.scores))
    return found.select(order)


def postprocess(found: Detections, post: PostProcessing, width: int, height: int) -> Detections:
    """All steps for one image of ``width`` x ``height`` pixels."""
    found = found.select(found.scores >= post.score_threshold)
    found = suppress(found, post)
    if post.merge_touching:
        found = merge_touching(found, post.touch_gap, post.class_agnostic)
    if post.drop_centre is not None:
        found = drop_centre(found, width, height, post.drop_centre)
    return sort_by_score(found)
