"""Cross-framework parity: the same weights give the same features, the same predictions give the same numbers.

(a) A backbone is written once (astrodet.models) and wrapped twice; loaded with one state dict, Detectron2's and
    MMDetection's wrappers must compute the same features.
(b) One fixed set of predictions, scored by Detectron2's ``AstroDetectionEvaluator``, MMDetection's
    ``AstroDetectionMetric`` and the framework-free core (``run_coco_bbox`` + ``evaluate_coco_detections``), must
    give the same AP, AP50, AP75, APs/m/l, AR, completeness and purity. Scales: the core and both report.json files
    are 0-1; Detectron2's returned ``bbox`` dict is in percent (its ``_derive_coco_results`` multiplies by 100) and
    mmdet's returned ``coco/bbox_*`` values are rounded to 3 decimals by CocoMetric; each is compared on its own scale.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import timm
import torch

pytest.importorskip("detectron2")
pytest.importorskip("mmdet")

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY
from detectron2.structures import Boxes, Instances
from mmdet.registry import MODELS
from mmengine.config import Config
from PIL import Image

import astrodet.mmdet  # noqa: F401  (registers)
from astrodet.detectron2 import AstroDetectionEvaluator, add_astrodet_config
from astrodet.detectron2.datasets import register_coco_file
from astrodet.evaluation import MatchRule, evaluate_coco_detections, run_coco_bbox
from astrodet.mmdet.metrics import AstroDetectionMetric
from tests.conftest import REPO

CLASSES = ("clump", "odd_clump")
STATS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR@1", "AR@10", "AR@100", "ARs", "ARm", "ARl")
D2_KEYS = {"AP": "AP", "AP50": "AP50", "AP75": "AP75", "APs": "APs", "APm": "APm", "APl": "APl"}
MMDET_KEYS = {"AP": "mAP", "AP50": "mAP_50", "AP75": "mAP_75", "APs": "mAP_s", "APm": "mAP_m", "APl": "mAP_l"}
ASTRO = ("completeness", "purity", "f1")
SIZE = 200


def _d2_cfg(config: str):
    cfg = get_cfg()
    add_astrodet_config(cfg)
    cfg.merge_from_file(str(REPO / "configs" / config))
    cfg.MODEL.DEVICE = "cpu"
    return cfg


def _mmdet_backbone_cfg(config: str) -> dict[str, Any]:
    return Config.fromfile(str(REPO / "configs" / "mmdet" / config)).model.backbone.to_dict()


def _random_state(module: torch.nn.Module, scale: float) -> dict[str, torch.Tensor]:
    """A state dict for ``module`` that no initialiser would produce (integer buffers kept)."""
    return {k: torch.randn_like(v) * scale if v.is_floating_point() else v for k, v in module.state_dict().items()}


def _assert_same_features(d2_backbone, mm_backbone, in_chans: int = 3) -> None:
    d2_backbone.eval()
    mm_backbone.eval()
    x = torch.randn(2, in_chans, 96, 96, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        d2_out = d2_backbone(x)
        mm_out = mm_backbone(x)
    names = list(d2_backbone.output_shape())
    assert len(names) == len(mm_out)
    for name, stride, mm_feature in zip(names, mm_backbone.strides, mm_out, strict=True):
        assert d2_backbone.output_shape()[name].stride == stride
        assert d2_out[name].shape == mm_feature.shape
        assert (d2_out[name] - mm_feature).abs().max().item() < 1e-5


def test_zoobot_same_state_dict_same_features() -> None:
    torch.manual_seed(0)
    d2_backbone = BACKBONE_REGISTRY.get("build_timm_backbone")(_d2_cfg("frcnn_zoobot.yaml"), ShapeSpec(channels=3))
    torch.manual_seed(1)  # a different random init: only the loaded state makes them agree
    mm_backbone = MODELS.build(_mmdet_backbone_cfg("frcnn_zoobot.py"))
    state = _random_state(d2_backbone.body, 0.05)
    d2_backbone.body.load_state_dict(state)
    mm_backbone.body.load_state_dict(state)
    _assert_same_features(d2_backbone, mm_backbone)


def test_zoobot_same_checkpoint_file_same_features(tmp_path: Path) -> None:
    """The route users take: Detectron2 MODEL.ZOOBOT.CHECKPOINT and mmdet init_cfg Pretrained, one local file
    laid out as Zoobot's Lightning checkpoints are (a timm encoder under ``encoder.``)."""
    torch.manual_seed(2)
    encoder = timm.create_model("convnext_nano", num_classes=0)
    checkpoint = tmp_path / "encoder.ckpt"
    torch.save({"state_dict": {f"encoder.{k}": v for k, v in encoder.state_dict().items()}}, checkpoint)
    cfg = _d2_cfg("frcnn_zoobot_convnext.yaml")
    cfg.MODEL.ZOOBOT.CHECKPOINT = str(checkpoint)
    d2_backbone = BACKBONE_REGISTRY.get("build_timm_backbone")(cfg, ShapeSpec(channels=3))
    pretrained = dict(type="Pretrained", checkpoint=str(checkpoint))
    mm_cfg = dict(_mmdet_backbone_cfg("frcnn_zoobot_convnext.py"), init_cfg=pretrained)
    mm_backbone = MODELS.build(mm_cfg)
    for backbone in (d2_backbone, mm_backbone):  # the file's weights, not a fresh init
        assert torch.equal(backbone.body.body.stem_0.weight, encoder.stem[0].weight)
    _assert_same_features(d2_backbone, mm_backbone)


