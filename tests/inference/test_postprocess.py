"""Post-processing as Popp et al.: threshold, NMS at IoU 0.2, merging, touching boxes, the host's centre."""

from __future__ import annotations

import numpy as np
import pytest

from astrodet.errors import AstrodetInputError
from astrodet.inference.model import Detections
from astrodet.inference.postprocess import PostProcessing, postprocess


def _found(rows: list[tuple[float, float, float, float, float, int]]) -> Detections:
    table = np.array(rows, dtype=float)
    return Detections(table[:, :4], table[:, 4], table[:, 5].astype(int))


def test_threshold_then_per_class_nms_at_popps_iou() -> None:
    found = _found([
        (10, 10, 20, 20, 0.9, 0),
        (11, 11, 21, 21, 0.8, 0),  # IoU 0.68 with the first: suppressed
        (11, 11, 21, 21, 0.7, 1),  # other class: kept unless class-agnostic
        (17, 10, 27, 20, 0.6, 0),  # IoU 0.18 with the first: kept at 0.2
        (50, 50, 60, 60, 0.2, 0),  # below 0.3
    ])  # fmt: skip
    kept = postprocess(found, PostProcessing(), 100, 100)
    assert kept.scores.tolist() == [0.9, 0.7, 0.6]
    agnostic = postprocess(found, PostProcessing(class_agnostic=True), 100, 100)
    assert agnostic.scores.tolist() == [0.9, 0.6]
    assert len(postprocess(found, PostProcessing(score_threshold=0.0), 100, 100)) == 4


def test_merging_modes_grow_the_best_box() -> None:
    found = _found([(10, 10, 20, 20, 0.9, 0), (12, 12, 22, 22, 0.5, 0), (40, 40, 44, 44, 0.8, 0)])
    merged = postprocess(found, PostProcessing(merge="greedynmm"), 100, 100)
    assert merged.boxes.tolist() == [[10, 10, 22, 22], [40, 40, 44, 44]]
    assert merged.scores.tolist() == [0.9, 0.8]


def test_touching_detections_merge_and_the_centre_is_dropped() -> None:
    found = _found([(10, 10, 20, 20, 0.9, 0), (20.5, 10, 30, 20, 0.8, 0), (31.5, 10, 40, 20, 0.7, 0),
                    (48, 48, 52, 52, 0.95, 0)])  # fmt: skip
    touching = postprocess(found, PostProcessing(merge_touching=True), 100, 100)
    assert touching.boxes.tolist() == [[48, 48, 52, 52], [10, 10, 30, 20], [31.5, 10, 40, 20]]
    wider = postprocess(found, PostProcessing(merge_touching=True, touch_gap=2.0), 100, 100)
    assert wider.boxes.tolist() == [[48, 48, 52, 52], [10, 10, 40, 20]]
    no_centre = postprocess(found, PostProcessing(drop_centre=3.0), 100, 100)
    assert no_centre.scores.tolist() == [0.9, 0.8, 0.7]


def test_bad_settings_are_one_line_errors() -> None:
    with pytest.raises(AstrodetInputError, match="--nms-iou"):
        PostProcessing(nms_iou=0.0)
    with pytest.raises(AstrodetInputError, match="--score-threshold"):
        PostProcessing(score_threshold=1.5)
    with pytest.raises(AstrodetInputError, match="--drop-centre"):
        PostProcessing(drop_centre=-1.0)
