"""ASTRODET.SOLVER.PRECISION: the backbone's forward in training steps runs under autocast, the rest in fp32."""

from __future__ import annotations

import pytest
import torch
from detectron2.config import get_cfg
from torch import nn

from astrodet.detectron2 import add_astrodet_config
from astrodet.detectron2.trainer import train_in_precision
from astrodet.errors import AstrodetInputError
from astrodet.inference.precision import cpu_supports_bf16


class _Backbone(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.seen: list[torch.dtype] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        self.seen.append(out.dtype)
        return out


class _Inner:
    """The part of Detectron2's SimpleTrainer that train_in_precision touches: ``model`` and ``run_step``."""

    def __init__(self) -> None:
        self.model = nn.Module()
        self.model.backbone = _Backbone()
        self.outputs: list[torch.Tensor] = []

    def run_step(self) -> None:
        self.outputs.append(self.model.backbone(torch.ones(1, 3, 8, 8)))


def _cfg(precision: str):
    cfg = get_cfg()
    add_astrodet_config(cfg)
    cfg.MODEL.DEVICE = "cpu"
    cfg.ASTRODET.SOLVER.PRECISION = precision
    return cfg


def test_fp32_is_the_default_and_changes_nothing() -> None:
    assert _cfg("fp32").ASTRODET.SOLVER.PRECISION == "fp32"
    inner = _Inner()
    step = inner.run_step
    train_in_precision(inner, _cfg("fp32"))
    assert inner.run_step == step
    inner.run_step()
    assert inner.model.backbone.seen == [torch.float32]


@pytest.mark.skipif(not cpu_supports_bf16(), reason="this CPU has no bf16 kernels")
def test_bf16_runs_the_backbone_in_bf16_and_hands_fp32_on() -> None:
    inner = _Inner()
    train_in_precision(inner, _cfg("bf16"))
    inner.run_step()
    assert inner.model.backbone.seen == [torch.bfloat16]  # computed in bf16 inside the step
    assert inner.outputs[0].dtype == torch.float32  # handed on to the heads as fp32
    inner.model.backbone(torch.ones(1, 3, 8, 8))  # outside a training step (evaluation): fp32 again
    assert inner.model.backbone.seen[-1] == torch.float32


def test_auto_is_bf16_where_the_cpu_has_bf16_kernels_and_fp32_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    from astrodet.inference import precision

    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: False)
    inner = _Inner()
    train_in_precision(inner, _cfg("auto"))
    inner.run_step()
    assert inner.model.backbone.seen == [torch.float32]
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: True)
    inner = _Inner()
    train_in_precision(inner, _cfg("auto"))
    inner.run_step()
    assert inner.model.backbone.seen == [torch.bfloat16]


def test_fp16_points_to_detectron2s_own_amp_and_bad_names_are_refused() -> None:
    with pytest.raises(AstrodetInputError, match=r"SOLVER\.AMP\.ENABLED"):
        train_in_precision(_Inner(), _cfg("fp16"))
    with pytest.raises(AstrodetInputError, match="fp32, bf16, fp16"):
        train_in_precision(_Inner(), _cfg("fp8"))