def test_deepshadows_same_state_dict_same_features() -> None:
    torch.manual_seed(0)
    cfg = _d2_cfg("frcnn_deepshadows.yaml")
    d2_backbone = BACKBONE_REGISTRY.get("build_deepshadows_backbone")(cfg, ShapeSpec(channels=3))
    torch.manual_seed(1)
    mm_backbone = MODELS.build(_mmdet_backbone_cfg("frcnn_deepshadows.py"))
    state = _random_state(d2_backbone.body, 0.1)
    d2_backbone.body.load_state_dict(state)
    mm_backbone.body.load_state_dict(state)
    _assert_same_features(d2_backbone, mm_backbone)


# ---------------------------------------------------------------------------------------------------------------
# (a') the whole detector: one set of weights in both frameworks' Faster R-CNN gives the same FPN maps, RPN outputs,
# pooled RoI features and box-head outputs. This is what caught mmcv's RoIAlign reading ConvNeXt's channels-last
# maps as if they were NCHW (open-mmlab/mmcv#2203): backbone features agreed, RoI features did not.

_D2_TO_MMDET_HEADS = {
    "proposal_generator.rpn_head.conv.": "rpn_head.rpn_conv.",
    "proposal_generator.rpn_head.objectness_logits.": "rpn_head.rpn_cls.",
    "proposal_generator.rpn_head.anchor_deltas.": "rpn_head.rpn_reg.",
    "roi_heads.box_head.fc1.": "roi_head.bbox_head.shared_fcs.0.",
    "roi_heads.box_head.fc2.": "roi_head.bbox_head.shared_fcs.1.",
    "roi_heads.box_predictor.cls_score.": "roi_head.bbox_head.fc_cls.",
    "roi_heads.box_predictor.bbox_pred.": "roi_head.bbox_head.fc_reg.",
}


