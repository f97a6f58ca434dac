"""The MMDetection adapter: registration, backbones' mmdet conventions, the shipped configs, RandomRot90, datasets,
the report hook."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import timm
import torch
import yaml

pytest.importorskip("mmdet")

from mmdet.registry import DATASETS, METRICS, MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.utils import register_all_modules
from mmengine.config import Config
from torch.nn.modules.batchnorm import _BatchNorm

import astrodet.mmdet  # noqa: F401  (registers)
from astrodet.data import catalogue
from astrodet.data.default import SIMULATED
from astrodet.errors import AstrodetInputError
from astrodet.mmdet.datasets import AstroCocoDataset
from astrodet.mmdet.hooks import AstroReportHook
from astrodet.mmdet.metrics import AstroDetectionMetric
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
        "print(MODELS.get('TimmEncoder').__name__, MODELS.get('DeepShadowsTrunk').__name__,\n"
        "      METRICS.get('AstroDetectionMetric').__module__, TRANSFORMS.get('RandomRot90').__module__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [
        "TimmEncoder",
        "DeepShadowsTrunk",
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


def test_zoobot_encoder_is_the_old_registry_name_of_timm_encoder() -> None:
    assert MODELS.get("ZoobotEncoder") is MODELS.get("TimmEncoder")


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
    encoder = MODELS.build(dict(type="TimmEncoder", arch="resnet18", frozen_stages=1))
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
    encoder = MODELS.build(dict(type="ZoobotEncoder", arch="resnet18", init_cfg=pretrained))  # the old name
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
        assert dataset.type == "AstroCocoDataset" and dataset.metainfo == dict(classes=("clump", "odd_clump"))
        # a simulated set's catalogue name, no path (the *_fits configs: the 5-band FITS form of the same sets; the
        # *_faint ones: the real-sky population)
        assert dataset.dataset in SIMULATED and "ann_file" not in dataset
    assert cfg.train_dataloader.dataset.filter_cfg == dict(filter_empty_gt=False)
    for phase in ("val", "test"):
        evaluator = cfg[f"{phase}_evaluator"]
        assert evaluator.type == "AstroDetectionMetric" and evaluator.max_detections == cap
        dataset = cfg[f"{phase}_dataloader"].dataset
        assert (evaluator.dataset, evaluator.split) == (dataset.dataset, dataset.split)
    assert dict(type="AstroReportHook") in cfg.custom_hooks  # the test report goes into the work dir under any tool
    preprocessor = cfg.model.data_preprocessor  # the same normalisation as the Detectron2 base config
    if cfg.get("image_recipe", {}).get("kind") == "float":  # FITS bands: the recipe normalises, as PIXEL_MEAN 0/STD 1
        d2_fits = yaml.safe_load((REPO / "configs" / "frcnn_zoobot_fits.yaml").read_text())["MODEL"]
        assert set(d2_fits["PIXEL_MEAN"]) == {0.0} and set(d2_fits["PIXEL_STD"]) == {1.0}
        assert preprocessor.mean is None and preprocessor.std is None and not preprocessor.bgr_to_rgb
        assert len(d2_fits["PIXEL_MEAN"]) == cfg.model.backbone.in_channels == len(cfg.image_recipe.bands)
    else:
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


def test_catalogue_datasets_resolve_for_datasets_and_evaluators(
    tiny_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASTRODET_CACHE", str(tiny_cache))
    cfg = _config(REPO / "configs" / "mmdet" / "quick" / "frcnn_zoobot_quick.py")
    splits = catalogue.ensure("tiny", progress=False)
    assert set(splits) == {"train", "val", "test"} and str(tiny_cache) in str(splits["train"])
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert dataset.ann_file == str(splits["train"].absolute())
    assert dataset.data_root == str(splits["train"].absolute().parent)
    test_dataset = DATASETS.build(cfg.test_dataloader.dataset)
    evaluator = METRICS.build(cfg.test_evaluator)
    assert test_dataset.ann_file == evaluator.ann_file == str(splits["val"].absolute())
    assert dataset.metainfo["classes"] == ("clump", "odd_clump")
    assert len(dataset) == 41  # every train galaxy, the 6 clump-free ones included
    sample = dataset.get_data_info(0)
    assert Path(sample["img_path"]).is_file()
    by_file = AstroCocoDataset(ann_file=str(splits["train"]), pipeline=[])  # a plain file: classes from the file
    assert by_file.metainfo["classes"] == ("clump", "odd_clump") and len(by_file) == 41
    assert by_file.get_data_info(0)["img_path"] == sample["img_path"]


def test_catalogue_names_are_checked_before_anything_is_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASTRODET_CACHE", str(tmp_path))
    with pytest.raises(ValueError, match="dataset="):
        AstroDetectionMetric(split="val")
    with pytest.raises(ValueError, match="unknown split"):
        AstroCocoDataset(dataset="tiny", split="holdout")
    with pytest.raises(ValueError, match="give split="):
        AstroDetectionMetric(dataset="tiny")
    with pytest.raises(ValueError, match="classification set"):
        AstroCocoDataset(dataset="perseus", split="train")
    assert not list(tmp_path.iterdir())  # nothing was generated


def test_a_mismatched_metainfo_or_a_classification_file_is_refused(tiny_cache: Path, tmp_path: Path) -> None:
    json_file = catalogue.split_paths("tiny", tiny_cache / "datasets")["val"]
    with pytest.raises(ValueError, match="differ from the config's metainfo"):
        AstroCocoDataset(ann_file=str(json_file), metainfo=dict(classes=("galaxy",)))
    data = json.loads(json_file.read_text())
    data["info"]["task"] = "classification"
    (tmp_path / "cls.json").write_text(json.dumps(data))
    with pytest.raises(AstrodetInputError, match="AstroClassificationDataset"):
        AstroCocoDataset(ann_file=str(tmp_path / "cls.json"))


def test_report_hook_points_test_metrics_at_the_work_dir(tiny_cache: Path, tmp_path: Path) -> None:
    json_file = str(catalogue.split_paths("tiny", tiny_cache / "datasets")["val"])
    cfg = _config(REPO / "configs" / "mmdet" / "quick" / "frcnn_zoobot_quick.py")
    mine = AstroDetectionMetric(ann_file=json_file)
    other = AstroDetectionMetric(ann_file=json_file, meta={"config": "x"})
    other.output_dir = str(tmp_path / "elsewhere")
    runner = SimpleNamespace(cfg=cfg, work_dir=str(tmp_path), test_evaluator=SimpleNamespace(metrics=[mine]))
    AstroReportHook().before_test(runner)
    assert mine.output_dir == str(tmp_path)
    assert mine.meta == {
        "framework": "mmdet",
        "dataset": json_file,
        "config": cfg.filename,
        "backbone": "TimmEncoder",
        "max_iters": 10,
        "batch_size": 2,
    }
    runner.test_evaluator.metrics = [other]  # an output_dir and meta keys of the config's own are kept
    AstroReportHook().before_test(runner)
    assert other.output_dir == str(tmp_path / "elsewhere") and other.meta["config"] == "x"
