"""One normalisation code path: a FITS image through Detectron2's mapper, mmdet's pipeline and ``astrodet predict``'s
loader gives the same tensor, for a cube and for per-band files."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("detectron2")
pytest.importorskip("mmdet")

from detectron2.data import DatasetCatalog
from mmengine.config import Config
from mmengine.registry import init_default_scope

from astrodet.data.coco import CocoBuilder, write_coco
from astrodet.data.imaging import celestial_wcs, write_fits_image
from astrodet.detectron2.datasets import register_coco_file
from astrodet.detectron2.fits_mapper import FitsDatasetMapper
from astrodet.inference.images import load_fits
from astrodet.inference.model import ImageRecipe
from astrodet.inference.sources import InputUnit, discover
from astrodet.mmdet.datasets import AstroCocoDataset
from tests.conftest import REPO
from tests.data.fits_samples import UGRIZ, write_fits_cube
from tests.detectron2.test_fits import fits_cfg

RECIPE = ImageRecipe("float", UGRIZ, "asinh", {"softening": 5.0, "sigma_clip": 3.0}, 5)


def _write_set(folder: Path) -> Path:
    """One cube and the same bands as per-band files (with NaN holes), in one COCO file."""
    rng = np.random.default_rng(3)
    cube = rng.normal(0.0, 0.02, (5, 96, 96)) + np.linspace(0.0, 1.0, 96)[None, None, :]
    cube[:, 10:14, 70:74] = np.nan
    write_fits_cube(folder / "cube.fits", cube, UGRIZ)
    wcs = celestial_wcs(150.0, 2.0, 0.396, (96, 96))
    for band, plane in zip(UGRIZ, cube[::-1], strict=True):  # other data, so the two records differ
        write_fits_image(folder / f"gal_{band}.fits", plane, wcs, {"BUNIT": "nanomaggy/arcsec2", "BAND": band})
    builder = CocoBuilder()
    builder.add_category("clump")
    builder.add_image("cube.fits", 96, 96, bands=list(UGRIZ))
    band_files = {band: f"gal_{band}.fits" for band in UGRIZ}
    builder.add_image("gal_u.fits", 96, 96, bands=list(UGRIZ), band_files=band_files)
    write_coco(builder.to_dict(), folder / "set.json")
    return folder / "set.json"


def _detectron2(json_file: Path) -> list[torch.Tensor]:
    register_coco_file("fits_parity", json_file)
    cfg = fits_cfg(side=96)
    mapper = FitsDatasetMapper(cfg, is_train=False)  # the test-time mapper: no augmentation
    return [mapper(record)["image"] for record in DatasetCatalog.get("fits_parity")]


def _mmdet(json_file: Path) -> list[torch.Tensor]:
    cfg = Config.fromfile(str(REPO / "configs" / "mmdet" / "frcnn_zoobot_fits.py"))
    pipeline = copy.deepcopy(cfg.test_pipeline)
    pipeline[1].scale = (96, 96)
    init_default_scope("mmdet")
    dataset = AstroCocoDataset(ann_file=str(json_file), metainfo={"classes": ("clump",)}, pipeline=pipeline)
    return [dataset[k]["inputs"] for k in range(len(dataset))]


def _predict(folder: Path) -> list[torch.Tensor]:
    cube = InputUnit(file="cube.fits", kind="fits", path=str(folder / "cube.fits"))
    (group,) = discover([str(folder / "gal_{band}.fits")], UGRIZ)
    loaded = [load_fits(unit, RECIPE, UGRIZ).pixels for unit in (cube, group)]
    return [torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))) for pixels in loaded]


def test_training_in_both_frameworks_and_predict_see_the_same_tensor(tmp_path: Path) -> None:
    json_file = _write_set(tmp_path)
    detectron2, mmdet, predict = _detectron2(json_file), _mmdet(json_file), _predict(tmp_path)
    assert not torch.equal(predict[0], predict[1])
    for d2, mm, pred in zip(detectron2, mmdet, predict, strict=True):
        assert pred.dtype == torch.float32 and pred.shape == (5, 96, 96) and torch.isfinite(pred).all()
        assert torch.equal(d2, pred) and torch.equal(mm, pred)