def _d2_detector_state_for_mmdet(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a Detectron2 astrodet Faster R-CNN state dict to mmdet's names (FPN levels in ascending order)."""
    levels = sorted({int(k[len("backbone.fpn_lateral")]) for k in state if k.startswith("backbone.fpn_lateral")})
    out = {}
    for key, value in state.items():
        if key.startswith("pixel_"):
            continue
        name = key.replace("backbone.bottom_up.", "backbone.")
        if key.startswith(("backbone.fpn_lateral", "backbone.fpn_output")):
            kind, rest = key[len("backbone.fpn_") :].split(".", 1)
            index = levels.index(int(kind[-1]))
            module = "lateral_convs" if kind.startswith("lateral") else "fpn_convs"
            name = f"neck.{module}.{index}." + (
                rest.replace("norm.", "gn.") if rest.startswith("norm.") else f"conv.{rest}"
            )
        for d2_prefix, mm_prefix in _D2_TO_MMDET_HEADS.items():
            name = name.replace(d2_prefix, mm_prefix)
        out[name] = value
    return out


@pytest.mark.parametrize(
    ("d2_config", "mm_config"),
    [
        ("frcnn_zoobot.yaml", "frcnn_zoobot.py"),
        # ConvNeXt returns channels-last maps, which mmcv's RoIAlign misreads silently (open-mmlab/mmcv#2203)
        ("frcnn_zoobot_convnext.yaml", "frcnn_zoobot_convnext.py"),
        ("frcnn_deepshadows.yaml", "frcnn_deepshadows.py"),
    ],
)
def test_same_weights_same_detector_outputs(d2_config: str, mm_config: str) -> None:
    from detectron2.modeling import build_model
    from mmdet.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    torch.manual_seed(0)
    d2_model = build_model(_d2_cfg(d2_config)).eval()
    torch.manual_seed(1)
    mm_model = MODELS.build(Config.fromfile(str(REPO / "configs" / "mmdet" / mm_config)).model)
    mm_model.init_weights()
    missing, unexpected = mm_model.load_state_dict(_d2_detector_state_for_mmdet(d2_model.state_dict()), strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    mm_model.eval()

    def close(a: torch.Tensor, b: torch.Tensor) -> bool:
        return a.shape == b.shape and (a - b).abs().max().item() <= 1e-4 * (1 + b.abs().max().item())

    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(5))  # normalised, padded to 32
    # Boxes from 6 to 150 px: pooled from p2-p3 (Zoobot, levels from stride 4) or p1-p3 (DeepShadows, from stride 2).
    rois = torch.tensor(
        [[0, 20.0, 30.0, 26.0, 36.0], [0, 50.0, 60.0, 66.0, 76.0], [1, 10.0, 100.0, 40.0, 130.0],
         [1, 60.0, 40.0, 130.0, 110.0], [0, 30.0, 20.0, 180.0, 170.0], [1, 101.5, 7.25, 118.0, 23.5]]
    )  # fmt: skip
    with torch.no_grad():
        d2_maps = d2_model.backbone(x)
        mm_maps = mm_model.neck(mm_model.backbone(x))
        assert len(d2_maps) == len(mm_maps)
        for d2_map, mm_map in zip(d2_maps.values(), mm_maps, strict=True):
            assert close(mm_map, d2_map)
        rpn = d2_model.proposal_generator
        d2_objectness, d2_deltas = rpn.rpn_head([d2_maps[f] for f in rpn.in_features])
        mm_objectness, mm_deltas = mm_model.rpn_head(mm_maps)
        for a, b in zip(mm_objectness + mm_deltas, d2_objectness + d2_deltas, strict=True):
            assert close(a, b)
        heads = d2_model.roi_heads
        d2_pooled = heads.box_pooler(
            [d2_maps[f] for f in heads.box_in_features], [Boxes(rois[rois[:, 0] == i, 1:]) for i in (0, 1)]
        )
        order = torch.cat([torch.nonzero(rois[:, 0] == i).flatten() for i in (0, 1)])  # Detectron2 pools image by image
        extractor = mm_model.roi_head.bbox_roi_extractor
        mm_pooled = extractor(mm_maps[: extractor.num_inputs], rois)[order]
        assert d2_pooled.abs().max() > 0
        assert close(mm_pooled, d2_pooled), "the same RoIs pool different features"
        d2_scores, d2_boxes = heads.box_predictor(heads.box_head(d2_pooled))
        mm_scores, mm_boxes = mm_model.roi_head.bbox_head(mm_pooled)
        assert close(mm_scores, d2_scores) and close(mm_boxes, d2_boxes)


# ---------------------------------------------------------------------------------------------------------------
# (b) metrics


def _grid(value: float) -> float:
    """Snap to 1/16 px: exact in float32, so XYXY -> XYWH gives identical floats in every framework."""
    return round(value * 16) / 16


def _synthetic_set(folder: Path) -> tuple[Path, dict[str, Any], list[dict[str, Any]]]:
    """A COCO file with boxes in every astrodet size range (small < 13 px <= medium < 21 px <= large), one clump-free
    image, and predictions with hits, misses, class confusions, poor localisation and false positives."""
    rng = np.random.default_rng(2024)
    images, annotations, predictions = [], [], []
    (folder / "images").mkdir(parents=True)
    sides = [8.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 23.0, 28.0, 36.0]
    for image_id in range(1, 9):
        file_name = f"images/{image_id:03d}.png"
        Image.fromarray(rng.integers(0, 60, (SIZE, SIZE, 3), dtype=np.uint8)).save(folder / file_name)
        images.append({"id": image_id, "file_name": file_name, "width": SIZE, "height": SIZE})
        n_true = 0 if image_id == 8 else int(rng.integers(2, 7))
        for _ in range(n_true):
            side = float(rng.choice(sides))
            x, y = (_grid(float(v)) for v in rng.uniform(5, SIZE - side - 5, 2))
            category = int(rng.integers(1, 3))
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category,
                    "bbox": [x, y, side, side],
                    "area": side * side,
                    "iscrowd": 0,
                }
            )
            roll = rng.random()
            if roll < 0.15:
                continue  # missed
            shift = 0.05 if roll < 0.7 else 0.3  # well or poorly localised (IoU above / around 0.5)
            dx, dy, dw = (_grid(float(v)) for v in rng.normal(0, shift * side, 3))
            predicted = category if rng.random() > 0.1 else 3 - category
            predictions.append(
                {"image_id": image_id, "category_id": predicted, "bbox": [x + dx, y + dy, side + dw, side + dw]}
            )
        for _ in range(int(rng.integers(0, 3))):  # false positives
            side = float(rng.choice(sides))
            x, y = (_grid(float(v)) for v in rng.uniform(0, SIZE - side, 2))
            category = int(rng.integers(1, 3))
            predictions.append({"image_id": image_id, "category_id": category, "bbox": [x, y, side, side]})
    # Distinct float32 scores spanning the operating threshold 0.3, so greedy matching order is unambiguous.
    scores = rng.permutation(np.linspace(0.06, 0.99, len(predictions)).astype(np.float32))
    for prediction, score in zip(predictions, scores, strict=True):
        prediction["score"] = float(score)
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(CLASSES)]
    gt = {"images": images, "annotations": annotations, "categories": categories}
    json_file = folder / "set.json"
    json_file.write_text(json.dumps(gt))
    return json_file, gt, predictions


