"""mmdet ``MODELS`` entries for astrodet's core backbones, as mmengine BaseModules returning tuples.

Each entry is a :class:`CoreBackbone` subclass that names its core class and nothing else: config keys go straight
to the core constructor (only mmdet's ``in_channels`` becomes the core's ``in_chans``), and ``out_channels`` and
``strides`` are read from the core's ``feature_info``. The wrapper adds only mmdet's conventions (``norm_eval``,
``init_cfg``); architecture, freezing and checkpoint loading are the core's. ``init_cfg=dict(type="Pretrained",
checkpoint=FILE)`` is routed to the core's reader, which understands timm, Zoobot and Lightning key layouts, and the
weights are loaded when the module is built (mmengine's later ``init_weights()`` leaves them alone). mmengine's own
Pretrained loader would instead expect the wrapper's key names (``body.…``) and skip non-matching keys with only a
warning.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from astrodet import models
from astrodet.models.features import FeatureBackbone

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


class CoreBackbone(BaseModule):
    """A core backbone (``core_cls``) as an mmdet backbone: tuple outputs and ``norm_eval`` (BatchNorm in eval).

    Keyword arguments other than mmdet's own (``in_channels``, ``norm_eval``, ``checkpoint``, ``init_cfg``) are the
    core constructor's, with its defaults; a checkpoint (``checkpoint=`` or a Pretrained ``init_cfg``) is handed to
    the core, which loads it.
    """

    core_cls: ClassVar[type[FeatureBackbone]]

    def __init__(
        self,
        *,
        in_channels: int = 3,
        norm_eval: bool = False,
        checkpoint: str | None = None,
        init_cfg: dict[str, Any] | None = None,
        **core_kwargs: Any,
    ) -> None:
        init_cfg, checkpoint = _split_pretrained(init_cfg, checkpoint)
        super().__init__(init_cfg=init_cfg)
        self.norm_eval = norm_eval
        if checkpoint is not None:
            core_kwargs["checkpoint"] = checkpoint
        self.body = self.core_cls(in_chans=in_channels, **core_kwargs)

    @property
    def out_channels(self) -> list[int]:
        return [f.channels for f in self.body.feature_info]

    @property
    def strides(self) -> list[int]:
        return [f.reduction for f in self.body.feature_info]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # Contiguous NCHW memory: timm's ConvNeXt returns channels-last-strided maps, the FPN's convolutions keep
        # that layout, and mmcv's RoIAlign reads raw NCHW memory without checking (open-mmlab/mmcv#2203), so on
        # such maps it pools the wrong pixels silently (torchvision's, used by Detectron2, follows the strides).
        return tuple(feature.contiguous() for feature in self.body(x))

    def train(self, mode: bool = True) -> CoreBackbone:
        super().train(mode)
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self


@MODELS.register_module()
class TimmEncoder(CoreBackbone):
    """Any timm encoder (:class:`astrodet.models.TimmEncoder`: arch, out_indices 0..3 = strides 4, 8, 16, 32, ...)."""

    core_cls = models.TimmEncoder


# The old registry name, kept so existing configs run: Zoobot's encoders are timm models that TimmEncoder loads.
MODELS.register_module(name="ZoobotEncoder", module=TimmEncoder)


@MODELS.register_module()
class DeepShadowsTrunk(CoreBackbone):
    """The DeepShadows CNN trunk (:class:`astrodet.models.DeepShadowsTrunk`: out_indices 0..2 = strides 2, 4, 8)."""

    core_cls = models.DeepShadowsTrunk
