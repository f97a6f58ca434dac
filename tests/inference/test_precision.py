"""``astrodet predict --precision``: refusals, autocast confined to the feature extractor, and a model trained on the
tiny set finding the same objects in bf16 as in fp32 in both frameworks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from astrodet import cli
from astrodet.errors import AstrodetInputError
from astrodet.evaluation.matching import MatchRule, match
from astrodet.inference import command
from astrodet.inference.catalogue import read_catalogue
from astrodet.inference.model import Detections, load_model
from astrodet.inference.precision import check_precision, cpu_supports_bf16, features_in, set_precision
from tests.frameworks.test_predict_parity import trained_on_the_tiny_set  # noqa: F401  (a fixture: trains once)
from tests.inference.fakes import PeakDetector

needs_bf16_cpu = pytest.mark.skipif(not cpu_supports_bf16(), reason="this CPU has no bf16 kernels (AVX-512/AMX)")


class PeakDetectorWithPrecision(PeakDetector):
    """The fake detector with what ``set_precision`` looks for: a torch module (for its device) and a precision."""

    def __init__(self) -> None:
        super().__init__()
        self.model = torch.nn.Conv2d(3, 3, 1)
        self.precision = "fp32"


def test_unsupported_precisions_are_refused_in_one_line() -> None:
    for precision, device, message in [
        ("fp16", "cpu", "--precision fp16: runs on CUDA GPUs only; on a CPU use bf16"),
        ("fp64", "cpu", "--precision fp64: expected one of fp32, bf16, fp16"),
        ("bf16", "meta", "supported on cpu and cuda devices, not meta"),
    ]:
        with pytest.raises(AstrodetInputError, match=message) as refusal:
            check_precision(precision, device)
        assert "\n" not in str(refusal.value)
    with pytest.raises(AstrodetInputError, match="the fake model runs in fp32 only"):
        set_precision(PeakDetector(), "bf16")
    set_precision(PeakDetector(), "fp32")  # nothing to set, nothing refused


def test_the_command_refuses_fp16_on_a_cpu_and_records_the_precision(
    simulated: Path, tmp_path: Path, fake_config: tuple[str, str], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    model = PeakDetectorWithPrecision()
    monkeypatch.setattr(command, "load_model", lambda config, weights, device="auto": model)
    config, weights = fake_config
    args = ["predict", "--config", config, "--weights", weights, "--no-progress", str(simulated / "images")]
    assert cli.main([*args, "--out", str(tmp_path / "fp16.ecsv"), "--precision", "fp16"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--precision fp16: runs on CUDA GPUs only" in err and "\n" not in err
    assert not (tmp_path / "fp16.ecsv").exists()
    assert cli.main([*args, "--out", str(tmp_path / "fp32.ecsv")]) == 0
    assert read_catalogue(tmp_path / "fp32.ecsv").meta["precision"] == "fp32"
    if cpu_supports_bf16():
        assert cli.main([*args, "--out", str(tmp_path / "bf16.ecsv"), "--precision", "bf16"]) == 0
        assert model.precision == "bf16"
        assert read_catalogue(tmp_path / "bf16.ecsv").meta["precision"] == "bf16"


@needs_bf16_cpu
def test_autocast_covers_the_feature_extractor_only_and_hands_on_float32() -> None:
    torch.manual_seed(0)
    backbone, head = torch.nn.Conv2d(3, 8, 3), torch.nn.Linear(8, 2)
    image = torch.rand(1, 3, 16, 16)
    reference = backbone(image)
    with torch.no_grad(), features_in("bf16", [backbone]):
        features = backbone(image)
        scores = head(features.mean(dim=(2, 3)))
    assert features.dtype == torch.float32 and scores.dtype == torch.float32  # the head ran in fp32
    assert not torch.equal(features, reference)  # the convolution did run in bf16 ...
    assert torch.allclose(features, reference, atol=0.05)  # ... to bf16's precision
    assert "forward" not in vars(backbone)  # the class's forward again
    with pytest.raises(RuntimeError, match="inside"), features_in("bf16", [backbone]):
        raise RuntimeError("inside")
    assert "forward" not in vars(backbone)  # restored after an error too


# ---------------------------------------------------------------------------------------------------------------
# bf16 against fp32 on a model trained on the tiny set. What must agree is what reaches the catalogue: detections
# scoring at least the default threshold (0.3). Each such detection of one precision has a partner in the other:
# same class, IoU >= 0.9, scores within SCORE_TOLERANCE. Only a detection within SCORE_TOLERANCE of the threshold
# may lack one (it can cross it), so the counts above the threshold differ by at most 1 per image.

THRESHOLD = 0.3
SCORE_TOLERANCE = 0.05  # measured on these 8 images: the largest difference was 0.0145 in both frameworks
MIN_IOU = 0.9
IMAGES = 8


def unpartnered(mine: Detections, partners: np.ndarray) -> np.ndarray:
    """Scores of ``mine``'s detections without a partner that count: above the threshold by more than the tolerance."""
    lonely = mine.scores[partners < 0]
    return lonely[lonely >= THRESHOLD + SCORE_TOLERANCE]


@needs_bf16_cpu
@pytest.mark.slow
@pytest.mark.parametrize("framework", ["detectron2", "mmdet"])
def test_bf16_finds_the_same_objects_as_fp32(framework: str, tiny_cache: Path, request: pytest.FixtureRequest) -> None:
    from tests.detectron2.test_predictor import tiny_val_images

    trained = request.getfixturevalue("trained_on_the_tiny_set")  # module-scoped: one training for both frameworks
    prefix = "d2" if framework == "detectron2" else "mm"
    model = load_model(trained[f"{prefix}_config"], trained[f"{prefix}_weights"], device="cpu")
    _, images = tiny_val_images(tiny_cache, count=IMAGES)
    full = model.predict(images)
    set_precision(model, "bf16")
    half = model.predict(images)
    matched, differences = 0, []
    for a, b in zip(full, half, strict=True):
        assert a.boxes.dtype == b.boxes.dtype == np.float64 and b.scores.dtype == np.float64
        a = a.select(a.scores >= THRESHOLD - SCORE_TOLERANCE)
        b = b.select(b.scores >= THRESHOLD - SCORE_TOLERANCE)
        result = match(b.boxes, b.scores, a.boxes, MatchRule("iou", MIN_IOU), b.labels, a.labels)
        pairs = np.flatnonzero(result.pred_to_true >= 0)
        differences += np.abs(b.scores[pairs] - a.scores[result.pred_to_true[pairs]]).tolist()
        matched += len(pairs)
        assert len(unpartnered(a, result.true_to_pred)) == 0, "an fp32 detection has no bf16 partner"
        assert len(unpartnered(b, result.pred_to_true)) == 0, "a bf16 detection has no fp32 partner"
        assert abs(int((a.scores >= THRESHOLD).sum()) - int((b.scores >= THRESHOLD).sum())) <= 1
    assert matched >= IMAGES  # the model finds clumps: the comparison is not vacuous
    print(f"{framework}: {matched} pairs, largest score difference {max(differences):.4f}")
    assert max(differences) <= SCORE_TOLERANCE
