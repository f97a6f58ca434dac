"""Completeness and purity: a hand-counted set, edge cases, per-class sums, curves against brute force, bins."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from astrodet.errors import AstrodetInputError
from astrodet.evaluation.detection import (
    ImageRecord,
    evaluate_coco_detections,
    evaluate_detections,
    records_from_coco,
)
from astrodet.evaluation.matching import MatchRule

NAMES = {1: "clump", 2: "odd_clump"}


def _box(x: float, y: float, side: float = 10.0) -> list[float]:
    return [x, y, x + side, y + side]


def hand_set() -> list[dict]:
    """4 truths, 5 predictions >= 0.3 (and one below), 2 correct matches at IoU 0.5, class-aware.

    image 1: truth clump A (matched by 0.9), truth clump B (missed; a 0.2 prediction on it is below threshold),
             an FP at 0.8 far from everything.
    image 2: truth odd clump C, predicted as clump at 0.7 (right place, wrong class); a second prediction of the
             right class on C at 0.6 matches it.
    image 3: no truths, one FP at 0.95 (empty images count against purity).
    image 4: truth clump D, no predictions.
    """
    return [
        {
            "true_boxes": [_box(0, 0), _box(50, 50)],
            "true_classes": [1, 1],
            "pred_boxes": [_box(1, 0), _box(100, 100), _box(50, 50)],
            "pred_scores": [0.9, 0.8, 0.2],
            "pred_classes": [1, 1, 1],
            "true_extra": {"mag": [18.0, 21.0]},
            "image_id": 1,
        },
        {
            "true_boxes": [_box(20, 20)],
            "true_classes": [2],
            "pred_boxes": [_box(20, 20), _box(21, 20)],
            "pred_scores": [0.7, 0.6],
            "pred_classes": [1, 2],
            "true_extra": {"mag": [19.0]},
            "image_id": 2,
        },
        {"true_boxes": [], "true_classes": [], "pred_boxes": [_box(5, 5)], "pred_scores": [0.95], "pred_classes": [2]},
        {"true_boxes": [_box(30, 30, 20)], "true_classes": [1], "true_extra": {"mag": [20.0]}, "image_id": 4},
    ]


def test_hand_counted_completeness_and_purity() -> None:
    r = evaluate_detections(hand_set(), score_threshold=0.3, class_names=NAMES)
    assert (r["n_true"], r["n_pred"], r["n_matched"], r["n_images"]) == (4, 5, 2, 4)
    assert r["completeness"] == pytest.approx(2 / 4)
    assert r["purity"] == pytest.approx(2 / 5)
    assert r["f1"] == pytest.approx(2 * 0.5 * 0.4 / 0.9)
    assert r["per_class"]["clump"] == {
        "class_id": 1,
        "completeness": pytest.approx(1 / 3),
        "purity": pytest.approx(1 / 3),
        "f1": pytest.approx(1 / 3),
        "n_true": 3,
        "n_pred": 3,
        "n_matched": 1,
        "n_matched_pred": 1,
    }
    assert r["per_class"]["odd_clump"]["n_pred"] == 2
    assert r["per_class"]["odd_clump"]["completeness"] == 1.0
    assert r["matching"]["kind"] == "iou" and r["matching"]["class_aware"] is True
    json.dumps(r, allow_nan=False)


def test_lowering_the_threshold_admits_the_low_score_match() -> None:
    r = evaluate_detections(hand_set(), score_threshold=0.1)
    assert (r["n_pred"], r["n_matched"]) == (6, 3)


def test_class_agnostic_lets_the_wrong_class_match_and_reports_the_confusion() -> None:
    r = evaluate_detections(hand_set(), class_agnostic=True, class_names=NAMES)
    # image 2: the 0.7 "clump" now takes odd clump C, and the 0.6 prediction becomes a false positive
    assert (r["n_pred"], r["n_matched"]) == (5, 2)
    assert r["confusion"]["odd_clump"] == {"clump": 1, "odd_clump": 0}
    assert r["per_class"]["odd_clump"]["n_matched"] == 1  # truth side
    assert r["per_class"]["odd_clump"]["n_matched_pred"] == 0  # none of the odd-clump predictions matched
    assert r["matching"]["class_aware"] is False


@pytest.mark.parametrize("agnostic", [False, True])
def test_per_class_counts_sum_to_the_overall_counts(agnostic: bool) -> None:
    r = evaluate_detections(_random_records(200, seed=5), class_agnostic=agnostic, class_names=NAMES)
    rows = r["per_class"].values()
    assert sum(x["n_true"] for x in rows) == r["n_true"]
    assert sum(x["n_pred"] for x in rows) == r["n_pred"]
    assert sum(x["n_matched"] for x in rows) == r["n_matched"]
    assert sum(x["n_matched_pred"] for x in rows) == r["n_matched"]
    assert sum(sum(row.values()) for row in r["confusion"].values()) == r["n_matched"]


def test_undefined_ratios_are_none() -> None:
    only_fp = evaluate_detections([{"true_boxes": [], "pred_boxes": [_box(0, 0)], "pred_scores": [0.9]}])
    assert only_fp["completeness"] is None and only_fp["purity"] == 0.0 and only_fp["f1"] is None
    only_truth = evaluate_detections([{"true_boxes": [_box(0, 0)]}])
    assert only_truth["completeness"] == 0.0 and only_truth["purity"] is None and only_truth["f1"] is None
    nothing = evaluate_detections([])
    assert (nothing["completeness"], nothing["purity"], nothing["n_images"]) == (None, None, 0)
    assert all(v is None for v in nothing["curves"]["purity"])
    json.dumps(nothing, allow_nan=False)


def test_f1_is_zero_when_nothing_matches() -> None:
    r = evaluate_detections([{"true_boxes": [_box(0, 0)], "pred_boxes": [_box(50, 50)], "pred_scores": [0.9]}])
    assert (r["completeness"], r["purity"], r["f1"]) == (0.0, 0.0, 0.0)


def test_empty_images_lower_purity() -> None:
    base = [{"true_boxes": [_box(0, 0)], "pred_boxes": [_box(0, 0)], "pred_scores": [0.9]}]
    empty = {"true_boxes": [], "pred_boxes": [_box(5, 5), _box(40, 40)], "pred_scores": [0.9, 0.5]}
    assert evaluate_detections(base)["purity"] == 1.0
    assert evaluate_detections([*base, empty])["purity"] == pytest.approx(1 / 3)


def test_centre_rule_is_applied() -> None:
    records = [{"true_boxes": [_box(0, 0)], "pred_boxes": [[-10, -10, 20, 20]], "pred_scores": [0.9]}]
    assert evaluate_detections(records)["n_matched"] == 0
    r = evaluate_detections(records, MatchRule("centre", radius=2.0))
    assert r["n_matched"] == 1 and r["matching"]["radius_px"] == 2.0


def _random_records(n_images: int, seed: int) -> list[ImageRecord]:
    """Crowded images where greedy matching has real conflicts: jittered duplicates, FPs, two classes."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n_images):
        n = int(rng.integers(0, 7))
        c = rng.uniform(10, 60, (n, 2))
        side = rng.uniform(6, 30, n)
        true = np.c_[c - side[:, None] / 2, c + side[:, None] / 2]
        m = int(rng.integers(0, 10))
        src = true[rng.integers(0, n, m)] if n else rng.uniform(0, 60, (m, 4))
        pred = src + rng.normal(0, 2.5, (m, 4))
        pred[:, 2:] = np.maximum(pred[:, 2:], pred[:, :2] + 1)
        scores = np.round(rng.random(m), 2)  # rounded: ties at grid values
        records.append(
            ImageRecord(
                true, rng.integers(1, 3, n), pred, scores, rng.integers(1, 3, m), {"mag": rng.normal(20, 1, n)}, i
            )
        )
    return records


