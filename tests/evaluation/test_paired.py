"""Paired comparison of two detectors: per-image counts as ``astrodet evaluate`` matches, and the paired bootstrap."""

from __future__ import annotations

import numpy as np
import pytest

from astrodet.errors import AstrodetInputError
from astrodet.evaluation.detection import ImageRecord, evaluate_detections
from astrodet.evaluation.matching import MatchRule
from astrodet.evaluation.paired import image_counts, paired_difference


def _record(image_id: int, truths: list, preds: list, scores: list) -> ImageRecord:
    return ImageRecord(
        image_id=image_id,
        true_boxes=np.asarray(truths, dtype=float).reshape(-1, 4),
        true_classes=np.zeros(len(truths), dtype=int),
        pred_boxes=np.asarray(preds, dtype=float).reshape(-1, 4),
        pred_scores=np.asarray(scores, dtype=float),
        pred_classes=np.zeros(len(preds), dtype=int),
    )


BOX, ELSEWHERE = [10, 10, 20, 20], [50, 50, 60, 60]


def test_counts_per_image_add_up_to_the_evaluation_of_all():
    records = [
        _record(1, [BOX, ELSEWHERE], [BOX, [80, 80, 90, 90]], [0.9, 0.8]),  # 1 of 2 found, 1 false
        _record(2, [BOX], [BOX], [0.2]),  # below the threshold: not kept
        _record(3, [], [BOX], [0.5]),  # a false detection on an empty image
    ]
    counts = image_counts(records, MatchRule(), 0.3, class_agnostic=True)
    assert counts.tolist() == [[1, 2, 2], [0, 1, 0], [0, 0, 1]]
    pooled = evaluate_detections(records, MatchRule(), score_threshold=0.3, class_agnostic=True)
    assert counts.sum(axis=0).tolist() == [pooled["n_matched"], pooled["n_true"], pooled["n_pred"]]


def test_paired_difference_of_a_clearly_better_model():
    rng = np.random.default_rng(1)
    true = rng.integers(3, 8, size=30)
    before = np.stack([true // 3, true, np.full(30, 4)], axis=1)
    after = np.stack([true // 3 + 1, true, np.full(30, 4)], axis=1)  # one more clump found in every galaxy
    result = paired_difference(before, after, n_resamples=500, seed=0)
    comp = result["completeness"]
    assert comp["difference"] == pytest.approx(30 / true.sum())
    low, high = comp["interval"]
    assert 0 < low <= comp["difference"] <= high and comp["share_not_better"] == 0.0
    assert result["purity"]["difference"] == pytest.approx(30 / 120)
    same = paired_difference(before, before, n_resamples=200)
    assert same["completeness"]["difference"] == 0 and same["completeness"]["interval"] == [0.0, 0.0]
    assert same["completeness"]["share_not_better"] == 1.0


def test_mismatched_images_are_refused():
    with pytest.raises(AstrodetInputError, match="same images"):
        paired_difference(np.zeros((3, 3)), np.zeros((4, 3)))


def test_counts_of_the_truths_above_a_value_only():
    record = _record(1, [BOX, ELSEWHERE], [BOX, [80, 80, 90, 90]], [0.9, 0.8])
    record.true_extra = {"display_step": np.array([0.01, 0.2])}  # the found clump is the faint one
    counts = image_counts([record], MatchRule(), 0.3, class_agnostic=True, only_above=("display_step", 0.05))
    assert counts.tolist() == [[0, 1, 2]]  # of the one truth above 0.05, none matched; both predictions counted
    record.true_extra = {"display_step": np.array([0.2, 0.01])}
    assert image_counts([record], MatchRule(), 0.3, True, only_above=("display_step", 0.05)).tolist() == [[1, 1, 2]]
    empty = _record(2, [], [BOX], [0.5])  # no truths: nothing to select, its prediction still counted
    assert image_counts([empty], MatchRule(), 0.3, True, only_above=("display_step", 0.05)).tolist() == [[0, 0, 1]]
    record.true_extra = {}
    with pytest.raises(AstrodetInputError, match="carry no 'display_step'"):
        image_counts([record], MatchRule(), 0.3, True, only_above=("display_step", 0.05))
