"""``BackbonePrecisionHook``: mmdet's twin of Detectron2's ASTRODET.SOLVER.PRECISION (backbone and neck under bf16
autocast within training iterations only)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import torch
from torch import nn

pytest.importorskip("mmdet")

from astrodet.errors import AstrodetInputError
from astrodet.inference import precision
from astrodet.mmdet.hooks import BackbonePrecisionHook


class _Recording(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.seen: list[torch.dtype] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        self.seen.append(out.dtype)
        return out


def _runner() -> SimpleNamespace:
    model = nn.Module()
    model.backbone, model.neck, model.roi_head = _Recording(), _Recording(), _Recording()
    return SimpleNamespace(model=model, logger=logging.getLogger("test"))


def _one_training_iteration(hook: BackbonePrecisionHook, runner: SimpleNamespace) -> torch.Tensor:
    hook.before_train_iter(runner, 0)
    x = torch.ones(1, 3, 4, 4)
    out = runner.model.roi_head(runner.model.neck(runner.model.backbone(x)))
    hook.after_train_iter(runner, 0)
    return out


@pytest.mark.skipif(not precision.cpu_supports_bf16(), reason="this CPU has no bf16 kernels")
def test_bf16_covers_backbone_and_neck_in_training_iterations_only() -> None:
    runner, hook = _runner(), BackbonePrecisionHook("bf16")
    hook.before_run(runner)
    out = _one_training_iteration(hook, runner)
    model = runner.model
    assert model.backbone.seen == [torch.bfloat16] and model.neck.seen == [torch.bfloat16]
    assert model.roi_head.seen == [torch.float32] and out.dtype == torch.float32  # heads see fp32
    model.backbone(torch.ones(1, 3, 4, 4))  # validation / test outside an iteration: fp32 again
    assert model.backbone.seen[-1] == torch.float32


def test_auto_follows_the_cpu_and_bad_precisions_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: False)
    runner, hook = _runner(), BackbonePrecisionHook("auto")
    hook.before_run(runner)
    assert hook.precision == "fp32"
    _one_training_iteration(hook, runner)
    assert runner.model.backbone.seen == [torch.float32]
    for bad in ("fp16", "fp8"):
        with pytest.raises(AstrodetInputError, match="expected fp32, bf16 or auto"):
            BackbonePrecisionHook(bad)