def _kept(records: list[ImageRecord], threshold: float) -> list[ImageRecord]:
    out = []
    for r in records:
        k = r.pred_scores >= threshold
        out.append(ImageRecord(r.true_boxes, r.true_classes, r.pred_boxes[k], r.pred_scores[k], r.pred_classes[k]))
    return out


@pytest.mark.parametrize("rule", [MatchRule("iou", iou_threshold=0.5), MatchRule("centre", radius=3.0)])
def test_curves_equal_rematching_at_each_threshold(rule: MatchRule) -> None:
    records = _random_records(150, seed=11)
    curves = evaluate_detections(records, rule)["curves"]
    for i, t in enumerate(curves["score_threshold"]):
        brute = evaluate_detections(_kept(records, t), rule, score_threshold=t, thresholds=[t])
        assert (curves["n_pred"][i], curves["n_matched"][i]) == (brute["n_pred"], brute["n_matched"]), t
        assert curves["completeness"][i] == brute["completeness"]


def test_curves_are_monotone_and_contain_the_headline() -> None:
    r = evaluate_detections(_random_records(300, seed=2), score_threshold=0.3)
    c, n_pred = r["curves"]["completeness"], r["curves"]["n_pred"]
    assert r["curves"]["score_threshold"] == pytest.approx([0.05 * i for i in range(20)])
    assert all(a >= b for a, b in itertools.pairwise(c))
    assert all(a >= b for a, b in itertools.pairwise(n_pred))
    i = r["curves"]["score_threshold"].index(0.3)
    assert (c[i], r["curves"]["purity"][i]) == (r["completeness"], r["purity"])


