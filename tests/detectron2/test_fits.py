"""Multi-band float FITS detection in Detectron2: the mapper, 1- and 5-band models, a quick 5-band training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("detectron2")

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage

from astrodet.data.normalise import read_record
from astrodet.detectron2.checkpoint import config_image_recipe
from astrodet.detectron2.config import add_astrodet_config
from astrodet.detectron2.datasets import register_coco_file
from astrodet.detectron2.fits_mapper import FitsDatasetMapper, detection_mapper
from astrodet.errors import AstrodetInputError
from tests.conftest import REPO
from tests.data.fits_samples import UGRIZ, tiny_fits_cache, write_fits_detection_set


def fits_cfg(bands: tuple[str, ...] = UGRIZ, config: str = "configs/frcnn_zoobot_fits.yaml", side: int = 64):
    """A float-recipe config of ``bands`` for ``side`` px images (no resize), on the CPU."""
    cfg = get_cfg()
    add_astrodet_config(cfg)
    cfg.merge_from_file(str(REPO / config))
    cfg.ASTRODET.IMAGE_RECIPE.KIND = "float"
    cfg.ASTRODET.IMAGE_RECIPE.STRETCH = "asinh"
    cfg.ASTRODET.IMAGE_RECIPE.BANDS = list(bands)
    cfg.MODEL.PIXEL_MEAN = [0.0] * len(bands)
    cfg.MODEL.PIXEL_STD = [1.0] * len(bands)
    cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MAX_SIZE_TRAIN = (side,), side
    cfg.INPUT.MIN_SIZE_TEST = cfg.INPUT.MAX_SIZE_TEST = side
    cfg.MODEL.DEVICE = "cpu"
    return cfg


@pytest.fixture(scope="module")
def fits_set(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    files = write_fits_detection_set(tmp_path_factory.mktemp("fits_set"))
    for split, path in files.items():
        register_coco_file(f"test_fits_{split}", path)
    return files


def test_the_shipped_config_names_a_five_band_float_recipe() -> None:
    cfg = get_cfg()
    add_astrodet_config(cfg)
    cfg.merge_from_file(str(REPO / "configs/frcnn_zoobot_fits.yaml"))
    recipe = config_image_recipe(cfg)
    assert recipe.kind == "float" and recipe.bands == UGRIZ and recipe.channels == 5
    assert recipe.params == {"softening": 5.0, "sigma_clip": 3.0}
    assert cfg.DATASETS.TRAIN == ("astrodet_default_fits_train",)


def test_the_mapper_reads_the_record_through_the_core(fits_set: dict[str, Path]) -> None:
    cfg = fits_cfg()
    record = DatasetCatalog.get("test_fits_val")[0]
    assert record["bands"] == list(UGRIZ)
    mapped = detection_mapper(cfg, is_train=False)(record)
    expected = read_record(record["file_name"], config_image_recipe(cfg))
    assert mapped["image"].dtype == torch.float32 and mapped["image"].shape == (5, 64, 64)
    assert torch.equal(mapped["image"], torch.from_numpy(expected.transpose(2, 0, 1).copy()))
    assert "annotations" not in mapped


def test_training_flips_and_turns_act_on_every_band_and_box(fits_set: dict[str, Path]) -> None:
    cfg = fits_cfg()
    cfg.ASTRODET.AUG.VFLIP = cfg.ASTRODET.AUG.ROT90 = False
    record = DatasetCatalog.get("test_fits_train")[0]
    plain = read_record(record["file_name"], config_image_recipe(cfg)).transpose(2, 0, 1)
    mapper = FitsDatasetMapper(cfg, is_train=True)
    np.random.seed(0)  # noqa: NPY002  (Detectron2's augmentations draw from numpy's global generator)
    seen = set()
    for _ in range(12):
        mapped = mapper(record)
        image, boxes = mapped["image"].numpy(), mapped["instances"].gt_boxes.tensor.numpy()
        flipped = not np.array_equal(image, plain)
        if flipped:
            assert np.array_equal(image, plain[:, :, ::-1])  # all five bands mirrored together
            x0 = [64 - (a["bbox"][0] + a["bbox"][2]) for a in record["annotations"]]
            assert np.allclose(sorted(boxes[:, 0]), sorted(x0), atol=1e-4)
        seen.add(flipped)
    assert seen == {True, False}


def test_a_recipe_that_does_not_match_the_model_input_is_refused() -> None:
    cfg = fits_cfg()
    cfg.MODEL.PIXEL_MEAN = [0.0, 0.0, 0.0]
    with pytest.raises(AstrodetInputError, match=r"5 bands .* for 3 model input channels"):
        FitsDatasetMapper(cfg, is_train=False)


@pytest.mark.parametrize(
    ("bands", "config"),
    [
        (("r",), "configs/frcnn_zoobot_fits.yaml"),
        (UGRIZ, "configs/frcnn_zoobot_fits.yaml"),
        (UGRIZ, "configs/frcnn_r50.yaml"),
    ],
)
def test_one_and_five_band_models_build_train_and_predict(fits_set: dict[str, Path], bands, config: str) -> None:
    cfg = fits_cfg(bands, config)
    records = DatasetCatalog.get("test_fits_train")[:2]
    model = build_model(cfg)
    first_conv = next(m for m in model.backbone.bottom_up.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.in_channels == len(bands)
    with EventStorage(0):  # Detectron2's training forward logs into one
        losses = model([FitsDatasetMapper(cfg, is_train=True)(r) for r in records])
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        (output,) = model([FitsDatasetMapper(cfg, is_train=False)(records[0])])
    assert output["instances"].image_size == (64, 64)


@pytest.mark.slow
def test_quick_five_band_schedule_trains_and_reports(tmp_path: Path, fits_cache: Path) -> None:
    env = dict(os.environ, ASTRODET_CACHE=str(fits_cache))
    config = REPO / "configs/quick_schedules/frcnn_zoobot_fits_quick.yaml"
    cmd = [sys.executable, str(REPO / "tools" / "train_net.py"), "--config-file", str(config),
           "OUTPUT_DIR", str(tmp_path / "out")]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["meta"]["dataset"] == "astrodet_tiny_fits_val" and report["n_true"] > 0
    assert (tmp_path / "out" / "examples.png").stat().st_size > 10_000
    stored = torch.load(tmp_path / "out" / "model_final.pth", weights_only=True)
    assert stored["image_recipe"]["kind"] == "float" and stored["image_recipe"]["bands"] == list(UGRIZ)


@pytest.fixture(scope="module")
def fits_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_fits_cache(tmp_path_factory)


def test_predict_loads_a_float_model_and_takes_normalised_bands(fits_set: dict[str, Path], tmp_path: Path) -> None:
    from astrodet.inference import load_model

    model = build_model(fits_cfg())
    torch.save({"model": model.state_dict()}, tmp_path / "model.pth")
    detector = load_model(REPO / "configs/frcnn_zoobot_fits.yaml", tmp_path / "model.pth", device="cpu")
    assert detector.recipe == config_image_recipe(fits_cfg()) and detector.recipe.channels == 5
    image = read_record(DatasetCatalog.get("test_fits_val")[0]["file_name"], detector.recipe)
    (found,) = detector.predict([image])
    assert found.boxes.shape[1] == 4 and (found.boxes[:, 2:] <= 64 + 1e-3).all()  # the input's own frame
    with pytest.raises(AstrodetInputError, match=r"the model takes \(H, W, 5\)"):
        detector.predict([image[:, :, :3]])
