"""Multi-band float FITS detection in MMDetection: LoadFitsImage, 1- and 5-band models, a quick 5-band training."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("mmdet")

from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

import astrodet.mmdet  # noqa: F401  (registers LoadFitsImage, AstroCocoDataset, TimmEncoder)
from astrodet.data.normalise import read_record
from astrodet.errors import AstrodetInputError
from astrodet.inference.model import ImageRecipe
from astrodet.mmdet.compat import load_local_checkpoint
from astrodet.mmdet.datasets import AstroCocoDataset
from tests.conftest import REPO
from tests.data.fits_samples import CLASSES, UGRIZ, tiny_fits_cache, write_fits_detection_set

CONFIG = REPO / "configs" / "mmdet" / "frcnn_zoobot_fits.py"


def fits_config(bands: tuple[str, ...] = UGRIZ, side: int = 96) -> Config:
    """The shipped config for ``bands`` at ``side`` px: recipe, pipelines and the encoder's input channels."""
    cfg = Config.fromfile(str(CONFIG))
    cfg.image_recipe.bands, cfg.image_recipe.channels = list(bands), len(bands)
    cfg.model.backbone.in_channels = len(bands)
    for pipeline in (cfg.train_pipeline, cfg.test_pipeline):
        for step in pipeline:
            if step.type == "LoadFitsImage":
                step.recipe = copy.deepcopy(cfg.image_recipe)
            if step.type == "Resize":
                step.scale = (side, side)
    return cfg


def dataset(cfg: Config, ann_file: Path, pipeline: list) -> AstroCocoDataset:
    init_default_scope("mmdet")
    return AstroCocoDataset(ann_file=str(ann_file), metainfo={"classes": CLASSES}, pipeline=pipeline)


@pytest.fixture(scope="module")
def fits_set(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_fits_detection_set(tmp_path_factory.mktemp("fits_set"), size=96)


def test_the_shipped_config_names_a_five_band_float_recipe() -> None:
    cfg = Config.fromfile(str(CONFIG))
    recipe = ImageRecipe.from_dict(dict(cfg.image_recipe))
    assert recipe.kind == "float" and recipe.bands == UGRIZ and recipe.channels == 5
    assert cfg.model.backbone.in_channels == 5 and cfg.model.data_preprocessor.bgr_to_rgb is False
    assert next(s for s in cfg.train_pipeline if s.type == "LoadFitsImage").recipe == cfg.image_recipe
    assert cfg.train_dataloader.dataset.dataset == "default_fits"


def test_load_fits_image_reads_the_record_through_the_core(fits_set: dict[str, Path]) -> None:
    cfg = fits_config()
    packed = dataset(cfg, fits_set["val"], cfg.test_pipeline)[0]
    record = json.loads(fits_set["val"].read_text())["images"][0]
    expected = read_record(fits_set["val"].parent / record["file_name"], ImageRecipe.from_dict(dict(cfg.image_recipe)))
    assert packed["inputs"].dtype == torch.float32 and packed["inputs"].shape == (5, 96, 96)
    assert torch.equal(packed["inputs"], torch.from_numpy(expected.transpose(2, 0, 1).copy()))


def test_flips_and_turns_act_on_every_band(fits_set: dict[str, Path]) -> None:
    cfg = fits_config()
    plain = dataset(cfg, fits_set["train"], cfg.test_pipeline)[0]["inputs"].numpy()
    augmented = dataset(cfg, fits_set["train"], cfg.train_pipeline)
    symmetries = [np.rot90(flip, k, axes=(1, 2)) for flip in (plain, plain[:, :, ::-1]) for k in range(4)]
    np.random.seed(1)  # noqa: NPY002  (mmcv's random transforms draw from numpy's global generator)
    seen = set()
    for _ in range(16):
        image = augmented[0]["inputs"].numpy()
        matches = [k for k, s in enumerate(symmetries) if np.array_equal(image, s)]
        assert len(matches) == 1  # one of the eight symmetries of the square, the same for all five bands
        seen.add(matches[0])
    assert len(seen) > 2


@pytest.mark.parametrize("bands", [("r",), UGRIZ])
def test_one_and_five_band_models_build_train_and_predict(fits_set: dict[str, Path], bands) -> None:
    cfg = fits_config(bands)
    init_default_scope("mmdet")
    model = MODELS.build(cfg.model)
    assert next(m for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d)).in_channels == len(bands)
    train = dataset(cfg, fits_set["train"], cfg.train_pipeline)
    batch = model.data_preprocessor(pseudo_collate([train[0], train[1]]), True)
    loss, _ = model.parse_losses(model(**batch, mode="loss"))
    assert torch.isfinite(loss)
    model.eval()
    test = dataset(cfg, fits_set["val"], cfg.test_pipeline)
    with torch.no_grad():
        (sample,) = model.test_step(pseudo_collate([test[0]]))
    assert sample.pred_instances.bboxes.shape[1] == 4 and tuple(sample.ori_shape) == (96, 96)


@pytest.mark.slow
def test_quick_five_band_schedule_trains_and_reports(tmp_path: Path, fits_cache: Path) -> None:
    work_dir = tmp_path / "work"
    config = REPO / "configs" / "mmdet" / "quick" / "frcnn_zoobot_fits_quick.py"
    cmd = [sys.executable, str(REPO / "tools" / "train_mmdet.py"), str(config), "--work-dir", str(work_dir)]
    env = dict(os.environ, ASTRODET_CACHE=str(fits_cache))
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((work_dir / "report.json").read_text())
    assert report["meta"]["framework"] == "mmdet" and report["n_true"] > 0
    assert (work_dir / "examples.png").stat().st_size > 10_000
    saved = load_local_checkpoint(str(work_dir / "iter_10.pth"))["meta"]
    assert saved["image_recipe"]["kind"] == "float" and saved["image_recipe"]["bands"] == list(UGRIZ)


@pytest.fixture(scope="module")
def fits_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_fits_cache(tmp_path_factory)


def test_predict_loads_a_float_model_and_takes_normalised_bands(fits_set: dict[str, Path], tmp_path: Path) -> None:
    from astrodet.inference import load_model

    init_default_scope("mmdet")
    model = MODELS.build(fits_config().model)
    torch.save({"state_dict": model.state_dict()}, tmp_path / "model.pth")
    detector = load_model(CONFIG, tmp_path / "model.pth", device="cpu")
    assert detector.recipe.kind == "float" and detector.recipe.bands == UGRIZ and detector.channels == 5
    record = json.loads(fits_set["val"].read_text())["images"][0]
    image = read_record(fits_set["val"].parent / record["file_name"], detector.recipe)
    (found,) = detector.predict([image])
    assert found.boxes.shape[1] == 4 and (found.boxes[:, 2:] <= 96 + 1e-3).all()  # the input's own frame
    with pytest.raises(AstrodetInputError, match=r"the model takes \(H, W, 5\)"):
        detector.predict([image[:, :, :3]])
