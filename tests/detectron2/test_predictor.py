"""``astrodet.detectron2.predictor.load_model``: a Detectron2 config + weights as the inference core's Detector /
Classifier, mapping images exactly as the test loader does, and never running code from a weights file."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("detectron2")

from detectron2.modeling import build_model
from PIL import Image

from astrodet.detectron2.predictor import build_cfg, load_model
from astrodet.errors import AstrodetInputError
from astrodet.inference import SIMULATOR_RECIPE, Classifier, Detections, Detector, ImageRecipe
from astrodet.inference import load_model as core_load_model
from tests.conftest import REPO, astrodet_cache_env

QUICK = REPO / "configs" / "quick_schedules" / "frcnn_zoobot_quick.yaml"
CLS_QUICK = REPO / "configs" / "quick_schedules" / "cls_deepshadows_quick.yaml"


class WritesMarker:
    """Unpickling this calls ``open(marker, "w")``: a stand-in for any code a malicious checkpoint could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def malicious_checkpoint(folder: Path, name: str = "model_final.pth") -> tuple[Path, Path]:
    """A ``.pth`` whose unpickling creates a marker file, and that marker's path (absent until then)."""
    marker = folder / f"{name}.marker"
    path = folder / name
    torch.save({"model": {"backbone.weight": torch.zeros(1)}, "payload": WritesMarker(marker)}, path)
    return path, marker


def tiny_val_images(cache: Path, count: int = 4) -> tuple[list[Path], list[np.ndarray]]:
    """The first ``count`` images of the tiny set's val split, as files and as (H, W, 3) uint8 RGB arrays."""
    from astrodet.data import catalogue

    with astrodet_cache_env(cache):
        json_file = catalogue.ensure("tiny", progress=False)["val"]
    images = json.loads(json_file.read_text())["images"][:count]
    files = [json_file.parent / image["file_name"] for image in images]
    return files, [np.asarray(Image.open(f).convert("RGB")) for f in files]


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quick config's model at its random initialisation, saved as DefaultTrainer saves checkpoints."""
    torch.manual_seed(0)
    model = build_model(build_cfg(QUICK, "cpu"))
    path = tmp_path_factory.mktemp("d2_weights") / "model_final.pth"
    torch.save({"model": model.state_dict(), "iteration": 0}, path)
    return path


def test_detector_predicts_as_the_test_loader_maps_images(random_weights: Path, tiny_cache: Path) -> None:
    """Boxes from predict(arrays) equal the model's own output on AstroTrainer's test loader for the same files."""
    from astrodet.detectron2 import AstroTrainer

    detector = load_model(QUICK, random_weights, device="cpu")
    assert isinstance(detector, Detector) and detector.framework == "detectron2"
    assert detector.classes == ("clump", "odd_clump")
    assert detector.recipe == SIMULATOR_RECIPE and detector.input_size == 200
    files, images = tiny_val_images(tiny_cache)
    predicted = detector.predict(images)
    assert len(predicted) == len(images) and all(isinstance(d, Detections) for d in predicted)
    assert all(len(d) > 0 for d in predicted)

    with astrodet_cache_env(tiny_cache):
        loader = AstroTrainer.build_test_loader(detector.cfg, "astrodet_tiny_val")
        reference = {}
        with torch.no_grad():
            for inputs in loader:
                if Path(inputs[0]["file_name"]) in files:
                    reference[Path(inputs[0]["file_name"])] = detector.model(inputs)[0]["instances"]
    for file, found in zip(files, predicted, strict=True):
        expected = reference[file]
        # a batch of 4 against the loader's batch of 1: the same arithmetic up to float32 rounding
        assert np.allclose(found.boxes, expected.pred_boxes.tensor.numpy(), atol=1e-3)
        assert np.allclose(found.scores, expected.scores.numpy(), atol=1e-5)
        assert np.array_equal(found.labels, expected.pred_classes.numpy())


def test_batches_and_sizes_do_not_change_predictions(random_weights: Path, tiny_cache: Path) -> None:
    detector = load_model(QUICK, random_weights, device="cpu")
    _, images = tiny_val_images(tiny_cache, count=3)
    together = detector.predict(images)
    detector.batch_size = 1
    one_by_one = detector.predict(images)
    for a, b in zip(together, one_by_one, strict=True):
        assert np.allclose(a.boxes, b.boxes, atol=1e-3) and np.allclose(a.scores, b.scores, atol=1e-5)
    # A larger cutout is resized to the model's 200 px and its boxes scaled back to the cutout's pixels.
    (big,) = detector.predict([np.asarray(Image.fromarray(images[0]).resize((400, 400), Image.BILINEAR))])
    assert big.boxes.max() > 200 and big.boxes.max() <= 400


def test_the_core_loader_picks_detectron2_for_yaml(random_weights: Path) -> None:
    detector = core_load_model(QUICK, random_weights, device="cpu")
    assert detector.framework == "detectron2"


