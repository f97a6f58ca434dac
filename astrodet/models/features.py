"""How a core backbone describes its outputs, once, for both adapters (timm's ``feature_info`` idea).

A core backbone returns a list of feature maps, finest first, and lists them in ``feature_info``: one
:class:`FeatureSpec` per map with its name, channels and reduction (stride). Detectron2's ``output_shape()`` and
MMDetection's ``out_channels``/``strides`` are read from it, never restated. Names are ``stage<k>`` for stride
2**k, as Detectron2's ResNet names them, so FPN levels come out as ``p<k>``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class FeatureSpec:
    """One returned feature map: ``name`` (``stage<k>``), ``channels`` and ``reduction`` (stride to the input)."""

    name: str
    channels: int
    reduction: int


def stage_name(stride: int) -> str:
    """``stage2`` for stride 4 ... ``stage5`` for stride 32 (FPN then emits ``p2`` ... ``p5``)."""
    level = math.log2(stride)
    if stride < 1 or level != int(level):
        raise ValueError(f"feature strides must be powers of two, got {stride}")
    return f"stage{int(level)}"


def stage_indices(names: list[str], available_strides: tuple[int, ...]) -> list[int]:
    """Indices into ``available_strides`` for feature ``names``; a clear error names what exists."""
    available = {stage_name(s): i for i, s in enumerate(available_strides)}
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"unknown backbone feature names {unknown}; this backbone has {sorted(available)}")
    return sorted(available[n] for n in names)


def describe_features(channels: Sequence[int], strides: Sequence[int]) -> list[FeatureSpec]:
    """The ``feature_info`` of maps with these widths and strides, finest first, each named by its stride."""
    return [FeatureSpec(stage_name(int(s)), int(c), int(s)) for c, s in zip(channels, strides, strict=True)]


class FeatureBackbone(nn.Module):
    """Base of the core backbones: ``forward`` returns the maps ``feature_info`` lists; frozen parts stay frozen.

    Subclasses set ``feature_info`` in their constructor and hand the modules they freeze to
    :meth:`freeze_modules`, which also keeps them in eval mode through ``train()`` so BatchNorm statistics do not
    drift (mmdet's ``frozen_stages`` and Detectron2's ``FREEZE_AT`` convention).
    """

    def __init__(self) -> None:
        super().__init__()
        self.feature_info: list[FeatureSpec] = []
        self._frozen: list[nn.Module] = []

    @property
    def channels(self) -> list[int]:
        return [f.channels for f in self.feature_info]

    @property
    def strides(self) -> list[int]:
        return [f.reduction for f in self.feature_info]

    def freeze_modules(self, modules: Iterable[nn.Module]) -> None:
        """Stop gradients in ``modules`` and hold them in eval mode from now on (finetuning on few images)."""
        self._frozen = list(modules)
        for module in self._frozen:
            module.requires_grad_(False)
            module.eval()

    def train(self, mode: bool = True) -> FeatureBackbone:
        super().train(mode)
        for module in self._frozen:
            module.eval()
        return self