def _per_image(predictions: list[dict[str, Any]], image_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """XYXY float32 boxes, float32 scores and 0-based labels of one image, as both frameworks' models emit them."""
    mine = [p for p in predictions if p["image_id"] == image_id]
    boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (p["bbox"] for p in mine)], dtype=torch.float32)
    scores = torch.tensor([p["score"] for p in mine], dtype=torch.float32)
    labels = torch.tensor([p["category_id"] - 1 for p in mine], dtype=torch.int64)
    return boxes.reshape(-1, 4), scores, labels


def _run_detectron2(json_file: Path, gt: dict[str, Any], predictions: list[dict[str, Any]], out: Path | None):
    name = f"astrodet_parity_{json_file.parent.name}"
    register_coco_file(name, json_file, thing_classes=list(CLASSES))
    DatasetCatalog.get(name)  # sets thing_dataset_id_to_contiguous_id, which maps predicted classes back to ids
    evaluator = AstroDetectionEvaluator(
        name, _d2_cfg("frcnn_zoobot.yaml"), output_dir=None if out is None else str(out), distributed=False
    )
    evaluator.reset()
    for image in gt["images"]:
        boxes, scores, labels = _per_image(predictions, image["id"])
        instances = Instances((SIZE, SIZE), pred_boxes=Boxes(boxes), scores=scores, pred_classes=labels)
        evaluator.process([{"image_id": image["id"]}], [{"instances": instances}])
    results = evaluator.evaluate()
    return results, evaluator.report


def _run_mmdet(json_file: Path, gt: dict[str, Any], predictions: list[dict[str, Any]], out: Path | None):
    metric = AstroDetectionMetric(ann_file=str(json_file), output_dir=None if out is None else str(out))
    metric.dataset_meta = {"classes": CLASSES}
    for image in gt["images"]:
        boxes, scores, labels = _per_image(predictions, image["id"])
        sample = {
            "img_id": image["id"],
            "ori_shape": (SIZE, SIZE),
            "pred_instances": {"bboxes": boxes, "scores": scores, "labels": labels},
        }
        metric.process({}, [sample])
    results = metric.evaluate(len(gt["images"]))
    return results, metric.report