def test_recipe_from_the_checkpoint_wins(random_weights: Path, tmp_path: Path) -> None:
    recipe = ImageRecipe(kind="rgb8", bands=("z", "r", "g"), stretch="lupton", params={"Q": 8.0}, channels=3)
    checkpoint = torch.load(random_weights, weights_only=True)
    path = tmp_path / "with_recipe.pth"
    torch.save({**checkpoint, "image_recipe": recipe.to_dict(), "classes": ["a", "b"]}, path)
    detector = load_model(QUICK, path, device="cpu")
    assert detector.recipe == recipe and detector.classes == ("a", "b")


def test_recipe_from_the_config(random_weights: Path, tmp_path: Path) -> None:
    config = tmp_path / "recipe.yaml"
    recipe = 'KIND: "rgb8", BANDS: ["z", "r", "g"], STRETCH: "lupton", PARAMS: {Q: 8.0, stretch: 5.0}'
    config.write_text(f'_BASE_: "{QUICK}"\nASTRODET: {{IMAGE_RECIPE: {{{recipe}}}}}\n')
    detector = load_model(config, random_weights, device="cpu")
    assert detector.recipe == ImageRecipe("rgb8", ("z", "r", "g"), "lupton", {"Q": 8.0, "stretch": 5.0}, 3)


def test_classifier_gives_class_probabilities(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model(build_cfg(CLS_QUICK, "cpu"))
    path = tmp_path / "model_final.pth"
    torch.save({"model": model.state_dict()}, path)
    classifier = load_model(CLS_QUICK, path, device="cpu")
    assert isinstance(classifier, Classifier) and classifier.classes == ("artifact", "LSBG")
    images = [np.random.default_rng(k).integers(0, 255, (80, 80, 3), dtype=np.uint8) for k in range(5)]
    probabilities = classifier.predict(images)
    assert probabilities.shape == (5, 2) and np.allclose(probabilities.sum(axis=1), 1.0)
    classifier.batch_size = 2
    assert np.allclose(classifier.predict(images), probabilities, atol=1e-6)


def test_vote_classifier_gives_the_question_schema_vote_fractions(tmp_path: Path) -> None:
    from astrodet.models.schemas import QUESTIONS, load_question_schema

    config = tmp_path / "votes.yaml"
    config.write_text(
        f'_BASE_: "{CLS_QUICK}"\nMODEL: {{CLASSIFIER: {{LOSS: "soft_ce"}}}}\nDATASETS: {{TRAIN: [], TEST: []}}\n'
    )
    torch.manual_seed(0)
    path = tmp_path / "model_final.pth"
    torch.save({"model": build_model(build_cfg(config, "cpu")).state_dict()}, path)
    classifier = load_model(config, path, device="cpu")
    schema = load_question_schema(QUESTIONS)
    assert classifier.vote_columns == tuple(schema.columns)
    votes = classifier.predict_votes([np.full((64, 64, 3), 40, dtype=np.uint8)] * 2)
    assert votes.shape == (2, len(schema.columns)) and np.all((votes >= 0) & (votes <= 1))
    with pytest.raises(ValueError, match="class mapping"):  # no training set says which answers are which class
        classifier.predict([np.zeros((64, 64, 3), dtype=np.uint8)])


def test_a_malicious_checkpoint_never_runs(tmp_path: Path) -> None:
    path, marker = malicious_checkpoint(tmp_path)
    with pytest.raises(AstrodetInputError, match=str(path)):
        load_model(QUICK, path, device="cpu")
    assert not marker.exists()
    # the file really runs code when unpickled without the weights-only guard
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_pkl_and_foreign_checkpoints_are_refused(random_weights: Path, tmp_path: Path) -> None:
    pkl = tmp_path / "model.pkl"
    pkl.write_bytes(pickle.dumps({"model": {}}))
    for loader in (load_model, core_load_model):
        with pytest.raises(AstrodetInputError, match=r"model\.pkl.*\.pkl"):
            loader(QUICK, pkl, device="cpu")
    foreign = tmp_path / "mmdet.pth"  # mmdet's names for the same detector: nothing fits
    state = torch.load(random_weights, weights_only=True)["model"]
    torch.save({"state_dict": {f"neck.{k}": v for k, v in state.items()}}, foreign)
    with pytest.raises(AstrodetInputError, match=str(foreign)):
        load_model(QUICK, foreign, device="cpu")


@pytest.mark.slow
def test_a_model_trained_on_the_tiny_set_predicts(tmp_path: Path, tiny_cache: Path) -> None:
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        str(REPO / "tools" / "train_net.py"),
        "--config-file",
        str(QUICK),
        "OUTPUT_DIR",
        str(out),
        "SOLVER.MAX_ITER",
        "4",
        "DATASETS.TEST",
        "()",  # no evaluation after training: predict is what is tested
    ]
    env = dict(os.environ, ASTRODET_CACHE=str(tiny_cache))
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    detector = load_model(QUICK, out / "model_final.pth", device="cpu")
    _, images = tiny_val_images(tiny_cache)
    predicted = detector.predict(images)
    assert len(predicted) == len(images)
    for detections in predicted:
        assert detections.boxes.shape == (len(detections), 4) and len(detections) > 0
        assert np.all(detections.boxes[:, 2:] >= detections.boxes[:, :2])
        assert np.all((detections.scores >= 0.05) & (detections.scores <= 1))
        assert set(detections.labels.tolist()) <= {0, 1}
