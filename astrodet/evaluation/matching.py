"""One-to-one matching of predictions to truths, greedy by descending score, as COCO does.

Why greedy by score: it is the rule pycocotools uses, so astrodet's completeness and purity agree with COCO recall and
precision at the same IoU, and a prediction's match depends only on the predictions scored above it. That last
property is what lets :mod:`astrodet.evaluation.detection` match once and read every score threshold off the result.

Two rules (:class:`MatchRule`):

- ``iou``: a prediction may match a truth with IoU >= ``iou_threshold``; it takes the still-unmatched truth with the
  highest IoU (ties: the lowest truth index).
- ``centre``: a prediction may match a truth whose centre lies within ``radius`` pixels (distance <= radius) of its
  own; it takes the nearest still-unmatched truth (ties: the lowest truth index). Clumps are near point sources, so
  a PSF FWHM is the natural radius, and box sizes drawn by volunteers do not matter.
- ``sky``: the same as ``centre`` with the angular separation of RA/Dec positions, ``radius`` in arcsec
  (:mod:`astrodet.evaluation.sky` computes the separations; catalogues need no images).

Predictions are visited by descending score; equal scores keep their input order (stable sort). Boxes are XYXY
pixels (x1, y1, x2, y2). Every rule reduces to candidate pairs with a preference, and :func:`greedy_match` is the one
implementation of the greedy rule for all of them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from astrodet.errors import AstrodetInputError

MatchKind = Literal["iou", "centre", "sky"]
_KIND_ALIASES = {"iou": "iou", "centre": "centre", "center": "centre", "sky": "sky"}
# radius unit on the command line -> (rule kind, factor to the rule's unit: px for centre, arcsec for sky)
_RADIUS_UNITS = {
    "px": ("centre", 1.0),
    "pix": ("centre", 1.0),
    "pixel": ("centre", 1.0),
    "pixels": ("centre", 1.0),
    "arcsec": ("sky", 1.0),
    "as": ("sky", 1.0),
    '"': ("sky", 1.0),
    "arcmin": ("sky", 60.0),
    "deg": ("sky", 3600.0),
}
# the unit a bare number means for each kind on the command line; "radius" has none: a pixel and an arcsecond differ
_DEFAULT_UNIT = {"centre": "px", "center": "px", "sky": "arcsec", "radius": None}


@dataclass(frozen=True)
class MatchRule:
    """How a prediction may match a truth: ``MatchRule("iou", iou_threshold=0.5)``, ``MatchRule("centre", radius=r)``
    (pixels) or ``MatchRule("sky", radius=r)`` (arcsec).

    ``radius`` has no default here: it should be one PSF FWHM, which only the caller knows (the framework adapters'
    configs default to 4.0 px).
    """

    kind: MatchKind = "iou"
    iou_threshold: float = 0.5
    radius: float | None = None

    def __post_init__(self) -> None:
        kind = _KIND_ALIASES.get(str(self.kind).lower())
        if kind is None:
            raise AstrodetInputError(f"match rule kind must be 'iou', 'centre' or 'sky', got {self.kind!r}")
        object.__setattr__(self, "kind", kind)
        if kind == "iou":
            t = float(self.iou_threshold)
            if not 0.0 < t <= 1.0:
                raise AstrodetInputError(f"IoU threshold must be in (0, 1], got {self.iou_threshold!r}")
            object.__setattr__(self, "iou_threshold", t)
            object.__setattr__(self, "radius", None)
        else:
            unit = "px" if kind == "centre" else "arcsec"
            if self.radius is None or not math.isfinite(float(self.radius)) or float(self.radius) <= 0:
                raise AstrodetInputError(
                    f"{kind} matching needs a radius > 0 {unit} (one PSF FWHM), got {self.radius!r}"
                )
            object.__setattr__(self, "radius", float(self.radius))

    @classmethod
    def parse(cls, text: str) -> MatchRule:
        """Read a rule from the command line: ``iou``, ``iou:0.5``, ``centre:2.5`` (px), ``centre:4px``,
        ``radius:4px``, ``radius:1.5arcsec`` (sky; also arcmin, deg) or ``sky:1.5`` (arcsec).

        The radius unit chooses the rule: pixels compare box centres in each image, angles compare RA/Dec.
        """
        kind, _, value = text.strip().partition(":")
        key = kind.strip().lower()
        if _KIND_ALIASES.get(key) == "iou":
            try:
                return cls("iou", iou_threshold=float(value) if value.strip() else 0.5)
            except ValueError:
                raise AstrodetInputError(f"match rule {text!r}: {value!r} is not a number") from None
        if key not in _DEFAULT_UNIT:
            raise AstrodetInputError(f"match rule {text!r}: kind must be iou, centre, radius or sky")
        if not value.strip() and key != "radius":
            return cls(key, radius=None)  # type: ignore[arg-type]  # refused, with the message saying what is missing
        found = re.fullmatch(r"\s*([-+0-9.eE]+)\s*([A-Za-z\"]*)\s*", value)
        unit = (found.group(2).lower() or _DEFAULT_UNIT[key]) if found else None
        if found is None or unit not in _RADIUS_UNITS:
            raise AstrodetInputError(
                f"match rule {text!r}: the radius must be a number with a unit, e.g. {key}:4px or {key}:1.5arcsec"
            )
        try:
            number = float(found.group(1))
        except ValueError:
            raise AstrodetInputError(f"match rule {text!r}: {found.group(1)!r} is not a number") from None
        rule_kind, factor = _RADIUS_UNITS[unit]
        return cls(rule_kind, radius=number * factor)  # type: ignore[arg-type]

    def describe(self) -> dict[str, Any]:
        """JSON-able description, stored in reports so a number is never read without its rule."""
        if self.kind == "iou":
            return {"kind": "iou", "iou_threshold": self.iou_threshold, "text": str(self)}
        if self.kind == "sky":
            return {"kind": "sky", "radius_arcsec": self.radius, "text": str(self)}
        return {"kind": "centre", "radius_px": self.radius, "text": str(self)}

    def __str__(self) -> str:
        if self.kind == "iou":
            return f"IoU >= {self.iou_threshold:g}, one-to-one, greedy by score"
        if self.kind == "sky":
            return f"sky separation <= {self.radius:g} arcsec, one-to-one, greedy by score"
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


def as_rows(values: Any, layout: tuple[str, ...], what: str, noun: str) -> np.ndarray:
    """``values`` as a float (N, len(layout)) array of finite numbers; errors name ``layout`` and ``noun``."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return arr.reshape(0, len(layout))
    if arr.ndim != 2 or arr.shape[1] != len(layout):
        raise AstrodetInputError(f"{what} must have shape (N, {len(layout)}) ({', '.join(layout)}), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise AstrodetInputError(f"{what} contain non-finite {noun}")
    return arr


def as_boxes(boxes: Any, what: str = "boxes") -> np.ndarray:
    """``boxes`` as a float (N, 4) XYXY array, refusing non-finite values and x2 < x1 or y2 < y1."""
    arr = as_rows(boxes, ("x1", "y1", "x2", "y2"), what, "coordinates")
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
    if rule.kind == "sky":
        raise AstrodetInputError("the sky rule compares RA/Dec, not boxes: use astrodet.evaluation.sky.match_sky")
    dist = centre_distance_matrix(pred_boxes, true_boxes)
    return dist <= rule.radius, -dist


def check_scores(scores: Any, n_pred: int) -> np.ndarray:
    """One finite score per prediction, as a float vector."""
    arr = np.asarray(scores, dtype=float).reshape(-1)
    if arr.shape[0] != n_pred:
        raise AstrodetInputError(f"{n_pred} predictions but {arr.shape[0]} scores")
    if not np.isfinite(arr).all():
        raise AstrodetInputError("prediction scores must be finite")
    return arr


def same_class_pairs(
    pred_index: np.ndarray, true_index: np.ndarray, pred_classes: Any, true_classes: Any, n_pred: int, n_true: int
) -> np.ndarray:
    """Mask of the candidate pairs whose classes agree (class-aware matching)."""
    pc, tc = np.asarray(pred_classes).reshape(-1), np.asarray(true_classes).reshape(-1)
    if pc.shape[0] != n_pred or tc.shape[0] != n_true:
        raise AstrodetInputError("class arrays must have one entry per prediction and per truth")
    return pc[pred_index] == tc[true_index]


def greedy_match(
    scores: np.ndarray, n_true: int, pred_index: np.ndarray, true_index: np.ndarray, preference: np.ndarray
) -> MatchResult:
    """The greedy rule on candidate pairs: ``(pred_index[k], true_index[k])`` may match, with ``preference[k]``.

    Predictions are visited by descending score (stable: equal scores keep their input order); each takes its
    still-unmatched candidate truth of highest preference (ties: the lowest truth index). Sorting the pairs once by
    (visit rank, -preference, truth index) and taking each pair whose prediction and truth are both still free is
    exactly that visit, so a dense matrix (pixels) and a sparse neighbour search (catalogues) share one rule.
    """
    n_pred = scores.shape[0]
    pred_to_true = np.full(n_pred, -1, dtype=np.int64)
    true_to_pred = np.full(n_true, -1, dtype=np.int64)
    if pred_index.size == 0:
        return MatchResult(pred_to_true, true_to_pred)
    rank = np.empty(n_pred, dtype=np.int64)
    rank[np.argsort(-scores, kind="stable")] = np.arange(n_pred)
    order = np.lexsort((true_index, -preference, rank[pred_index]))
    for i, j in zip(pred_index[order].tolist(), true_index[order].tolist(), strict=True):
        if pred_to_true[i] < 0 and true_to_pred[j] < 0:
            pred_to_true[i], true_to_pred[j] = j, i
    return MatchResult(pred_to_true, true_to_pred)


def match(
    pred_boxes: Any,
    pred_scores: Any,
    true_boxes: Any,
    rule: MatchRule | None = None,
    pred_classes: Any = None,
    true_classes: Any = None,
) -> MatchResult:
    """Match predicted boxes to true boxes one-to-one, highest score first; class-aware when both class arrays are
    given. Cost: one (N_pred, N_true) matrix, then one step per allowed pair.
    """
    rule = rule or MatchRule()
    pred = as_boxes(pred_boxes, "predicted boxes")
    true = as_boxes(true_boxes, "true boxes")
    scores = check_scores(pred_scores, pred.shape[0])
    if pred.shape[0] == 0 or true.shape[0] == 0:
        return greedy_match(scores, true.shape[0], np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    allowed, preference = _affinity(pred, true, rule)
    pred_index, true_index = np.nonzero(allowed)
    if pred_classes is not None and true_classes is not None:
        keep = same_class_pairs(pred_index, true_index, pred_classes, true_classes, pred.shape[0], true.shape[0])
        pred_index, true_index = pred_index[keep], true_index[keep]
    return greedy_match(scores, true.shape[0], pred_index, true_index, preference[pred_index, true_index])
