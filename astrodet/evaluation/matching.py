"""One-to-one matching of predicted boxes to true boxes, greedy by descending score, as COCO does.

Why greedy by score: it is the rule pycocotools uses, so astrodet's completeness and purity agree with COCO recall and
precision at the same IoU, and a prediction's match depends only on the predictions scored above it. That last
property is what lets :mod:`astrodet.evaluation.detection` match once and read every score threshold off the result.

Two rules (:class:`MatchRule`):

- ``iou``: a prediction may match a truth with IoU >= ``iou_threshold``; it takes the still-unmatched truth with the
  highest IoU (ties: the lowest truth index).
- ``centre``: a prediction may match a truth whose centre lies within ``radius`` pixels (distance <= radius) of its
  own; it takes the nearest still-unmatched truth (ties: the lowest truth index). Clumps are near point sources, so
  a PSF FWHM is the natural radius, and box sizes drawn by volunteers do not matter.

Predictions are visited by descending score; equal scores keep their input order (stable sort). Boxes are XYXY
pixels (x1, y1, x2, y2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from astrodet.errors import AstrodetInputError

MatchKind = Literal["iou", "centre"]
_KIND_ALIASES = {"iou": "iou", "centre": "centre", "center": "centre"}


@dataclass(frozen=True)
class MatchRule:
    """How a prediction may match a truth: ``MatchRule("iou", iou_threshold=0.5)`` or ``MatchRule("centre", radius=r)``.

    ``radius`` (pixels) has no default: it should be one PSF FWHM of the images being evaluated, which only the
    caller knows.
    """

    kind: MatchKind = "iou"
    iou_threshold: float = 0.5
    radius: float | None = None

    def __post_init__(self) -> None:
        kind = _KIND_ALIASES.get(str(self.kind).lower())
        if kind is None:
            raise AstrodetInputError(f"match rule kind must be 'iou' or 'centre', got {self.kind!r}")
        object.__setattr__(self, "kind", kind)
        if kind == "iou":
            t = float(self.iou_threshold)
            if not 0.0 < t <= 1.0:
                raise AstrodetInputError(f"IoU threshold must be in (0, 1], got {self.iou_threshold!r}")
            object.__setattr__(self, "iou_threshold", t)
            object.__setattr__(self, "radius", None)
        else:
            if self.radius is None or not math.isfinite(float(self.radius)) or float(self.radius) <= 0:
                raise AstrodetInputError(f"centre matching needs a radius > 0 px (one PSF FWHM), got {self.radius!r}")
            object.__setattr__(self, "radius", float(self.radius))

    @classmethod
    def parse(cls, text: str) -> MatchRule:
        """Read a rule from the command line: ``iou``, ``iou:0.5``, ``centre:2.5`` (radius in px)."""
        kind, _, value = text.strip().partition(":")
        try:
            number = float(value) if value else None
        except ValueError:
            raise AstrodetInputError(f"match rule {text!r}: {value!r} is not a number") from None
        if _KIND_ALIASES.get(kind.lower()) == "iou":
            return cls("iou", iou_threshold=0.5 if number is None else number)
        return cls(kind, radius=number)  # type: ignore[arg-type]

    def describe(self) -> dict[str, Any]:
        """JSON-able description, stored in reports so a number is never read without its rule."""
        if self.kind == "iou":
            return {"kind": "iou", "iou_threshold": self.iou_threshold, "text": str(self)}
        return {"kind": "centre", "radius_px": self.radius, "text": str(self)}

    def __str__(self) -> str:
        if self.kind == "iou":
            return f"IoU >= {self.iou_threshold:g}, one-to-one, greedy by score"
        return f"centre distance <= {self.radius:g} px, one-to-one, greedy by score"


@dataclass(frozen=True)
class MatchResult:
    """``pred_to_true[i]`` is the truth index prediction ``i`` matched (-1: none); ``true_to_pred`` the reverse."""

    pred_to_true: np.ndarray
    true_to_pred: np.ndarray

    @property
    def pred_matched(self) -> np.ndarray:
        return self.pred_to_true >= 0

    @property
    def true_matched(self) -> np.ndarray:
        return self.true_to_pred >= 0

    @property
    def n_matched(self) -> int:
        return int(np.count_nonzero(self.pred_to_true >= 0))


def as_boxes(boxes: Any, what: str = "boxes") -> np.ndarray:
    """``boxes`` as a float (N, 4) XYXY array, refusing non-finite values and x2 < x1 or y2 < y1."""
    arr = np.asarray(boxes, dtype=float)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise AstrodetInputError(f"{what} must have shape (N, 4) (x1, y1, x2, y2), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise AstrodetInputError(f"{what} contain non-finite coordinates")
    if (arr[:, 2] < arr[:, 0]).any() or (arr[:, 3] < arr[:, 1]).any():
        raise AstrodetInputError(f"{what} must be XYXY with x2 >= x1 and y2 >= y1")
    return arr


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4) with every box in ``b`` (M, 4), XYXY, no +1 pixel convention (as COCO)."""
    a, b = np.asarray(a, dtype=float).reshape(-1, 4), np.asarray(b, dtype=float).reshape(-1, 4)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def centre_distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in pixels between the centres of every box in ``a`` and every box in ``b`` (XYXY)."""
    a, b = np.asarray(a, dtype=float).reshape(-1, 4), np.asarray(b, dtype=float).reshape(-1, 4)
    ca = np.stack([(a[:, 0] + a[:, 2]) / 2, (a[:, 1] + a[:, 3]) / 2], axis=1)
    cb = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)
    return np.hypot(ca[:, None, 0] - cb[None, :, 0], ca[:, None, 1] - cb[None, :, 1])


def _affinity(pred_boxes: np.ndarray, true_boxes: np.ndarray, rule: MatchRule) -> tuple[np.ndarray, np.ndarray]:
    """(allowed pairs, preference) matrices: a prediction takes the allowed truth with the highest preference."""
    if rule.kind == "iou":
        iou = iou_matrix(pred_boxes, true_boxes)
        return iou >= rule.iou_threshold, iou
    dist = centre_distance_matrix(pred_boxes, true_boxes)
    return dist <= rule.radius, -dist


def match(
    pred_boxes: Any,
    pred_scores: Any,
    true_boxes: Any,
    rule: MatchRule | None = None,
    pred_classes: Any = None,
    true_classes: Any = None,
) -> MatchResult:
    """Match predictions to truths one-to-one, highest score first; class-aware when both class arrays are given.

    Cost: one (N_pred, N_true) matrix, then one masked argmax per prediction that has any allowed truth.
    """
    rule = rule or MatchRule()
    pred = as_boxes(pred_boxes, "predicted boxes")
    true = as_boxes(true_boxes, "true boxes")
    scores = np.asarray(pred_scores, dtype=float).reshape(-1)
    if scores.shape[0] != pred.shape[0]:
        raise AstrodetInputError(f"{pred.shape[0]} predicted boxes but {scores.shape[0]} scores")
    if not np.isfinite(scores).all():
        raise AstrodetInputError("prediction scores must be finite")
    pred_to_true = np.full(pred.shape[0], -1, dtype=np.int64)
    true_to_pred = np.full(true.shape[0], -1, dtype=np.int64)
    if pred.shape[0] == 0 or true.shape[0] == 0:
        return MatchResult(pred_to_true, true_to_pred)
    allowed, preference = _affinity(pred, true, rule)
    if pred_classes is not None and true_classes is not None:
        pc, tc = np.asarray(pred_classes).reshape(-1), np.asarray(true_classes).reshape(-1)
        if pc.shape[0] != pred.shape[0] or tc.shape[0] != true.shape[0]:
            raise AstrodetInputError("class arrays must have one entry per box")
        allowed &= pc[:, None] == tc[None, :]
    candidates = np.flatnonzero(allowed.any(axis=1))
    order = candidates[np.argsort(-scores[candidates], kind="stable")]
    free = np.ones(true.shape[0], dtype=bool)
    for i in order:
        ok = allowed[i] & free
        if not ok.any():
            continue
        j = int(np.argmax(np.where(ok, preference[i], -np.inf)))
        free[j] = False
        pred_to_true[i], true_to_pred[j] = j, i
    return MatchResult(pred_to_true, true_to_pred)
