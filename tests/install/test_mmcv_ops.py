"""mmcv was compiled with its CPU ops, and they agree with torchvision's."""

from __future__ import annotations

import pytest
import torch
import torchvision

mmcv_ops = pytest.importorskip("mmcv.ops")


def _random_boxes(n: int, generator: torch.Generator) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=generator) * 100
    wh = torch.rand(n, 2, generator=generator) * 30 + 1
    return torch.cat([xy, xy + wh], dim=1)


def test_nms_matches_torchvision() -> None:
    g = torch.Generator().manual_seed(0)
    boxes = _random_boxes(300, g)
    scores = torch.rand(300, generator=g)
    _, keep_mmcv = mmcv_ops.nms(boxes, scores, iou_threshold=0.5)
    keep_tv = torchvision.ops.nms(boxes, scores, iou_threshold=0.5)
    assert 0 < len(keep_tv) < 300  # some boxes overlap enough to be suppressed
    assert torch.equal(keep_mmcv.sort().values, keep_tv.sort().values)


def test_roi_align_matches_torchvision() -> None:
    g = torch.Generator().manual_seed(1)
    features = torch.rand(2, 8, 32, 32, generator=g)
    boxes = _random_boxes(20, g) * 0.25
    rois = torch.cat([torch.randint(0, 2, (20, 1), generator=g).float(), boxes], dim=1)
    out_mmcv = mmcv_ops.roi_align(features, rois, (7, 7), 0.5, 2, "avg", True)
    out_tv = torchvision.ops.roi_align(features, rois, (7, 7), 0.5, 2, aligned=True)
    assert out_mmcv.shape == (20, 8, 7, 7)
    assert torch.allclose(out_mmcv, out_tv, atol=1e-5)
