"""Matching: hand-computed cases for each rule, tie-breaking, classes, and a cross-check against a plain loop."""

from __future__ import annotations

import time

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from astrodet.errors import AstrodetInputError
from astrodet.evaluation.matching import MatchRule, centre_distance_matrix, iou_matrix, match

UNIT = [0.0, 0.0, 10.0, 10.0]


def test_iou_matrix_hand_values_and_empty_shapes() -> None:
    iou = iou_matrix(np.array([UNIT, [5, 0, 15, 10]]), np.array([UNIT, [20, 20, 30, 30]]))
    np.testing.assert_allclose(iou, [[1.0, 0.0], [50 / 150, 0.0]])
    assert iou_matrix(np.zeros((0, 4)), np.array([UNIT])).shape == (0, 1)


def test_iou_matrix_agrees_with_pycocotools() -> None:
    rng = np.random.default_rng(3)
    xy, wh = rng.uniform(0, 50, (2, 30, 2)), rng.uniform(1, 20, (2, 30, 2))
    a, b = np.c_[xy[0], xy[0] + wh[0]], np.c_[xy[1], xy[1] + wh[1]]
    coco = mask_utils.iou(np.c_[xy[0], wh[0]].tolist(), np.c_[xy[1], wh[1]].tolist(), [0] * 30)
    np.testing.assert_allclose(iou_matrix(a, b), coco, atol=1e-12)


def test_higher_score_steals_the_truth_from_a_better_box() -> None:
    # P0 is the exact box but scores 0.5; P1 (IoU 0.6) scores 0.9 and is visited first
    result = match([UNIT, [0, 0, 10, 6]], [0.5, 0.9], [UNIT])
    assert result.pred_to_true.tolist() == [-1, 0]
    assert result.true_to_pred.tolist() == [1]


def test_equal_scores_are_visited_in_input_order() -> None:
    result = match([[0, 0, 10, 6], UNIT], [0.7, 0.7], [UNIT])
    assert result.pred_to_true.tolist() == [0, -1]


def test_two_predictions_on_one_truth_give_one_match() -> None:
    result = match([UNIT, [0.5, 0, 10.5, 10]], [0.9, 0.8], [UNIT])
    assert result.n_matched == 1
    assert result.pred_matched.tolist() == [True, False]


def test_prediction_takes_the_highest_iou_free_truth() -> None:
    # IoU with truth 0 is 80/120, with truth 1 is 80/100: truth 1 wins though listed second
    result = match([[0, 0, 10, 8]], [0.9], [[0, 0, 10, 12], UNIT])
    assert result.pred_to_true.tolist() == [1]


def test_equal_iou_truths_go_to_the_lowest_index() -> None:
    result = match([[5, 0, 15, 10]], [0.9], [UNIT, [10, 0, 20, 10]], MatchRule("iou", iou_threshold=0.3))
    assert result.pred_to_true.tolist() == [0]


def test_iou_exactly_at_threshold_matches_and_just_below_does_not() -> None:
    rule = MatchRule("iou", iou_threshold=0.5)
    assert match([[0, 0, 10, 5]], [0.9], [UNIT], rule).n_matched == 1  # IoU 0.50
    assert match([[0, 0, 10, 4.9]], [0.9], [UNIT], rule).n_matched == 0  # IoU 0.49
    assert match([[0, 0, 10, 4.9]], [0.9], [UNIT], MatchRule("iou", iou_threshold=0.49)).n_matched == 1


def test_centre_rule_radius_is_inclusive() -> None:
    shifted = [3, 4, 13, 14]  # centre moved by (3, 4): distance 5 px
    assert match([shifted], [0.9], [UNIT], MatchRule("centre", radius=5.0)).n_matched == 1
    assert match([shifted], [0.9], [UNIT], MatchRule("centre", radius=4.99)).n_matched == 0


def test_centre_rule_ignores_box_size_where_iou_fails() -> None:
    big = [-20, -20, 30, 30]  # same centre, IoU 0.04
    assert match([big], [0.9], [UNIT], MatchRule("centre", radius=1.0)).n_matched == 1
    assert match([big], [0.9], [UNIT]).n_matched == 0


def test_centre_rule_takes_the_nearest_free_truth() -> None:
    truths = [[2, 0, 12, 10], [1, 0, 11, 10]]  # centres 2 px and 1 px away
    assert match([UNIT], [0.9], truths, MatchRule("centre", radius=3.0)).pred_to_true.tolist() == [1]
    d = centre_distance_matrix(np.array([UNIT]), np.array(truths))
    np.testing.assert_allclose(d, [[2.0, 1.0]])


