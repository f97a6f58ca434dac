"""COCO settings for clumps: area ranges change APs/m/l but not AP, maxDets is honoured, stats match pycocotools."""

from __future__ import annotations

import contextlib
import copy
import csv
import io
from pathlib import Path

import numpy as np
import pytest

from astrodet.errors import AstrodetInputError
from astrodet.evaluation.coco_params import (
    ASTRODET_AREA_RANGES,
    LARGE_MIN_SIDE,
    SMALL_MAX_SIDE,
    apply_astrodet_params,
    area_ranges,
    build_coco_eval,
    coco_stats,
    max_dets_list,
    run_coco_bbox,
)

COCO_DEFAULT_RANGES = {"all": [0, 1e10], "small": [0, 32**2], "medium": [32**2, 96**2], "large": [96**2, 1e10]}


def _gt(boxes_per_image: list[list[list[float]]]) -> dict:
    anns = [
        {"id": k, "image_id": i + 1, "category_id": 1, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
        for i, boxes in enumerate(boxes_per_image)
        for k, b in enumerate(boxes, start=1 + 100 * i)
    ]
    images = [{"id": i + 1, "file_name": f"{i}.png", "width": 200, "height": 200} for i in range(len(boxes_per_image))]
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "clump"}]}


def _perfect(gt: dict) -> list[dict]:
    return [
        {"image_id": a["image_id"], "category_id": 1, "bbox": list(a["bbox"]), "score": 0.99 - 0.01 * j}
        for j, a in enumerate(gt["annotations"])
    ]


def test_area_ranges_are_named_for_pycocotools_and_follow_the_sides() -> None:
    assert list(ASTRODET_AREA_RANGES) == ["all", "small", "medium", "large"]
    assert ASTRODET_AREA_RANGES["medium"] == [SMALL_MAX_SIDE**2, LARGE_MIN_SIDE**2]
    assert area_ranges(10, 20)["large"][0] == 400.0
    with pytest.raises(AstrodetInputError):
        area_ranges(20, 10)


def test_apply_sets_the_params() -> None:
    ev = build_coco_eval(_gt([[[10, 10, 12, 12]]]), [], max_detections=300)
    assert ev.params.maxDets == [1, 10, 300]
    assert ev.params.areaRngLbl == ["all", "small", "medium", "large"]
    assert ev.params.areaRng[1] == [0.0, 169.0]
    assert max_dets_list(5) == [1, 5, 5]
    with pytest.raises(AstrodetInputError):
        max_dets_list(0)
    with pytest.raises(AstrodetInputError, match="named"):
        apply_astrodet_params(ev, ranges={"all": [0, 1], "tiny": [0, 1]})


def test_clump_ranges_split_aps_apm_apl_while_ap_is_unchanged() -> None:
    # sides 10 / 16 / 30 px: all "small" for COCO, one per range for astrodet; the 16 px one is found badly
    gt = _gt([[[20, 20, 10, 10], [60, 60, 16, 16], [120, 120, 30, 30]]])
    results = _perfect(gt)
    results[1]["bbox"] = [63, 60, 16, 16]  # IoU 13/19 = 0.68: a TP at IoU 0.5, a FP from IoU 0.7 up
    results[1]["score"] = 0.5
    ours = run_coco_bbox(gt, results)
    default = run_coco_bbox(gt, results, ranges=COCO_DEFAULT_RANGES)
    assert ours["AP"] == pytest.approx(default["AP"]) and ours["AP"] < 1.0
    assert ours["APs"] == pytest.approx(1.0) and ours["APl"] == pytest.approx(1.0)
    assert ours["APm"] == pytest.approx(0.4)  # matched at IoU 0.50, 0.55, 0.60, 0.65 of the 10 thresholds
    assert default["APs"] == pytest.approx(default["AP"])
    assert default["APm"] is None and default["APl"] is None
    assert ours["params"]["area_ranges"]["small"] == [0.0, 169.0]


def test_perfect_predictions_give_ap_one() -> None:
    rng = np.random.default_rng(0)
    boxes = [[[float(x), float(y), float(s), float(s)] for x, y, s in rng.uniform([0, 0, 5], [150, 150, 40], (4, 3))]]
    stats = run_coco_bbox(_gt(boxes * 3), _perfect(_gt(boxes * 3)))
    for key in ("AP", "AP50", "AP75", "AR@100"):
        assert stats[key] == pytest.approx(1.0), key
    assert stats["per_class"] == {"clump": {"AP": pytest.approx(1.0), "AP50": pytest.approx(1.0)}}


def test_max_detections_is_honoured() -> None:
    gt = _gt([[[15.0 * k, 15.0 * k, 12, 12] for k in range(12)]])
    results = _perfect(gt)
    capped = run_coco_bbox(gt, results, max_detections=10)
    assert capped["AR@10"] == pytest.approx(10 / 12)
    assert capped["AP"] < 0.9
    assert "AR@100" not in capped and capped["params"]["max_dets"] == [1, 10, 10]
    wide = run_coco_bbox(gt, results, max_detections=300)
    assert wide["AR@300"] == pytest.approx(1.0) and wide["AP"] == pytest.approx(1.0)


def test_stats_equal_pycocotools_summarize_at_its_default_cap() -> None:
    rng = np.random.default_rng(1)
    boxes = [[[*rng.uniform(0, 150, 2), s, s] for s in rng.uniform(5, 35, 5)] for _ in range(6)]
    gt = _gt(boxes)
    results = [dict(r, bbox=list(np.add(r["bbox"], rng.normal(0, 2, 4)))) for r in _perfect(gt)]
    results += [{"image_id": 1, "category_id": 1, "bbox": [100, 100, 20, 20], "score": 0.95}]
    ev = build_coco_eval(gt, results)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    ours = coco_stats(ev)
    assert list(ours) == ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR@1", "AR@10", "AR@100", "ARs", "ARm", "ARl"]
    np.testing.assert_allclose([-1 if v is None else v for v in ours.values()], ev.stats)


def test_empty_results_score_zero_and_inputs_are_not_mutated() -> None:
    gt = _gt([[[20, 20, 10, 10]]])
    assert run_coco_bbox(gt, [])["AP"] == 0.0
    results = _perfect(gt)
    before, gt_before = copy.deepcopy(results), copy.deepcopy(gt)
    run_coco_bbox(gt, results)
    assert results == before and gt == gt_before
    with pytest.raises(AstrodetInputError, match="image_id"):
        run_coco_bbox(gt, [{"image_id": 5, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}])


def test_boundaries_are_the_quartiles_of_real_clump_scout_boxes(shared_data: Path) -> None:
    table = shared_data / "clumpscout_boxes" / "clumpscout_boxes_train.csv"
    if not table.is_file():
        pytest.skip(f"{table} not found")
    with table.open(newline="") as handle:
        rows = np.array([[float(r[k]) for k in ("x1", "x2", "y1", "y2")] for r in csv.DictReader(handle)])
    kept = (rows.min(axis=1) >= 10) & (rows.max(axis=1) <= 190)  # inside the 5% margin of the 200 px crop
    side = np.sqrt((rows[kept, 1] - rows[kept, 0]) * (rows[kept, 3] - rows[kept, 2]))
    q1, q3 = np.percentile(side, [25, 75])
    assert abs(q1 - SMALL_MAX_SIDE) < 0.5 and abs(q3 - LARGE_MIN_SIDE) < 0.5
