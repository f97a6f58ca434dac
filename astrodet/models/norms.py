"""Normalisation choices for backbones trained at the small batches astronomy detection runs with.

BatchNorm statistics from 1-2 images per GPU (or a CPU) are noise; GroupNorm is batch-independent and trains
from scratch, FrozenBN suits a pretrained backbone. ``convert_norm`` swaps every BatchNorm2d in a module.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

NormKind = Literal["model", "bn", "gn", "frozen_bn"]
NORM_KINDS: tuple[str, ...] = ("model", "bn", "gn", "frozen_bn")


def _group_count(channels: int, max_groups: int = 32) -> int:
    """Largest divisor of ``channels`` not above ``max_groups`` (GroupNorm needs an exact split)."""
    for groups in range(min(max_groups, channels), 0, -1):
        if channels % groups == 0:
            return groups
    return 1


def convert_norm(module: nn.Module, kind: str) -> nn.Module:
    """Return ``module`` with its BatchNorm2d layers replaced according to ``kind``.

    ``model`` and ``bn`` keep the network's own layers (LayerNorm in ConvNeXt, BatchNorm in ResNet); ``gn``
    replaces BatchNorm2d with GroupNorm (affine weights copied); ``frozen_bn`` freezes BatchNorm statistics and
    affine parameters (timm's FrozenBatchNorm2d).
    """
    if kind not in NORM_KINDS:
        raise ValueError(f"norm must be one of {NORM_KINDS}, got {kind!r}")
    if kind in ("model", "bn"):
        return module
    if kind == "frozen_bn":
        from timm.layers import freeze_batch_norm_2d

        return freeze_batch_norm_2d(module)
    if isinstance(module, nn.BatchNorm2d):
        gn = nn.GroupNorm(_group_count(module.num_features), module.num_features, eps=module.eps, affine=True)
        if module.affine:
            gn.weight.data.copy_(module.weight.data)
            gn.bias.data.copy_(module.bias.data)
        return gn
    for name, child in module.named_children():
        new_child = convert_norm(child, kind)
        if new_child is not child:
            setattr(module, name, new_child)
    return module
