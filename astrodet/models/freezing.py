"""Freezing the first stages of a backbone: the usual way to finetune a pretrained encoder on few images."""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn


def freeze_parameters(modules: Iterable[nn.Module]) -> None:
    """Stop gradients for every parameter of ``modules``.

    Callers also keep these modules in eval mode in their ``train()`` override, so BatchNorm running statistics
    do not drift while the weights are frozen (the convention of mmdet's ``frozen_stages`` and detectron2's
    ``FREEZE_AT``).
    """
    for module in modules:
        for param in module.parameters():
            param.requires_grad_(False)
        module.eval()
