"""``astrodet.mmdet.predictor.load_model``: an mmdet config + checkpoint as the inference core's Detector /
Classifier, running images through the config's own test pipeline, and never running code from a weights file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("mmdet")

from mmdet.apis import inference_detector
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from PIL import Image

from astrodet.errors import AstrodetInputError
from astrodet.inference import SIMULATOR_RECIPE, Classifier, Detector, ImageRecipe
from astrodet.inference import load_model as core_load_model
from astrodet.mmdet.predictor import load_model
from tests.conftest import REPO, astrodet_cache_env

QUICK = REPO / "configs" / "mmdet" / "quick" / "frcnn_zoobot_quick.py"
CLS_QUICK = REPO / "configs" / "mmdet" / "cls_deepshadows_quick.py"


class WritesMarker:
    """Unpickling this calls ``open(marker, "w")``: a stand-in for any code a malicious checkpoint could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def tiny_val_images(cache: Path, count: int = 4) -> tuple[list[Path], list[np.ndarray]]:
    """The first ``count`` images of the tiny set's val split, as files and as (H, W, 3) uint8 RGB arrays."""
    from astrodet.data import catalogue

    with astrodet_cache_env(cache):
        json_file = catalogue.ensure("tiny", progress=False)["val"]
    images = json.loads(json_file.read_text())["images"][:count]
    files = [json_file.parent / image["file_name"] for image in images]
    return files, [np.asarray(Image.open(f).convert("RGB")) for f in files]


def random_model(config: Path) -> torch.nn.Module:
    register_all_modules(init_default_scope=True)
    torch.manual_seed(0)
    return MODELS.build(Config.fromfile(str(config)).model)


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quick config's model at its random initialisation, saved as mmengine's runner saves checkpoints."""
    path = tmp_path_factory.mktemp("mmdet_weights") / "iter_0.pth"
    torch.save({"state_dict": random_model(QUICK).state_dict(), "meta": {}}, path)
    return path


def test_detector_predicts_as_inference_detector_on_the_files(random_weights: Path, tiny_cache: Path) -> None:
    """predict(RGB arrays), batched, gives the boxes of mmdet's own inference_detector on the same PNG files."""
    detector = load_model(QUICK, random_weights, device="cpu")
    assert isinstance(detector, Detector) and detector.framework == "mmdet"
    assert detector.classes == ("clump", "odd_clump")  # from the config: the checkpoint carries no dataset_meta
    assert detector.recipe == SIMULATOR_RECIPE and detector.input_size == 200
    files, images = tiny_val_images(tiny_cache)
    predicted = detector.predict(images)
    assert len(predicted) == len(images) and all(len(d) > 0 for d in predicted)
    for file, found in zip(files, predicted, strict=True):
        expected = inference_detector(detector.model, str(file)).pred_instances
        assert np.allclose(found.boxes, expected.bboxes.numpy(), atol=1e-3)
        assert np.allclose(found.scores, expected.scores.numpy(), atol=1e-5)
        assert np.array_equal(found.labels, expected.labels.numpy())


def test_the_core_loader_picks_mmdet_for_py(random_weights: Path) -> None:
    assert core_load_model(QUICK, random_weights, device="cpu").framework == "mmdet"


def test_classes_and_recipe_from_the_checkpoint_meta(random_weights: Path, tmp_path: Path) -> None:
    recipe = ImageRecipe(kind="rgb8", bands=("z", "r", "g"), stretch="lupton", params={"Q": 8.0}, channels=3)
    checkpoint = torch.load(random_weights, weights_only=True)
    path = tmp_path / "with_meta.pth"
    meta = {"dataset_meta": {"classes": ("a", "b")}, "image_recipe": recipe.to_dict()}
    torch.save({**checkpoint, "meta": meta}, path)
    detector = load_model(QUICK, path, device="cpu")
    assert detector.classes == ("a", "b") and detector.recipe == recipe


