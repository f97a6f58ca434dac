"""Detectron2's real-sky augmentations (ASTRODET.AUG.JPEG_* / DEGRADE_*): the mapper's pixels and boxes, the config
keys, the refusals, and a short training with configs/frcnn_zoobot_realsky.yaml's settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("detectron2")

from detectron2.config import get_cfg
from detectron2.data import transforms as T
from detectron2.structures import BoxMode
from PIL import Image

import astrodet.detectron2  # noqa: F401  (registers)
from astrodet.data.degrade import DegradationParams, RealSkyDegradation
from astrodet.detectron2 import add_astrodet_config
from astrodet.detectron2.augment import RandomRealSky, RealSkyTransform, build_astro_augmentations
from astrodet.detectron2.fits_mapper import detection_mapper
from tests.conftest import REPO, train_two_iterations
from tests.data.test_degrade import galaxy_picture

BOX = [60.0, 70.0, 20.0, 16.0]  # x, y, w, h


def _cfg(config: str = "frcnn_zoobot_realsky.yaml", *opts: str):
    cfg = get_cfg()
    add_astrodet_config(cfg)
    cfg.merge_from_file(str(REPO / "configs" / config))
    # orientation off: the pixels and boxes compared below are then the degradation's alone
    cfg.merge_from_list(["ASTRODET.AUG.HFLIP", False, "ASTRODET.AUG.VFLIP", False, "ASTRODET.AUG.ROT90", False])
    cfg.merge_from_list(list(opts))
    return cfg


def _record(tmp_path: Path) -> dict:
    path = tmp_path / "galaxy.png"
    Image.fromarray(galaxy_picture(200)).save(path)
    annotation = dict(bbox=list(BOX), bbox_mode=BoxMode.XYWH_ABS, category_id=0, iscrowd=0)
    return dict(file_name=str(path), height=200, width=200, image_id=1, annotations=[annotation])


def _mapped(cfg, record: dict, seed: int = 0) -> tuple[np.ndarray, list[float]]:
    np.random.seed(seed)  # noqa: NPY002  (the generator detectron2 seeds per worker)
    out = detection_mapper(cfg, is_train=True)(record)
    return out["image"].numpy().transpose(1, 2, 0), out["instances"].gt_boxes.tensor[0].tolist()


def test_the_realsky_config_appends_the_degradation_and_the_defaults_leave_it_out() -> None:
    augs = build_astro_augmentations(_cfg("frcnn_zoobot_realsky.yaml"), is_train=True)
    assert type(augs[-1]) is RandomRealSky
    assert augs[-1].degradation == RealSkyDegradation(0.5, (60, 95), 0.5, (1.0, 4.0))
    plain = get_cfg()
    add_astrodet_config(plain)
    plain.merge_from_file(str(REPO / "configs" / "frcnn_zoobot.yaml"))
    assert RandomRealSky not in [type(a) for a in build_astro_augmentations(plain, is_train=True)]
    assert [type(a) for a in build_astro_augmentations(_cfg(), is_train=False)] == [T.ResizeShortestEdge]


def test_the_mapper_degrades_pixels_and_keeps_boxes(tmp_path: Path) -> None:
    record = _record(tmp_path)
    original = np.asarray(Image.open(record["file_name"]).convert("RGB"))
    old_pixels, old_box = _mapped(_cfg("frcnn_zoobot.yaml"), record)
    assert np.array_equal(old_pixels, original)  # defaults off: exactly the old pixels
    cfg = _cfg("frcnn_zoobot_realsky.yaml", "ASTRODET.AUG.JPEG_PROB", 1.0, "ASTRODET.AUG.DEGRADE_PROB", 1.0)
    pixels, box = _mapped(cfg, record)
    assert pixels.shape == original.shape and not np.array_equal(pixels, original)
    assert box == old_box == [BOX[0], BOX[1], BOX[0] + BOX[2], BOX[1] + BOX[3]]
    # the same draw from the same seed: what the core computes, and nothing else
    np.random.seed(0)  # noqa: NPY002
    params = RealSkyDegradation(1.0, (60, 95), 1.0, (1.0, 4.0)).draw(np.random)
    assert np.array_equal(pixels, RealSkyDegradation.apply(original, params))


def test_bgr_images_are_degraded_in_rgb_order(tmp_path: Path) -> None:
    record = _record(tmp_path)
    opts = ("ASTRODET.AUG.JPEG_PROB", 1.0, "ASTRODET.AUG.DEGRADE_PROB", 1.0)
    rgb, _ = _mapped(_cfg("frcnn_zoobot_realsky.yaml", *opts, "INPUT.FORMAT", "RGB"), record, seed=4)
    bgr, _ = _mapped(_cfg("frcnn_zoobot_realsky.yaml", *opts, "INPUT.FORMAT", "BGR"), record, seed=4)
    assert np.array_equal(bgr, rgb[:, :, ::-1])


def test_float_images_and_bad_settings_are_refused() -> None:
    augmentation = RandomRealSky(RealSkyDegradation(jpeg_prob=1.0), "RGB")
    with pytest.raises(ValueError, match=r"8-bit \(uint8\).*got float32"):
        augmentation.get_transform(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"8-bit \(uint8\).*got float32"):
        RealSkyTransform(DegradationParams(jpeg_quality=80), "RGB").apply_image(np.zeros((8, 8, 3), np.float32))
    fits = _cfg("frcnn_zoobot_fits.yaml", "ASTRODET.AUG.JPEG_PROB", 0.5)
    with pytest.raises(ValueError, match=r"IMAGE_RECIPE.KIND 'float' reads FITS"):
        build_astro_augmentations(fits, is_train=True)
    with pytest.raises(ValueError, match=r"INPUT.FORMAT 'YUV-BT.601'"):
        build_astro_augmentations(_cfg("frcnn_zoobot_realsky.yaml", "INPUT.FORMAT", "YUV-BT.601"), is_train=True)
    for opts, message in [
        (("ASTRODET.AUG.JPEG_PROB", 2.0), "jpeg_prob must be a probability"),
        (("ASTRODET.AUG.DEGRADE_FACTOR", (0.5, 2.0)), "blur_factor must satisfy"),
        (("ASTRODET.AUG.JPEG_QUALITY", (95, 60)), "jpeg_quality must satisfy"),
    ]:
        with pytest.raises(ValueError, match=message):
            build_astro_augmentations(_cfg("frcnn_zoobot_realsky.yaml", *opts), is_train=True)


@pytest.mark.slow
def test_two_iterations_train_with_the_realsky_settings(tmp_path: Path, tiny_cache: Path) -> None:
    config = REPO / "configs" / "quick_schedules" / "frcnn_zoobot_realsky_quick.yaml"
    result = train_two_iterations("detectron2", config, tmp_path / "out", tiny_cache)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    saved = (tmp_path / "out" / "config.yaml").read_text()
    assert "JPEG_PROB: 0.5" in saved and "DEGRADE_PROB: 0.5" in saved
    assert json.loads((tmp_path / "out" / "report.json").read_text())["meta"]["framework"] == "detectron2"
