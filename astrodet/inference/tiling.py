"""Frames larger than the model's input: cut into overlapping tiles (SAHI), predicted tile by tile, stitched back.

Why SAHI, and what is ours: SAHI's ``get_slice_bboxes`` cuts the frame (fixed-size tiles, the last row and column
shifted to end on the frame's edge) and SAHI's postprocess merges duplicates (``postprocess.py``); our own
:class:`~astrodet.inference.model.Detector` predicts each tile, so one tiling path serves both frameworks. What SAHI
lacks is a rule for the *truncated* box a tile reports for an object cut by its edge: its overlap metric with the
whole object's box (seen by the neighbouring tile) can be anything, so no IoU/IoS threshold removes it reliably.
The rule here: each tile owns the part of the frame closer to its centre than to its neighbours' (cut lines in the
middle of each overlap), widened by a quarter of the overlap; a detection is kept only from a tile that owns its
box centre. A truncated box's centre lies within half its width of the tile edge, so objects up to half the
overlap across are reported only from a tile that sees them whole; an object near a cut line can be kept by both
tiles, and the merge (NMS at Popp et al.'s IoU 0.2) keeps one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from astrodet.inference.model import Detections

DEFAULT_OVERLAP = 0.25  # of the tile side: 50 px for 200 px tiles, more than the largest clump box (~40 px)


@dataclass(frozen=True)
class Tile:
    """One tile: its pixel window ``[x0, x1) x [y0, y1)`` and the window of box centres it owns."""

    x0: int
    y0: int
    x1: int
    y1: int
    own_x: tuple[float, float]
    own_y: tuple[float, float]


def _axis_ownership(spans: Sequence[tuple[int, int]]) -> dict[tuple[int, int], tuple[float, float]]:
    """Per distinct span along one axis, the centre interval it owns (cut lines mid-overlap, widened)."""
    ordered = sorted(set(spans))
    owned: dict[tuple[int, int], tuple[float, float]] = {}
    for k, (start, end) in enumerate(ordered):
        low, high = -np.inf, np.inf
        if k > 0:
            prev_end = ordered[k - 1][1]
            overlap = prev_end - start
            low = (start + prev_end) / 2 - overlap / 4
        if k + 1 < len(ordered):
            next_start = ordered[k + 1][0]
            overlap = end - next_start
            high = (next_start + end) / 2 + overlap / 4
        owned[(start, end)] = (float(low), float(high))
    return owned


def make_tiles(height: int, width: int, tile: int | None, overlap: float = DEFAULT_OVERLAP) -> list[Tile]:
    """The tiles of a ``height`` x ``width`` frame; one tile (the whole frame) when it fits in ``tile``."""
    if tile is None or (height <= tile and width <= tile):
        return [Tile(0, 0, width, height, (-np.inf, np.inf), (-np.inf, np.inf))]
    from sahi.slicing import get_slice_bboxes

    boxes = get_slice_bboxes(
        image_height=height,
        image_width=width,
        slice_height=tile,
        slice_width=tile,
        auto_slice_resolution=False,
        overlap_height_ratio=overlap,
        overlap_width_ratio=overlap,
    )
    own_x = _axis_ownership([(b[0], b[2]) for b in boxes])
    own_y = _axis_ownership([(b[1], b[3]) for b in boxes])
    return [Tile(x0, y0, x1, y1, own_x[(x0, x1)], own_y[(y0, y1)]) for x0, y0, x1, y1 in boxes]


def tile_views(pixels: np.ndarray, tiles: Sequence[Tile]) -> list[np.ndarray]:
    """Each tile's pixels, contiguous (framework predictors may not accept strided views)."""
    return [np.ascontiguousarray(pixels[t.y0 : t.y1, t.x0 : t.x1]) for t in tiles]


def stitch(tiles: Sequence[Tile], predictions: Sequence[Detections]) -> Detections:
    """Tile detections shifted into the frame, each kept only from the tile that owns its box centre."""
    kept_boxes, kept_scores, kept_labels = [], [], []
    for tile, found in zip(tiles, predictions, strict=True):
        if not len(found):
            continue
        boxes = found.boxes + np.array([tile.x0, tile.y0, tile.x0, tile.y0], dtype=np.float64)
        cx = (boxes[:, 0] + boxes[:, 2]) / 2
        cy = (boxes[:, 1] + boxes[:, 3]) / 2
        own = (cx >= tile.own_x[0]) & (cx < tile.own_x[1]) & (cy >= tile.own_y[0]) & (cy < tile.own_y[1])
        kept_boxes.append(boxes[own])
        kept_scores.append(found.scores[own])
        kept_labels.append(found.labels[own])
    if not kept_boxes:
        return Detections.empty()
    return Detections(np.concatenate(kept_boxes), np.concatenate(kept_scores), np.concatenate(kept_labels))