def test_classifier_gives_class_probabilities(tmp_path: Path) -> None:
    path = tmp_path / "iter_0.pth"
    torch.save({"state_dict": random_model(CLS_QUICK).state_dict()}, path)
    classifier = load_model(CLS_QUICK, path, device="cpu")
    assert isinstance(classifier, Classifier) and classifier.classes == ("artifact", "LSBG")
    images = [np.random.default_rng(k).integers(0, 255, (80, 80, 3), dtype=np.uint8) for k in range(5)]
    probabilities = classifier.predict(images)
    assert probabilities.shape == (5, 2) and np.allclose(probabilities.sum(axis=1), 1.0)
    classifier.batch_size = 2
    assert np.allclose(classifier.predict(images), probabilities, atol=1e-6)


def test_vote_classifier_gives_the_question_schema_vote_fractions(tmp_path: Path) -> None:
    from astrodet.models.schemas import QUESTIONS, load_question_schema

    config = tmp_path / "votes.py"
    config.write_text(f"_base_ = ['{CLS_QUICK}']\nmodel = dict(loss='soft_ce', head=dict(kind='linear'))\n")
    path = tmp_path / "iter_0.pth"
    meta = {"dataset_meta": {"classes": ("smooth", "featured"), "vote_class_columns": {"Class1.1": "smooth"}}}
    torch.save({"state_dict": random_model(config).state_dict(), "meta": meta}, path)
    classifier = load_model(config, path, device="cpu")
    schema = load_question_schema(QUESTIONS)
    assert classifier.vote_columns == tuple(schema.columns) and classifier.classes == ("smooth", "featured")
    images = [np.full((64, 64, 3), 40, dtype=np.uint8)] * 2
    votes = classifier.predict_votes(images)
    assert votes.shape == (2, len(schema.columns)) and np.all((votes >= 0) & (votes <= 1))
    assert np.allclose(classifier.predict(images), [[1.0, 0.0]] * 2)  # only Class1.1 is mapped: all "smooth"


def test_a_malicious_checkpoint_never_runs(tmp_path: Path) -> None:
    marker, path = tmp_path / "MARKER", tmp_path / "iter_10.pth"
    torch.save({"state_dict": {}, "meta": WritesMarker(marker)}, path)
    with pytest.raises(AstrodetInputError, match=str(path)):
        load_model(QUICK, path, device="cpu")
    assert not marker.exists()


def test_pkl_and_foreign_checkpoints_are_refused(random_weights: Path, tmp_path: Path) -> None:
    pkl = tmp_path / "model.pkl"
    pkl.write_bytes(b"\x80\x04N.")
    for loader in (load_model, core_load_model):
        with pytest.raises(AstrodetInputError, match=r"model\.pkl.*\.pkl"):
            loader(QUICK, pkl, device="cpu")
    foreign = tmp_path / "model_final.pth"  # Detectron2's names for the detector: nothing fits
    state = torch.load(random_weights, weights_only=True)["state_dict"]
    torch.save({"model": {f"backbone.bottom_up.{k}": v for k, v in state.items()}}, foreign)
    with pytest.raises(AstrodetInputError, match=str(foreign)):
        load_model(QUICK, foreign, device="cpu")


@pytest.mark.slow
def test_a_model_trained_on_the_tiny_set_predicts(tmp_path: Path, tiny_cache: Path) -> None:
    work_dir = tmp_path / "work"
    cmd = [sys.executable, str(REPO / "tools" / "train_mmdet.py"), str(QUICK), "--work-dir", str(work_dir)]
    cmd += ["--cfg-options", "train_cfg.max_iters=4", "default_hooks.checkpoint.interval=4"]
    env = dict(os.environ, ASTRODET_CACHE=str(tiny_cache))
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    detector = load_model(QUICK, work_dir / "iter_4.pth", device="cpu")
    assert detector.classes == ("clump", "odd_clump")
    _, images = tiny_val_images(tiny_cache)
    predicted = detector.predict(images)
    assert len(predicted) == len(images)
    for detections in predicted:
        assert detections.boxes.shape == (len(detections), 4)
        assert np.all(detections.boxes[:, 2:] >= detections.boxes[:, :2])
        assert np.all((detections.scores >= 0.05) & (detections.scores <= 1))
        assert set(detections.labels.tolist()) <= {0, 1}
