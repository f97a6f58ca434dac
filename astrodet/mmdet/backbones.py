"""mmdet ``MODELS`` entries for astrodet's core backbones, as mmengine BaseModules returning tuples.

The wrappers add only mmdet's conventions (``norm_eval``, ``init_cfg``); architecture, freezing and checkpoint
loading are the core's. ``init_cfg=dict(type="Pretrained", checkpoint=FILE)`` is routed to the core's reader,
which understands timm, Zoobot and Lightning key layouts, and the weights are loaded when the module is built
(mmengine's later ``init_weights()`` leaves them alone). mmengine's own Pretrained loader would instead expect the
wrapper's key names (``body.…``) and skip non-matching keys with only a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from astrodet.models.checkpoints import read_state_dict
from astrodet.models.deepshadows import DeepShadowsTrunk
from astrodet.models.zoobot import ZoobotEncoder

# Pretrained init_cfg keys the core reader honours (map_location: it always reads onto the CPU).
_PRETRAINED_KEYS = {"type", "checkpoint", "map_location"}


def _split_pretrained(init_cfg: dict[str, Any] | None, checkpoint: str | None) -> tuple[dict | None, str | None]:
    """Take a ``Pretrained`` init_cfg's checkpoint for the core loader; keep any other init_cfg for mmengine."""
    if isinstance(init_cfg, dict) and init_cfg.get("type") == "Pretrained":
        unsupported = sorted(set(init_cfg) - _PRETRAINED_KEYS)
        if unsupported:  # e.g. prefix: the core reader strips wrapper prefixes itself, and only shared ones
            raise ValueError(f"init_cfg Pretrained: {unsupported} not supported for astrodet backbones")
        if checkpoint is not None and checkpoint != init_cfg.get("checkpoint"):
            raise ValueError("give the checkpoint either as checkpoint= or as init_cfg Pretrained, not both")
        return None, init_cfg["checkpoint"]
    return init_cfg, checkpoint


def _load_body(body: nn.Module, checkpoint: str) -> None:
    """Load a trunk checkpoint (core key names, wrapper prefixes stripped); every trunk weight must be in it.

    Extra keys (e.g. the classifier head of a DeepShadows classifier) are ignored; a missing key is an error, not
    a silent random init.
    """
    missing, _ = body.load_state_dict(read_state_dict(checkpoint), strict=False)
    if missing:
        raise ValueError(f"{checkpoint}: no weights for {len(missing)} trunk parameters, e.g. {missing[:3]}")


class _CoreBackbone(BaseModule):
    """Shared mmdet behaviour: tuple outputs and ``norm_eval`` (BatchNorm layers kept in eval mode)."""

    body: nn.Module

    def __init__(self, norm_eval: bool, init_cfg: dict[str, Any] | None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.norm_eval = norm_eval

    @property
    def out_channels(self) -> list[int]:
        return list(self.body.channels)

    @property
    def strides(self) -> list[int]:
        return list(self.body.strides)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # Contiguous NCHW memory: timm's ConvNeXt returns channels-last-strided maps, the FPN's convolutions keep
        # that layout, and mmcv's RoIAlign reads raw NCHW memory without checking (open-mmlab/mmcv#2203), so on
        # such maps it pools the wrong pixels silently (torchvision's, used by Detectron2, follows the strides).
        return tuple(feature.contiguous() for feature in self.body(x))

    def train(self, mode: bool = True) -> _CoreBackbone:
        super().train(mode)
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self


@MODELS.register_module(name="ZoobotEncoder")
class MMZoobotEncoder(_CoreBackbone):
    """Zoobot-style timm encoder (astrodet.models.ZoobotEncoder); out_indices 0..3 = strides 4, 8, 16, 32."""

    def __init__(
        self,
        arch: str = "convnext_nano",
        in_channels: int = 3,
        out_indices: Sequence[int] = (0, 1, 2, 3),
        frozen_stages: int = -1,
        norm: str = "model",
        norm_eval: bool = False,
        drop_path_rate: float = 0.0,
        checkpoint: str | None = None,
        init_cfg: dict[str, Any] | None = None,
    ) -> None:
        init_cfg, checkpoint = _split_pretrained(init_cfg, checkpoint)
        super().__init__(norm_eval=norm_eval, init_cfg=init_cfg)
        self.body = ZoobotEncoder(
            arch=arch,
            in_chans=in_channels,
            out_indices=out_indices,
            checkpoint=checkpoint,
            frozen_stages=frozen_stages,
            norm=norm,
            drop_path_rate=drop_path_rate,
        )


@MODELS.register_module(name="DeepShadowsTrunk")
class MMDeepShadowsTrunk(_CoreBackbone):
    """DeepShadows CNN trunk (astrodet.models.DeepShadowsTrunk); out_indices 0..2 = strides 2, 4, 8."""

    def __init__(
        self,
        in_channels: int = 3,
        out_indices: Sequence[int] = (0, 1, 2),
        dropout: float = 0.4,
        frozen_stages: int = -1,
        norm: str = "bn",
        norm_eval: bool = False,
        channels: Sequence[int] = (16, 32, 64),
        init_cfg: dict[str, Any] | None = None,
    ) -> None:
        init_cfg, checkpoint = _split_pretrained(init_cfg, None)
        super().__init__(norm_eval=norm_eval, init_cfg=init_cfg)
        self.body = DeepShadowsTrunk(
            in_chans=in_channels,
            out_indices=out_indices,
            dropout=dropout,
            frozen_stages=frozen_stages,
            norm=norm,
            channels=channels,
        )
        if checkpoint is not None:
            _load_body(self.body, checkpoint)
