"""The image + catalogue model: image probabilities aligned to the test split by file name, the fused scores, the
paired gain over the forest, and the refusals (reusing the catalogue baseline's synthetic COCO files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from astrodet.errors import AstrodetInputError
from astrodet.evaluation.catalogue_baseline import catalogue_baseline, summary_lines
from astrodet.evaluation.image_catalogue import image_probabilities, paired_gain
from tests.evaluation.test_catalogue_baseline import CONFIG, _coco


def _predictions(path: Path, names: list[str], p_early: list[float], order: list[int] | None = None) -> Path:
    order = order or list(range(len(names)))
    table = Table(
        {
            "file": [f"/somewhere/images/{names[k]}" for k in order],
            "class_name": ["early" if p_early[k] > 0.5 else "late" for k in order],
            "p_late": [1 - p_early[k] for k in order],
            "p_early": [p_early[k] for k in order],
        }
    )
    table.write(path, format="ascii.ecsv")
    return path


def test_image_probabilities_follow_the_test_split_by_file_name(tmp_path: Path) -> None:
    test = _coco(tmp_path / "test.json", 6, 2, CONFIG, first_id=100)
    names = [f"{k}.png" for k in range(6)]
    p_early = [0.1, 0.9, 0.2, 0.8, 0.3, 0.7]
    shuffled = _predictions(tmp_path / "p.ecsv", names, p_early, order=[5, 3, 1, 0, 2, 4])
    probs = image_probabilities(shuffled, test, ["late", "early"])
    assert probs[:, 1].tolist() == p_early and np.allclose(probs.sum(axis=1), 1)
    short = _predictions(tmp_path / "short.ecsv", names[:5], p_early[:5])
    with pytest.raises(AstrodetInputError, match=r"no row for 5\.png"):
        image_probabilities(short, test, ["late", "early"])
    with pytest.raises(AstrodetInputError, match=r"no column\(s\) \['p_spiral'\]"):
        image_probabilities(shuffled, test, ["late", "spiral"])


def test_fused_model_is_scored_beside_the_forest(tmp_path: Path) -> None:
    train = _coco(tmp_path / "train.json", 40, 0, CONFIG)
    test = _coco(tmp_path / "test.json", 20, 1, CONFIG, first_id=100)
    labels = [k % 2 for k in range(20)]
    perfect = _predictions(tmp_path / "p.ecsv", [f"{k}.png" for k in range(20)], [0.95 if y else 0.05 for y in labels])
    result = catalogue_baseline([train], test, n_bootstrap=100, n_trees=50, image_predictions=perfect)
    fused = result["catalogue_baseline"]["image_catalogue"]
    assert fused["image_only"]["balanced_accuracy"] == 1.0 and fused["image_only"]["roc_auc"] == 1.0
    assert fused["fused"]["roc_auc"] >= result["roc_auc"]  # a perfect image model can only help the ranking
    gain = fused["fused_minus_forest"]["roc_auc"]
    assert gain["difference"] == pytest.approx(fused["fused"]["roc_auc"] - result["roc_auc"])
    assert any(line.startswith("test, fused minus forest (paired), roc_auc") for line in summary_lines(result))


def test_paired_gain_of_identical_and_of_better_models() -> None:
    y = np.array([0, 1] * 15)
    noisy = np.stack([1 - np.where(y == 1, 0.6, 0.45), np.where(y == 1, 0.6, 0.45)], axis=1)
    noisy[:4] = noisy[:4, ::-1]  # four mistakes
    same = paired_gain(y, noisy, noisy, n_bootstrap=200, seed=0)
    assert same["balanced_accuracy"]["difference"] == 0 and same["balanced_accuracy"]["share_not_better"] == 1.0
    perfect = np.stack([1 - y, y], axis=1).astype(float)
    better = paired_gain(y, noisy, perfect, n_bootstrap=200, seed=0)
    assert better["balanced_accuracy"]["difference"] > 0 and better["balanced_accuracy"]["interval"][0] > 0
