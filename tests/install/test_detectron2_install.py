"""The installed Detectron2 works on CPU: its model zoo Faster R-CNN builds and runs; the _C stand-in fails loudly."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO

detectron2 = pytest.importorskip("detectron2")

from detectron2 import model_zoo  # noqa: E402
from detectron2.config import get_cfg  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402
from detectron2.structures import Boxes, Instances  # noqa: E402
from detectron2.utils.events import EventStorage  # noqa: E402


@pytest.fixture(scope="module")
def r50_fpn_model() -> torch.nn.Module:
    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 2
    cfg.INPUT.MIN_SIZE_TEST = 128
    cfg.INPUT.MAX_SIZE_TEST = 128
    torch.manual_seed(0)
    return build_model(cfg)


def test_model_zoo_faster_rcnn_inference_on_cpu(r50_fpn_model: torch.nn.Module) -> None:
    r50_fpn_model.eval()
    image = torch.rand(3, 128, 128) * 255
    with torch.no_grad():
        (out,) = r50_fpn_model([{"image": image, "height": 128, "width": 128}])
    instances = out["instances"]
    assert instances.image_size == (128, 128)
    assert instances.pred_boxes.tensor.shape[1] == 4
    assert set(instances.get_fields()) >= {"pred_boxes", "scores", "pred_classes"}


def test_model_zoo_faster_rcnn_training_losses_on_cpu(r50_fpn_model: torch.nn.Module) -> None:
    r50_fpn_model.train()
    target = Instances((128, 128))
    target.gt_boxes = Boxes(torch.tensor([[30.0, 30.0, 60.0, 62.0]]))
    target.gt_classes = torch.tensor([1])
    with EventStorage():  # the training forward logs proposal statistics there
        losses = r50_fpn_model([{"image": torch.rand(3, 128, 128) * 255, "instances": target}])
    assert {"loss_cls", "loss_box_reg", "loss_rpn_cls", "loss_rpn_loc"} <= set(losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in r50_fpn_model.roi_heads.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def _load_standin():
    spec = importlib.util.spec_from_file_location("d2_c_standin", Path(REPO, "scripts", "detectron2_C_standin.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_c_standin_reports_itself_and_raises_for_compiled_ops() -> None:
    standin = _load_standin()
    assert standin.has_cuda() is False
    assert "stand-in" in standin.get_compiler_version()
    with pytest.raises(NotImplementedError, match=r"detectron2\._C\.deform_conv_forward is a compiled-only op"):
        standin.deform_conv_forward(torch.zeros(1))
    with pytest.raises(AttributeError):
        standin.__wrapped__  # noqa: B018  (dunder lookups must not be faked)


def test_installed_detectron2_raises_clear_error_for_compiled_only_op() -> None:
    from detectron2 import _C

    if not getattr(_C, "ASTRODET_STANDIN", False):
        pytest.skip("detectron2 was built from source with its compiled ops (upstream route)")
    from detectron2.evaluation.fast_eval_api import COCOeval_opt
    from pycocotools.coco import COCO

    gt = COCO()
    gt.dataset = {
        "images": [{"id": 1, "width": 10, "height": 10}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], "area": 16, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "clump"}],
    }
    gt.createIndex()
    dt = gt.loadRes([{"image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], "score": 0.9}])
    # detectron2's fast COCO evaluation is one of the compiled-only paths: it must fail with the clear message.
    with pytest.raises(NotImplementedError, match=r"detectron2\._C\.\w+ is a compiled-only op"):
        COCOeval_opt(gt, dt, "bbox").evaluate()
