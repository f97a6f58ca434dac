"""The catalogue-column baseline on small synthetic classification COCO files: which columns become features, the
label never among them, cross-validation and the test score with its intervals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from astrodet.errors import AstrodetInputError
from astrodet.evaluation.catalogue_baseline import catalogue_baseline, choose_features, read_coco, read_split

# A numeric label column (a T-type-like code) that the class mapping reads: numeric, so only the leak rule keeps it
# out of the features.
CONFIG = {"label_column": "ttype", "id_column": "name", "classes": {"late": [0], "early": [1]}}


def _coco(path: Path, n: int, seed: int, config: dict, first_id: int = 0, text_at: int | None = None) -> Path:
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for k in range(n):
        label = k % 2
        row = {
            "name": f"obj-{first_id + k}",
            "ra": 49.0 + rng.uniform(0, 1),
            "dec": 41.0 + rng.uniform(0, 1),
            "ttype": label,
            "size": float(label * 2.0 + rng.normal(0, 0.6)),  # informative
            "colour": float(rng.normal(0, 1)),  # noise
            "note": "nucleated" if label else "",
        }
        if k % 7 == 3:
            del row["colour"]  # a missing value ('N/A' in the catalogue)
        if text_at == k:
            row["size"] = "bright"
        images.append({"id": k + 1, "file_name": f"{k}.png", "width": 64, "height": 64, "object_id": row["name"]})
        annotations.append(
            {"id": k + 1, "image_id": k + 1, "category_id": label + 1, "label_text": str(label), "catalog": row}
        )
    coco = {
        "info": {"task": "classification", "converter": "astrodet.data.catalog", "options": {"config": config}},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "late"}, {"id": 2, "name": "early"}],
    }
    path.write_text(json.dumps(coco))
    return path


def test_the_label_column_is_never_a_feature_even_when_numeric(tmp_path: Path) -> None:
    coco = read_coco(_coco(tmp_path / "train.json", 20, 0, CONFIG))
    features, left_out = choose_features(coco)
    assert features == ("colour", "size")
    assert "ttype" not in features and left_out["ttype"] == "the label: the class mapping reads it"
    assert left_out["ra"] == left_out["dec"] == left_out["name"] == "identifies or places the object"
    assert left_out["note"] == "not numeric"
    with pytest.raises(AstrodetInputError, match=r"feature column\(s\) \['ttype'\] would leak the label"):
        choose_features(coco, ["size", "ttype"])
    assert choose_features(coco, ["size", "ra"])[0] == ("size", "ra")  # a position, when asked for by name
    with pytest.raises(AstrodetInputError, match=r"\['note'\] are not numeric in every row"):
        choose_features(coco, ["note"])


def test_the_config_numeric_columns_decide_the_features_and_no_class_mapping_is_refused(tmp_path: Path) -> None:
    coco = read_coco(_coco(tmp_path / "a.json", 10, 0, {**CONFIG, "numeric_columns": ["ttype", "size"]}))
    assert choose_features(coco)[0] == ("size",)
    unmapped = read_coco(_coco(tmp_path / "b.json", 10, 0, {"numeric_columns": ["size"]}))
    with pytest.raises(AstrodetInputError, match=r"records no class mapping, so the label column is unknown"):
        choose_features(unmapped)


def test_a_text_value_in_a_feature_column_names_the_file_object_and_field(tmp_path: Path) -> None:
    path = _coco(tmp_path / "bad.json", 10, 0, CONFIG, text_at=4)
    with pytest.raises(AstrodetInputError, match=r"bad.json: object obj-4, field size: 'bright' is not a number"):
        read_split(path, ["size", "colour"])
    split = read_split(_coco(tmp_path / "ok.json", 10, 0, CONFIG), ["size", "colour"])
    assert split.X.shape == (10, 2) and np.isnan(split.X[3, 1]) and split.y.tolist() == [0, 1] * 5


def test_cross_validation_and_the_test_score_with_intervals_around_it(tmp_path: Path) -> None:
    train = _coco(tmp_path / "train.json", 60, 1, CONFIG)
    test = _coco(tmp_path / "test.json", 40, 2, CONFIG, first_id=100)
    result = catalogue_baseline([train], test, folds=5, seed=3, n_bootstrap=200, n_trees=50)
    block = result["catalogue_baseline"]
    assert block["features"] == ["colour", "size"] and block["n_train"] == 60
    assert block["train_class_counts"] == [30, 30] and block["missing_values"] == {"colour": 9, "size": 0}
    cv = block["cross_validation"]
    assert len(cv["balanced_accuracy"]["per_fold"]) == 5 and cv["roc_auc"]["mean"] > 0.8  # size separates the classes
    assert result["n_images"] == 40 and result["balanced_accuracy"] > 0.75
    for name in ("accuracy", "balanced_accuracy", "roc_auc"):
        low, high = result["bootstrap"][name]
        assert low <= result[name] <= high
    assert max(block["feature_importance"], key=block["feature_importance"].get) == "size"
    again = catalogue_baseline([train], test, folds=5, seed=3, n_bootstrap=200, n_trees=50)
    assert again["roc_auc"] == result["roc_auc"]  # seeded


def test_too_few_objects_for_the_folds_and_shared_objects_are_refused(tmp_path: Path) -> None:
    train = _coco(tmp_path / "train.json", 8, 1, CONFIG)
    test = _coco(tmp_path / "test.json", 8, 2, CONFIG, first_id=100)
    with pytest.raises(AstrodetInputError, match=r"5-fold cross-validation needs >= 5 objects of every class; the "
                       r"smallest class has 4: lower --folds"):
        catalogue_baseline([train], test, folds=5, n_trees=10)
    overlapping = _coco(tmp_path / "overlap.json", 8, 2, CONFIG, first_id=6)
    with pytest.raises(AstrodetInputError, match=r"2 test objects are also training objects, e.g. obj-6"):
        catalogue_baseline([train], overlapping, folds=2, n_trees=10)