def test_class_aware_and_agnostic() -> None:
    assert match([UNIT], [0.9], [UNIT], pred_classes=[2], true_classes=[1]).n_matched == 0
    assert match([UNIT], [0.9], [UNIT]).n_matched == 1
    # class-aware: the exact box of the wrong class does not block the right-class one
    both = match([UNIT, [0, 0, 10, 9]], [0.9, 0.5], [UNIT], pred_classes=[2, 1], true_classes=[1])
    assert both.pred_to_true.tolist() == [-1, 0]


def test_empty_inputs() -> None:
    result = match(np.zeros((0, 4)), [], [UNIT])
    assert result.true_to_pred.tolist() == [-1]
    assert match([UNIT], [0.3], np.zeros((0, 4))).pred_to_true.tolist() == [-1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([UNIT], [0.1, 0.2], [UNIT]), "scores"),
        (([[0, 0, 10]], [0.1], [UNIT]), "shape"),
        (([[10, 0, 0, 10]], [0.1], [UNIT]), "x2 >= x1"),
        (([UNIT], [float("nan")], [UNIT]), "finite"),
    ],
)
def test_bad_input_is_refused(args: tuple, message: str) -> None:
    with pytest.raises(AstrodetInputError, match=message):
        match(*args)


def test_rule_validation_parse_and_description() -> None:
    with pytest.raises(AstrodetInputError):
        MatchRule("centre")
    with pytest.raises(AstrodetInputError):
        MatchRule("iou", iou_threshold=0.0)
    with pytest.raises(AstrodetInputError):
        MatchRule("overlap")  # type: ignore[arg-type]
    assert MatchRule.parse("iou") == MatchRule("iou", iou_threshold=0.5)
    assert MatchRule.parse("center:2.5") == MatchRule("centre", radius=2.5)
    assert MatchRule.parse("iou:0.3").describe()["iou_threshold"] == 0.3
    assert MatchRule("centre", radius=2).describe() == {
        "kind": "centre",
        "radius_px": 2.0,
        "text": "centre distance <= 2 px, one-to-one, greedy by score",
    }


def _reference(pred: np.ndarray, scores: np.ndarray, true: np.ndarray, t: float) -> list[int]:
    """The rule written as a plain loop over pairs, as pycocotools' evaluateImg does."""
    out, taken = [-1] * len(pred), set()
    for i in sorted(range(len(pred)), key=lambda k: -scores[k]):
        best, best_iou = -1, t
        for j in range(len(true)):
            iou = float(iou_matrix(pred[i : i + 1], true[j : j + 1])[0, 0])
            if j not in taken and iou >= t and (best == -1 or iou > best_iou):
                best, best_iou = j, iou
        if best >= 0:
            taken.add(best)
            out[i] = best
    return out


def test_vectorised_matching_equals_the_plain_loop() -> None:
    rng = np.random.default_rng(7)
    for _ in range(30):
        n_true, n_pred = rng.integers(0, 9), rng.integers(0, 12)
        c = rng.uniform(0, 40, (n_true, 2))
        true = np.c_[c - 5, c + 5]
        source = true[rng.integers(0, n_true, n_pred)] if n_true else rng.uniform(0, 40, (n_pred, 4))
        pred = source + rng.normal(0, 3, (n_pred, 4))
        pred[:, 2:] = np.maximum(pred[:, 2:], pred[:, :2] + 1)
        scores = rng.choice([0.2, 0.5, 0.9], n_pred)  # repeated scores exercise the tie rule
        got = match(pred, scores, true, MatchRule("iou", iou_threshold=0.3)).pred_to_true.tolist()
        assert got == _reference(pred, scores, true, 0.3)


def test_hundreds_of_boxes_are_fast_and_one_to_one() -> None:
    rng = np.random.default_rng(0)
    c = rng.uniform(0, 1000, (500, 2))
    true = np.c_[c - 8, c + 8]
    pred = true + rng.normal(0, 2, true.shape)
    start = time.perf_counter()
    result = match(pred, rng.random(500), true)
    assert time.perf_counter() - start < 1.0
    matched = result.pred_to_true[result.pred_to_true >= 0]
    assert len(set(matched.tolist())) == len(matched) > 400
    assert (result.true_to_pred[matched] == np.flatnonzero(result.pred_to_true >= 0)).all()
