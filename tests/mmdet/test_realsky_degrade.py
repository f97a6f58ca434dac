"""MMDetection's RealSkyDegrade: the config twin, pixels and boxes, channel order, refusals, the same pixels as the
Detectron2 side, and a short training with configs/mmdet/frcnn_zoobot_realsky.py's settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("mmdet")

from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.config import Config

import astrodet.mmdet  # noqa: F401  (registers)
from astrodet.data.degrade import DegradationParams, RealSkyDegradation
from astrodet.mmdet.transforms import RealSkyDegrade
from tests.conftest import REPO, train_two_iterations
from tests.data.test_degrade import galaxy_picture

MMDET_CONFIGS = REPO / "configs" / "mmdet"


def _results(image: np.ndarray) -> dict:
    box = HorizontalBoxes(torch.tensor([[60.0, 70.0, 80.0, 86.0]]))
    return dict(img=image.copy(), img_shape=image.shape[:2], gt_bboxes=box, img_path="galaxy.png")


def test_the_realsky_config_is_the_main_job_plus_the_transform() -> None:
    plain = Config.fromfile(str(MMDET_CONFIGS / "frcnn_zoobot.py"))
    realsky = Config.fromfile(str(MMDET_CONFIGS / "frcnn_zoobot_realsky.py"))
    before, after = plain.train_dataloader.dataset.pipeline, realsky.train_dataloader.dataset.pipeline
    degrade = dict(
        type="RealSkyDegrade", jpeg_prob=0.5, jpeg_quality=(60, 95), blur_prob=0.5, blur_factor=(1.0, 4.0)
    )
    assert after == [*before[:-1], dict(degrade, channel_order="bgr"), before[-1]]
    assert realsky.test_dataloader.dataset.pipeline == plain.test_dataloader.dataset.pipeline  # training only
    assert realsky.model == plain.model and realsky.work_dir == "output/mmdet/frcnn_zoobot_realsky"
    quick = Config.fromfile(str(MMDET_CONFIGS / "quick" / "frcnn_zoobot_realsky_quick.py"))
    assert quick.train_dataloader.dataset.pipeline == after and quick.train_dataloader.dataset.dataset == "tiny"
    assert isinstance(TRANSFORMS.build(after[-2]), RealSkyDegrade)


def test_degrades_pixels_keeps_boxes_and_records_the_draw() -> None:
    image = galaxy_picture(200)
    np.random.seed(0)  # noqa: NPY002  (the generator mmengine seeds per worker)
    out = RealSkyDegrade(jpeg_prob=1.0, blur_prob=1.0, channel_order="rgb")(_results(image))
    assert out["img"].shape == image.shape and out["img"].dtype == np.uint8
    assert not np.array_equal(out["img"], image)
    assert out["gt_bboxes"].tensor.tolist() == [[60.0, 70.0, 80.0, 86.0]]
    params = out["real_sky"]
    assert params.jpeg_quality is not None and params.blur_factor is not None
    assert np.array_equal(out["img"], RealSkyDegradation.apply(image, params))
    off = RealSkyDegrade()(_results(image))  # the defaults: off, the same pixels
    assert np.array_equal(off["img"], image) and off["real_sky"].is_identity


def test_bgr_images_are_degraded_in_rgb_order() -> None:
    image = galaxy_picture(200)
    np.random.seed(3)  # noqa: NPY002
    rgb = RealSkyDegrade(jpeg_prob=1.0, blur_prob=1.0, channel_order="rgb")(_results(image))["img"]
    np.random.seed(3)  # noqa: NPY002
    bgr = RealSkyDegrade(jpeg_prob=1.0, blur_prob=1.0)(_results(image[:, :, ::-1]))["img"]  # default 'bgr'
    assert np.array_equal(bgr, rgb[:, :, ::-1])


def test_float_images_and_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match=r"galaxy.png \(RealSkyDegrade\).*8-bit \(uint8\).*got float32"):
        RealSkyDegrade(jpeg_prob=1.0)(_results(galaxy_picture().astype(np.float32)))
    with pytest.raises(ValueError, match="channel_order must be 'bgr' or 'rgb'"):
        RealSkyDegrade(channel_order="yuv")
    with pytest.raises(ValueError, match="jpeg_quality must satisfy"):
        TRANSFORMS.build(dict(type="RealSkyDegrade", jpeg_prob=0.5, jpeg_quality=[95, 60]))


@pytest.mark.parametrize("params", [DegradationParams(jpeg_quality=72, blur_factor=2.7), DegradationParams(60, None)])
def test_both_adapters_give_the_same_pixels_for_the_same_draw(params: DegradationParams) -> None:
    pytest.importorskip("detectron2")
    from astrodet.detectron2.augment import RealSkyTransform

    image = galaxy_picture(200)
    transform = RealSkyDegrade(jpeg_prob=1.0, blur_prob=1.0)
    transform._draw = lambda: params  # the draw is each framework's; the pixels must be the core's
    mmdet_bgr = transform(_results(image[:, :, ::-1]))["img"]
    detectron2_rgb = RealSkyTransform(params, "RGB").apply_image(image)
    detectron2_bgr = RealSkyTransform(params, "BGR").apply_image(np.ascontiguousarray(image[:, :, ::-1]))
    assert np.array_equal(mmdet_bgr[:, :, ::-1], detectron2_rgb)
    assert np.array_equal(mmdet_bgr, detectron2_bgr)


@pytest.mark.slow
def test_two_iterations_train_with_the_realsky_settings(tmp_path: Path, tiny_cache: Path) -> None:
    config = MMDET_CONFIGS / "quick" / "frcnn_zoobot_realsky_quick.py"
    result = train_two_iterations("mmdet", config, tmp_path / "work", tiny_cache)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    dumped = next((tmp_path / "work").glob("*.py")).read_text()
    assert "RealSkyDegrade" in dumped
    assert json.loads((tmp_path / "work" / "report.json").read_text())["meta"]["framework"] == "mmdet"
