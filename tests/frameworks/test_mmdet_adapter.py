"""The MMDetection adapter: registration, backbones' mmdet conventions, the shipped configs, RandomRot90, datasets."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import timm
import torch
import yaml

pytest.importorskip("mmdet")

from mmdet.registry import DATASETS, MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.utils import register_all_modules
from mmengine.config import Config
from torch.nn.modules.batchnorm import _BatchNorm

import astrodet.mmdet  # noqa: F401  (registers)
from astrodet.mmdet.datasets import resolve_default_datasets
from astrodet.mmdet.transforms import RandomRot90
from tests.conftest import REPO

register_all_modules(init_default_scope=True)  # mmdet's own modules, as a Runner with default_scope='mmdet' has

CONFIGS = sorted((REPO / "configs" / "mmdet").glob("frcnn_*.py")) + sorted(
    (REPO / "configs" / "mmdet" / "quick").glob("*.py")
)


def _config(path: Path) -> Config:
    return Config.fromfile(str(path))


def test_registers_every_module_on_import_in_a_fresh_process() -> None:
    code = (
        "import astrodet.mmdet\n"
        "from mmdet.registry import METRICS, MODELS, TRANSFORMS\n"
        "print(MODELS.get('ZoobotEncoder').__name__, MODELS.get('DeepShadowsTrunk').__name__,\n"
        "      METRICS.get('AstroDetectionMetric').__module__, TRANSFORMS.get('RandomRot90').__module__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [
        "MMZoobotEncoder",
        "MMDeepShadowsTrunk",
        "astrodet.mmdet.metrics",
        "astrodet.mmdet.transforms",
    ]


@pytest.mark.parametrize("config", ["frcnn_zoobot.py", "frcnn_deepshadows.py"])
def test_backbone_from_the_config_feeds_its_fpn(config: str) -> None:
    cfg = _config(REPO / "configs" / "mmdet" / config)
    backbone = MODELS.build(cfg.model.backbone)
    assert backbone.out_channels == list(cfg.model.neck.in_channels)
    outs = backbone(torch.zeros(1, 3, 64, 64))
    assert isinstance(outs, tuple)
    expected = [(1, c, 64 // s, 64 // s) for c, s in zip(backbone.out_channels, backbone.strides, strict=True)]
    assert [tuple(o.shape) for o in outs] == expected


def test_norm_eval_keeps_batchnorm_in_eval_mode_but_trainable() -> None:
    trunk = MODELS.build(dict(type="DeepShadowsTrunk", norm="bn", norm_eval=True))
    trunk.train()
    norms = [m for m in trunk.modules() if isinstance(m, _BatchNorm)]
    assert norms and not any(m.training for m in norms)
    assert all(p.requires_grad for m in norms for p in m.parameters())
    assert trunk.body.blocks[0][0].training  # only the norms are held in eval
    before = norms[0].running_mean.clone()
    trunk(torch.randn(2, 3, 32, 32))
    assert torch.equal(norms[0].running_mean, before)  # statistics are not updated


def test_frozen_stages() -> None:
    encoder = MODELS.build(dict(type="ZoobotEncoder", arch="resnet18", frozen_stages=1))
    timm_model = encoder.body.body
    assert not any(p.requires_grad for p in timm_model.conv1.parameters())  # stem
    assert not any(p.requires_grad for p in timm_model.layer1.parameters())  # stride-4 stage
    assert all(p.requires_grad for p in timm_model.layer2.parameters())
    trunk = MODELS.build(dict(type="DeepShadowsTrunk", frozen_stages=2))
    assert [all(not p.requires_grad for p in b.parameters()) for b in trunk.body.blocks] == [True, True, False]
    trunk.train()
    assert not trunk.body.blocks[0].training and trunk.body.blocks[2].training


def test_init_cfg_pretrained_loads_a_local_file_and_survives_init_weights(tmp_path: Path) -> None:
    torch.manual_seed(5)
    weights = timm.create_model("resnet18", num_classes=0).state_dict()
    checkpoint = tmp_path / "resnet18.pth"
    torch.save(weights, checkpoint)
    pretrained = dict(type="Pretrained", checkpoint=str(checkpoint))
    encoder = MODELS.build(dict(type="ZoobotEncoder", arch="resnet18", init_cfg=pretrained))
    assert torch.equal(encoder.body.body.conv1.weight, weights["conv1.weight"])
    assert torch.equal(encoder.body.body.layer4[1].conv2.weight, weights["layer4.1.conv2.weight"])

    # Inside a detector, mmengine's init_weights() (the Runner calls it) must not re-initialise the loaded encoder.
    cfg = _config(REPO / "configs" / "mmdet" / "frcnn_zoobot.py")
    cfg.model.backbone.update(arch="resnet18", init_cfg=pretrained)
    cfg.model.neck.in_channels = [64, 128, 256, 512]
    detector = MODELS.build(cfg.model)
    detector.init_weights()
    assert torch.equal(detector.backbone.body.body.conv1.weight, weights["conv1.weight"])


def test_deepshadows_pretrained_loads_trunk_weights_and_refuses_a_partial_file(tmp_path: Path) -> None:
    torch.manual_seed(6)
    source = MODELS.build(dict(type="DeepShadowsTrunk", norm="gn", dropout=0.0))
    state = {**source.body.state_dict(), "head.weight": torch.zeros(1, 4096)}  # a classifier's extra head is fine
    checkpoint = tmp_path / "classifier.pth"
    torch.save({"state_dict": state}, checkpoint)
    pretrained = dict(type="Pretrained", checkpoint=str(checkpoint))
    trunk = MODELS.build(dict(type="DeepShadowsTrunk", norm="gn", dropout=0.0, init_cfg=pretrained))
    x = torch.randn(1, 3, 32, 32)
    assert all(torch.equal(a, b) for a, b in zip(trunk.eval()(x), source.eval()(x), strict=True))
    partial = tmp_path / "partial.pth"
    torch.save({k: v for k, v in state.items() if not k.startswith("blocks.2.")}, partial)
    with pytest.raises(ValueError, match="no weights for"):
        MODELS.build(dict(type="DeepShadowsTrunk", norm="gn", init_cfg=dict(pretrained, checkpoint=str(partial))))
    with pytest.raises(ValueError, match="prefix"):
        MODELS.build(dict(type="ZoobotEncoder", arch="resnet18", init_cfg=dict(pretrained, prefix="backbone.")))


def _walk(node: Any, path: str = ""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list | tuple):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")
    else:
        yield path, node


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_are_consistent(path: Path) -> None:
    cfg = _config(path)
    plain = cfg.to_dict()
    urls = [(k, v) for k, v in _walk(plain) if isinstance(v, str) and "://" in v]
    assert not urls, f"config points at a URL: {urls}"
    assert cfg.custom_imports == dict(imports=["astrodet.mmdet"], allow_failed_imports=False)
    assert cfg.model.roi_head.bbox_head.num_classes == 2
    rpn = cfg.model.rpn_head.anchor_generator
    sizes = [s * scale for s in rpn.strides for scale in rpn.scales]
    assert sizes[0] == 8 and all(b == 2 * a for a, b in itertools.pairwise(sizes)) and sizes[-1] <= 128
    assert list(rpn.ratios) == [1.0]
    cap = cfg.model.test_cfg.rcnn.max_per_img
    assert cap == 100 and cfg.model.test_cfg.rcnn.nms.iou_threshold == 0.2
    assert cfg.model.test_cfg.rcnn.score_thr == 0.05
    for phase in ("train", "val", "test"):
        dataset = cfg[f"{phase}_dataloader"].dataset
        assert dataset.type == "CocoDataset" and dataset.metainfo == dict(classes=("clump", "odd_clump"))
        assert dataset.data_prefix == dict(img="") and dataset.ann_file.startswith("astrodet_default:")
    assert cfg.train_dataloader.dataset.filter_cfg == dict(filter_empty_gt=False)
    for phase in ("val", "test"):
        evaluator = cfg[f"{phase}_evaluator"]
        assert evaluator.type == "AstroDetectionMetric" and evaluator.max_detections == cap
        assert evaluator.ann_file == cfg[f"{phase}_dataloader"].dataset.ann_file
    preprocessor = cfg.model.data_preprocessor  # the same normalisation as the Detectron2 base config
    d2_base = yaml.safe_load((REPO / "configs" / "Base-AstroRCNN-FPN.yaml").read_text())["MODEL"]
    assert preprocessor.mean == d2_base["PIXEL_MEAN"] and preprocessor.std == d2_base["PIXEL_STD"]
    assert preprocessor.bgr_to_rgb
    assert cfg.train_cfg.type == "IterBasedTrainLoop"
    assert cfg.randomness.seed == 2024


@pytest.mark.parametrize("config", ["frcnn_zoobot.py", "frcnn_deepshadows.py", "frcnn_r50.py"])
def test_shipped_detectors_build_and_predict_at_most_the_cap(config: str) -> None:
    cfg = _config(REPO / "configs" / "mmdet" / config)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    sample = DetDataSample(metainfo=dict(img_shape=(200, 200), ori_shape=(200, 200), scale_factor=(1.0, 1.0), img_id=0))
    image = (torch.rand(3, 200, 200) * 255).to(torch.uint8)
    with torch.no_grad():
        (out,) = model.test_step(dict(inputs=[image], data_samples=[sample]))
    assert len(out.pred_instances) <= cfg.model.test_cfg.rcnn.max_per_img


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_rot90_moves_boxes_with_pixels(k: int, monkeypatch: pytest.MonkeyPatch) -> None:
    image = np.zeros((20, 30, 3), dtype=np.uint8)
    image[2:5, 10:16] = 255  # a bright box: x 10..16, y 2..5
    transform = RandomRot90()
    monkeypatch.setattr(transform, "_random_k", lambda: k)
    box = HorizontalBoxes(torch.tensor([[10.0, 2.0, 16.0, 5.0]]))
    results = transform(dict(img=image, img_shape=(20, 30), gt_bboxes=box, gt_seg_map=image[..., 0].copy()))
    ys, xs = np.nonzero(results["img"][..., 0])
    expected = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert results["gt_bboxes"].tensor[0].tolist() == expected
    assert results["img_shape"] == results["img"].shape[:2] == ((20, 30) if k % 2 == 0 else (30, 20))
    assert np.array_equal(results["gt_seg_map"], results["img"][..., 0])
    corner = results["homography_matrix"] @ np.array([10.0, 2.0, 1.0])  # maps a box corner onto a new corner
    assert {corner[0], corner[1]} <= set(map(float, expected))


def test_rot90_draws_every_quarter_turn() -> None:
    np.random.seed(0)  # noqa: NPY002  (the generator mmengine seeds per worker)
    transform = RandomRot90()
    draws = [transform(dict(img=np.zeros((4, 4, 3), np.uint8)))["rot90_k"] for _ in range(400)]
    counts = np.bincount(draws, minlength=4)
    assert counts.min() > 70  # about 100 each


def test_default_dataset_placeholders_resolve_for_datasets_and_evaluators(
    tiny_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASTRODET_CACHE", str(tiny_cache))
    cfg = _config(REPO / "configs" / "mmdet" / "quick" / "frcnn_zoobot_quick.py")
    splits = resolve_default_datasets(cfg)
    assert set(splits) == {"train", "val", "test"} and str(tiny_cache) in str(splits["train"])
    assert cfg.train_dataloader.dataset.ann_file == str(splits["train"])
    assert cfg.train_dataloader.dataset.data_root == str(splits["train"].parent)
    assert cfg.test_dataloader.dataset.ann_file == cfg.test_evaluator.ann_file == str(splits["val"])
    assert "data_root" not in cfg.test_evaluator
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert dataset.metainfo["classes"] == ("clump", "odd_clump")
    assert len(dataset) == 41  # every train galaxy, the 6 clump-free ones included
    sample = dataset.get_data_info(0)
    assert Path(sample["img_path"]).is_file()
    assert resolve_default_datasets(cfg) == {}  # nothing left to resolve


def test_placeholders_need_a_dataset_name() -> None:
    cfg = Config(dict(val_evaluator=dict(type="AstroDetectionMetric", ann_file="astrodet_default:val")))
    with pytest.raises(ValueError, match="astrodet_default"):
        resolve_default_datasets(cfg)
    cfg = Config(dict(astrodet_default="tiny", val_evaluator=dict(ann_file="astrodet_default:holdout")))
    with pytest.raises(ValueError, match="unknown split"):  # checked before anything is generated
        resolve_default_datasets(cfg)