def test_size_bins_hand_counts_and_totals() -> None:
    r = evaluate_detections(hand_set(), size_edges=[0, 15, 100])
    comp = r["bins"]["completeness_by_size"]
    assert comp["field"] == "sqrt_area_px"
    assert [(b["lo"], b["hi"], b["n_true"], b["n_matched"]) for b in comp["bins"]] == [(0, 15, 3, 2), (15, 100, 1, 0)]
    pur = r["bins"]["purity_by_size"]["bins"]
    assert [(b["n_pred"], b["n_matched"]) for b in pur] == [(5, 2), (0, 0)]
    assert pur[1]["purity"] is None
    default = evaluate_detections(_random_records(100, seed=1))
    assert default["bins"]["completeness_by_size"]["bins"][-1]["hi"] is None  # open-ended, JSON-safe
    assert sum(b["n_true"] for b in default["bins"]["completeness_by_size"]["bins"]) == default["n_true"]
    assert sum(b["n_pred"] for b in default["bins"]["purity_by_size"]["bins"]) == default["n_pred"]


def test_brightness_bins_only_when_every_truth_carries_the_field() -> None:
    r = evaluate_detections(hand_set(), brightness_edges={"mag": [17, 19.5, 22]})
    mag = r["bins"]["completeness_by_mag"]["bins"]
    # mags 18 (matched), 21 (missed), 19 (matched), 20 (missed)
    assert [(b["n_true"], b["n_matched"]) for b in mag] == [(2, 2), (2, 0)]
    assert "completeness_by_flux" not in r["bins"]
    quantile = evaluate_detections(_random_records(100, seed=4), n_brightness_bins=4)["bins"]["completeness_by_mag"]
    counts = [b["n_true"] for b in quantile["bins"]]
    assert len(counts) == 4 and max(counts) - min(counts) <= 1
    partial = hand_set()
    del partial[3]["true_extra"]
    assert "completeness_by_mag" not in evaluate_detections(partial)["bins"]


def test_max_detections_keeps_the_best_scores() -> None:
    record = {
        "true_boxes": [_box(0, 0), _box(40, 40)],
        "pred_boxes": [_box(0, 0), _box(40, 40)],
        "pred_scores": [0.4, 0.9],
    }
    r = evaluate_detections([record], max_detections=1)
    assert (r["n_pred"], r["n_matched"]) == (1, 1)
    assert [(b["n_true"], b["n_matched"]) for b in r["bins"]["completeness_by_size"]["bins"]][1] == (2, 1)


def test_records_from_coco_convert_boxes_and_extra_fields() -> None:
    gt = {
        "images": [{"id": 7}, {"id": 8}],
        "annotations": [{"id": 1, "image_id": 7, "category_id": 2, "bbox": [10, 20, 4, 6], "flux": 3.5}],
        "categories": [{"id": 1, "name": "clump"}, {"id": 2, "name": "odd_clump"}],
    }
    results = [{"image_id": 8, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.9}]
    recs = records_from_coco(gt, results)
    assert [r.image_id for r in recs] == [7, 8]
    np.testing.assert_allclose(recs[0].true_boxes, [[10, 20, 14, 26]])
    np.testing.assert_allclose(recs[0].true_extra["flux"], [3.5])
    np.testing.assert_allclose(recs[1].pred_boxes, [[0, 0, 5, 5]])
    r = evaluate_coco_detections(gt, results)
    assert set(r["per_class"]) == {"clump", "odd_clump"} and r["purity"] == 0.0
    assert "completeness_by_flux" in r["bins"]
    with pytest.raises(AstrodetInputError, match="image_id 9"):
        records_from_coco(gt, [{"image_id": 9, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}])


def test_bad_records_are_refused() -> None:
    with pytest.raises(AstrodetInputError, match="score"):
        evaluate_detections([{"true_boxes": [], "pred_boxes": [_box(0, 0)], "pred_scores": []}])
    with pytest.raises(AstrodetInputError, match="classes"):
        evaluate_detections([{"true_boxes": [_box(0, 0)], "true_classes": [1, 2]}])
    with pytest.raises(AstrodetInputError, match="unknown keys"):
        evaluate_detections([{"true_boxes": [], "boxes": []}])
    with pytest.raises(AstrodetInputError, match="mag"):
        evaluate_detections([{"true_boxes": [_box(0, 0)], "true_extra": {"mag": [1.0, 2.0]}}])
    with pytest.raises(AstrodetInputError, match="edges"):
        evaluate_detections([], size_edges=[10, 5])


def test_thousands_of_images_in_a_few_seconds() -> None:
    records = _random_records(3000, seed=9)
    start = time.perf_counter()
    r = evaluate_detections(records, class_names=NAMES)
    assert time.perf_counter() - start < 5.0
    assert len(r["curves"]["completeness"]) == 20


def test_the_core_imports_neither_torch_nor_a_framework_nor_pyplot() -> None:
    code = (
        "import sys, astrodet.evaluation; "
        "bad = [m for m in ('torch', 'detectron2', 'mmdet', 'mmengine', 'matplotlib.pyplot') if m in sys.modules]; "
        "sys.exit(', '.join(bad) or None)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