def _close(a: float | None, b: float | None, tol: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol


@pytest.fixture
def synthetic(tmp_path: Path) -> tuple[Path, dict[str, Any], list[dict[str, Any]]]:
    return _synthetic_set(tmp_path / "synthetic")


def test_same_predictions_same_numbers_in_both_frameworks_and_the_core(synthetic, tmp_path: Path) -> None:
    json_file, gt, predictions = synthetic
    core_coco = run_coco_bbox(gt, predictions, max_detections=100)
    core = evaluate_coco_detections(
        gt, predictions, rule=MatchRule("iou", iou_threshold=0.5), score_threshold=0.3, max_detections=100
    )
    assert all(core_coco[k] is not None for k in STATS)  # every size range is populated: APs/m/l are all tested
    assert 0 < core["completeness"] < 1 and 0 < core["purity"] < 1

    d2_results, d2_report = _run_detectron2(json_file, gt, predictions, tmp_path / "d2")
    mm_results, mm_report = _run_mmdet(json_file, gt, predictions, tmp_path / "mmdet")

    for key in STATS:  # 0-1 scale, unrounded: both report.json files and the core
        assert _close(d2_report["coco"][key], core_coco[key]), (key, d2_report["coco"][key], core_coco[key])
        assert _close(mm_report["coco"][key], core_coco[key]), (key, mm_report["coco"][key], core_coco[key])
    assert d2_report["coco"]["per_class"] == core_coco["per_class"] == mm_report["coco"]["per_class"]
    for key in ASTRO:
        assert _close(d2_report[key], core[key]) and _close(mm_report[key], core[key]), key
        assert _close(d2_results["astro"][key], core[key]) and _close(mm_results[f"astro/{key}"], core[key]), key
    for key in ("n_true", "n_pred", "n_matched", "per_class", "confusion", "curves", "bins", "matching"):
        assert d2_report[key] == core[key] == mm_report[key], key

    # Each framework's own returned numbers, on its own scale.
    for core_key, d2_key in D2_KEYS.items():  # Detectron2: percent
        assert _close(d2_results["bbox"][d2_key] / 100, core_coco[core_key]), core_key
    for core_key, mm_key in MMDET_KEYS.items():  # mmdet CocoMetric: 0-1, rounded to 3 decimals
        assert mm_results[f"coco/bbox_{mm_key}"] == round(core_coco[core_key], 3), core_key

    # The files on disk agree too (meta names the framework), COCO parameters included.
    d2_json = json.loads((tmp_path / "d2" / "report.json").read_text())
    mm_json = json.loads((tmp_path / "mmdet" / "report.json").read_text())
    assert d2_json["meta"]["framework"] == "detectron2" and mm_json["meta"]["framework"] == "mmdet"
    assert d2_json["coco"]["params"]["max_dets"] == [1, 10, 100]
    for report in (d2_json, mm_json):
        report.pop("meta")
        report.pop("plots")
    assert d2_json == mm_json
    for png in ("pr_curve.png", "threshold_curves.png", "bins.png", "examples.png"):
        assert (tmp_path / "mmdet" / png).stat().st_size > 5_000


def test_no_detections_scores_zero_in_both_frameworks_and_the_core(synthetic, tmp_path: Path) -> None:
    """Both frameworks skip pycocotools when nothing was detected; astrodet reports AP 0 there, as the core does."""
    json_file, gt, _ = synthetic
    core_coco = run_coco_bbox(gt, [], max_detections=100)
    d2_results, d2_report = _run_detectron2(json_file, gt, [], tmp_path / "d2")
    mm_results, mm_report = _run_mmdet(json_file, gt, [], None)  # no output_dir: the report is built, not written
    for key in STATS:
        assert _close(d2_report["coco"][key], core_coco[key]) and _close(mm_report["coco"][key], core_coco[key]), key
    assert core_coco["AP"] == 0.0 and mm_results["coco/bbox_mAP"] == 0.0
    assert d2_report["completeness"] == mm_report["completeness"] == 0.0
    assert d2_report["purity"] is None and mm_report["purity"] is None  # undefined: no predictions
    assert math.isnan(mm_results["astro/purity"]) and math.isnan(d2_results["astro"]["purity"])
