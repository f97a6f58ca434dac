"""The Detectron2 adapter: backbones behind FPN, configs, augmentations, evaluation settings, dataset registration
and the Detectron2 patches (astrodet/detectron2/compat.py)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("detectron2")

from detectron2.config import get_cfg
from detectron2.data import transforms as T
from detectron2.engine import defaults as d2_defaults
from detectron2.evaluation import coco_evaluation as d2_coco_evaluation
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, build_model

import astrodet.detectron2  # noqa: F401  (registers)
from astrodet.detectron2 import add_astrodet_config, compat
from astrodet.detectron2.augment import Rot90Transform
from astrodet.evaluation.coco_params import ASTRODET_AREA_RANGES
from tests.conftest import REPO

CONFIGS = REPO / "configs"


def _cfg(config: str | None = None, *opts: str):
    cfg = get_cfg()
    add_astrodet_config(cfg)
    if config:
        cfg.merge_from_file(str(CONFIGS / config))
    cfg.merge_from_list(list(opts))
    cfg.MODEL.DEVICE = "cpu"
    return cfg


def _check_fpn(builder: str, cfg, expected: dict[str, int]) -> None:
    backbone = BACKBONE_REGISTRY.get(builder)(cfg, ShapeSpec(channels=3))
    assert {k: v.stride for k, v in backbone.output_shape().items()} == expected
    out = backbone(torch.zeros(1, 3, 64, 64))
    assert {k: tuple(v.shape) for k, v in out.items()} == {k: (1, 32, 64 // s, 64 // s) for k, s in expected.items()}


@pytest.mark.parametrize("builder", ["build_timm_fpn_backbone", "build_zoobot_fpn_backbone"])  # new and old name
def test_timm_fpn_gives_p2_to_p6(builder: str) -> None:
    cfg = _cfg(None, "MODEL.FPN.OUT_CHANNELS", 32, "MODEL.ZOOBOT.ARCH", "resnet18")
    cfg.MODEL.FPN.IN_FEATURES = ["stage2", "stage3", "stage4", "stage5"]
    _check_fpn(builder, cfg, {"p2": 4, "p3": 8, "p4": 16, "p5": 32, "p6": 64})


def test_deepshadows_fpn_gives_p1_to_p4() -> None:
    cfg = _cfg(None, "MODEL.FPN.OUT_CHANNELS", 32)
    cfg.MODEL.FPN.IN_FEATURES = ["stage1", "stage2", "stage3"]
    _check_fpn("build_deepshadows_fpn_backbone", cfg, {"p1": 2, "p2": 4, "p3": 8, "p4": 16})


@pytest.mark.parametrize("builder", ["build_timm_backbone", "build_zoobot_backbone"])  # new and old name
def test_freeze_at_maps_to_frozen_stages(builder: str) -> None:
    cfg = _cfg(None, "MODEL.ZOOBOT.ARCH", "resnet18", "MODEL.BACKBONE.FREEZE_AT", 2)
    backbone = BACKBONE_REGISTRY.get(builder)(cfg, ShapeSpec(channels=3))
    body = backbone.body.body
    assert not any(p.requires_grad for p in body.layer1.parameters())  # stem + stage2 (stride 4) frozen
    assert all(p.requires_grad for p in body.layer2.parameters())


def test_band_count_follows_pixel_mean() -> None:
    cfg = _cfg("frcnn_zoobot.yaml", "MODEL.PIXEL_MEAN", [0.0] * 5, "MODEL.PIXEL_STD", [1.0] * 5)
    model = build_model(cfg)
    assert model.backbone.bottom_up.body.in_chans == 5


@pytest.mark.parametrize("config", ["frcnn_zoobot.yaml", "frcnn_deepshadows.yaml", "frcnn_r50.yaml"])
def test_shipped_configs_build_and_cap_detections_like_the_evaluator(config: str) -> None:
    cfg = _cfg(config)
    model = build_model(cfg).eval()
    assert cfg.TEST.DETECTIONS_PER_IMAGE == 100
    assert cfg.MODEL.ROI_HEADS.NUM_CLASSES == 2
    with torch.no_grad():
        (out,) = model([{"image": torch.rand(3, 200, 200) * 255, "height": 200, "width": 200}])
    assert len(out["instances"]) <= cfg.TEST.DETECTIONS_PER_IMAGE


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_rot90_moves_boxes_with_pixels(k: int) -> None:
    image = np.zeros((20, 30, 3), dtype=np.uint8)
    image[2:5, 10:16] = 255  # a bright box: x 10..16, y 2..5
    t = Rot90Transform(k, 20, 30)
    rotated = t.apply_image(image)
    (box,) = t.apply_box(np.array([[10.0, 2.0, 16.0, 5.0]]))
    ys, xs = np.nonzero(rotated[..., 0])
    assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    back = t.inverse().apply_image(rotated)
    assert np.array_equal(back, image)


def test_augmentation_list_follows_config() -> None:
    from astrodet.detectron2.augment import RandomRot90, build_astro_augmentations

    cfg = _cfg("frcnn_zoobot.yaml")
    train = build_astro_augmentations(cfg, is_train=True)
    assert [type(a) for a in train] == [T.ResizeShortestEdge, T.RandomFlip, T.RandomFlip, RandomRot90]
    cfg.ASTRODET.AUG.ROT90 = False
    assert RandomRot90 not in [type(a) for a in build_astro_augmentations(cfg, is_train=True)]
    assert [type(a) for a in build_astro_augmentations(cfg, is_train=False)] == [T.ResizeShortestEdge]


def test_cocoeval_uses_astrodet_area_ranges_only_inside_the_evaluation() -> None:
    from pycocotools.coco import COCO

    original = d2_coco_evaluation.COCOeval
    gt = COCO()
    gt.dataset = {
        "images": [{"id": 1, "width": 10, "height": 10}],
        "annotations": [],
        "categories": [{"id": 1, "name": "c"}],
    }
    gt.createIndex()
    with compat.astrodet_cocoeval(100):
        coco_eval = d2_coco_evaluation.COCOeval(gt, gt, "bbox")
    assert coco_eval.params.areaRng == [list(map(float, r)) for r in ASTRODET_AREA_RANGES.values()]
    assert d2_coco_evaluation.COCOeval is original


def test_user_registered_coco_file_gets_its_class_names(tmp_path: Path) -> None:
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from astrodet.data.coco import CocoBuilder, write_coco
    from astrodet.detectron2 import register_coco_file

    builder = CocoBuilder()
    builder.add_category("lsbg")
    builder.add_category("artifact")
    image_id = builder.add_image("a.png", 64, 64)
    builder.add_annotation(image_id, [1, 2, 10, 12], 2)
    path = write_coco(builder.to_dict(), tmp_path / "set.json")
    register_coco_file("astrodet_test_user_set", path)
    assert MetadataCatalog.get("astrodet_test_user_set").thing_classes == ["lsbg", "artifact"]
    (record,) = DatasetCatalog.get("astrodet_test_user_set")
    assert record["file_name"] == str(tmp_path / "a.png")
    assert record["annotations"][0]["category_id"] == 1  # contiguous id of "artifact"


def test_cpu_ddp_patch_drops_device_ids_only_on_cpu_and_only_inside() -> None:
    original = d2_defaults.create_ddp_model
    with compat.cpu_ddp("cpu"):
        assert d2_defaults.create_ddp_model.keywords == {"device_ids": None}
        assert d2_defaults.create_ddp_model.func is original
    assert d2_defaults.create_ddp_model is original
    with compat.cpu_ddp("cuda:0"):
        assert d2_defaults.create_ddp_model is original


def test_version_guard_accepts_the_tested_detectron2_and_warns_once_otherwise() -> None:
    import detectron2

    assert compat.is_tested(detectron2.__version__)
    with pytest.warns(RuntimeWarning, match=r"found 9\.1\.0; these patches may break: .*create_ddp_model"):
        assert compat.check_detectron2_version("9.1.0") is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert compat.check_detectron2_version("9.1.0") is False  # once per version


@pytest.mark.parametrize(
    ("old", "new"),
    [("ASTRODET.CLS.REGISTER", "ASTRODET.REGISTER"), ("ASTRODET.CLS.CENTER_CROP", "ASTRODET.CLS.CENTRE_CROP")],
)
def test_renamed_keys_name_their_new_spelling(old: str, new: str) -> None:
    with pytest.raises(KeyError, match=f"{old} was renamed to {new}"):
        _cfg(None, old, "[]" if old.endswith("REGISTER") else "10")
