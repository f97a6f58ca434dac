"""Classification metrics against hand-computed values; the report files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from astrodet.evaluation.classification import (
    accuracy,
    auc_scores,
    balanced_accuracy,
    bootstrap_intervals,
    class_scores_from_votes,
    confusion_matrix,
    evaluate_classification,
    log_loss,
    roc_auc,
    roc_curve,
    vote_rmse,
    write_classification_report,
)


def test_roc_auc_is_the_mann_whitney_statistic() -> None:
    y = np.array([0, 0, 1, 1])
    # pairs (pos, neg): (0.35 vs 0.1) win, (0.35 vs 0.4) loss, (0.8 vs 0.1) win, (0.8 vs 0.4) win -> 3/4
    assert roc_auc(y == 1, np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert roc_auc(y == 1, np.array([0.5, 0.5, 0.5, 0.5])) == pytest.approx(0.5)  # ties count one half
    # one tie (0.4 vs 0.4) among the four pairs: (1 + 0.5 + 1 + 1) / 4
    assert roc_auc(y == 1, np.array([0.1, 0.4, 0.4, 0.8])) == pytest.approx(0.875)
    assert roc_auc(np.array([True, True]), np.array([0.1, 0.2])) is None
    assert roc_auc(y == 1, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0


def test_roc_curve_points() -> None:
    curve = roc_curve(np.array([0, 0, 1, 1]) == 1, np.array([0.1, 0.4, 0.35, 0.8]))
    assert curve is not None
    assert curve["fpr"] == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert curve["tpr"] == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert curve["threshold"][0] is None and curve["threshold"][1:] == [0.8, 0.4, 0.35, 0.1]
    tied = roc_curve(np.array([0, 1]) == 1, np.array([0.5, 0.5]))
    assert tied is not None and tied["fpr"] == [0.0, 1.0] and tied["tpr"] == [0.0, 1.0]
    assert roc_curve(np.array([1, 1]) == 1, np.array([0.5, 0.6])) is None


def test_accuracy_balanced_accuracy_and_confusion() -> None:
    y = np.array([0, 0, 0, 1])
    pred = np.array([0, 0, 0, 0])
    assert accuracy(y, pred) == 0.75
    assert balanced_accuracy(y, pred) == 0.5  # recall 1 for class 0, 0 for class 1
    assert confusion_matrix(y, pred, 2).tolist() == [[3, 0], [1, 0]]
    assert accuracy(np.array([]), np.array([])) is None


def test_evaluate_classification_binary_by_hand() -> None:
    labels = [0, 0, 1, 1, 1]
    p_pos = np.array([0.2, 0.6, 0.7, 0.4, 0.9])
    probs = np.c_[1 - p_pos, p_pos]
    r = evaluate_classification(labels, probs, ["artifact", "LSBG"], n_bootstrap=50, seed=1)
    # predictions: 0, 1, 1, 0, 1 -> TP 2, FP 1, FN 1, TN 1
    assert r["accuracy"] == pytest.approx(3 / 5)
    assert r["balanced_accuracy"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert r["confusion_matrix"]["matrix"] == [[1, 1], [1, 2]]
    lsbg = r["per_class"]["LSBG"]
    assert (lsbg["n_true"], lsbg["n_pred"]) == (3, 3)
    assert lsbg["precision"] == pytest.approx(2 / 3) and lsbg["recall"] == pytest.approx(2 / 3)
    assert lsbg["f1"] == pytest.approx(2 / 3)
    # AUC: positives 0.7, 0.4, 0.9 vs negatives 0.2, 0.6 -> wins 2 + 1 + 2 = 5 of 6
    assert r["roc_auc"] == pytest.approx(5 / 6)
    expected_ll = -np.mean(np.log([0.8, 0.4, 0.7, 0.4, 0.9]))
    assert r["log_loss"] == pytest.approx(expected_ll)
    assert set(r["roc_curves"]) == {"LSBG"}
    json.dumps(r, allow_nan=False)  # JSON-able


def test_multiclass_auc_values() -> None:
    y = np.array([0, 1, 2, 2])
    p = np.array([[0.8, 0.1, 0.1], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7], [0.3, 0.4, 0.3]])
    _, per = auc_scores(y, p)
    assert per[0] == pytest.approx(1.0)
    assert per[1] == pytest.approx(1.0)  # 0.5 beats 0.1, 0.2, 0.4
    # class 2 positives 0.7, 0.3 vs negatives 0.1, 0.3: 0.7 wins twice; 0.3 wins once and ties once -> 3.5 / 4
    assert per[2] == pytest.approx(3.5 / 4)
    headline, _ = auc_scores(y, p)
    assert headline == pytest.approx((1 + 1 + 3.5 / 4) / 3)
    _, missing = auc_scores(np.array([0, 0]), np.array([[0.6, 0.2, 0.2], [0.5, 0.3, 0.2]]))
    assert missing[1] is None


def test_log_loss_clips() -> None:
    assert log_loss(np.array([0]), np.array([[0.0, 1.0]])) == pytest.approx(-np.log(1e-7))


def test_bootstrap_is_seeded() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    p1 = np.clip(y * 0.6 + rng.random(60) * 0.5, 0, 1)
    p = np.c_[1 - p1, p1]
    a = bootstrap_intervals(y, p, n=200, seed=3)
    b = bootstrap_intervals(y, p, n=200, seed=3)
    c = bootstrap_intervals(y, p, n=200, seed=4)
    assert a == b and a != c
    for key in ("accuracy", "balanced_accuracy", "roc_auc"):
        lo, hi = a[key]
        assert 0 <= lo <= hi <= 1
        assert a[f"{key}_defined_in"] == 200
    tiny = bootstrap_intervals(np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]), n=100, seed=0)
    assert tiny["roc_auc_defined_in"] < 100  # resamples with one class only are skipped


def test_votes_as_classes_and_rmse() -> None:
    columns = ["Class1.1", "Class1.2", "Class1.3"]
    votes = np.array([[0.6, 0.3, 0.1], [0.0, 0.0, 0.0]])
    scores = class_scores_from_votes(votes, columns, {"Class1.1": "E", "Class1.3": "S"}, ["S", "E"])
    assert scores[0] == pytest.approx([0.1 / 0.7, 0.6 / 0.7])
    assert scores[1] == pytest.approx([0.5, 0.5])
    assert vote_rmse(np.array([[0.5, 0.5]]), np.array([[0.2, 0.6]])) == pytest.approx(np.sqrt((0.09 + 0.01) / 2))
    with pytest.raises(ValueError, match="vote_columns"):
        class_scores_from_votes(votes, None, None, ["S"])


def test_report_files(tmp_path) -> None:
    labels = [0, 1, 2, 2, 1, 0]
    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(3), size=6)
    result = evaluate_classification(labels, probs, ["Spiral", "Elliptical", "Star/Artifact"], n_bootstrap=20)
    report = write_classification_report(tmp_path, result, {"framework": "test", "lr": 0.1})
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved == report
    assert saved["meta"]["framework"] == "test" and saved["task"] == "classification"
    md = (tmp_path / "report.md").read_text()
    assert "Balanced accuracy" in md and "Star/Artifact" in md and "macro one-vs-rest" in md
    for png in ("confusion_matrix.png", "roc_curve.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp"))
