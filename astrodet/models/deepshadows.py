"""The DeepShadows CNN (Tanoglidis, Ciprijanovic & Drlica-Wagner 2021), as a multi-scale trunk.

The paper's network classifies 64x64 g,r,z (DES) cutouts: three blocks of Conv 3x3 (16, 32, 64 filters, same
padding) -> ReLU -> BatchNorm -> MaxPool 2x2 -> Dropout 0.4, then a 1024-unit dense head. The trunk exposes each
block's output (strides 2, 4, 8) so it can also feed an FPN for small objects such as clumps. The paper's L2
kernel penalties (0.13) are an optimiser setting (weight decay), not part of the module.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn

from astrodet.models.checkpoints import read_state_dict
from astrodet.models.features import FeatureBackbone, describe_features
from astrodet.models.norms import convert_norm

BLOCK_CHANNELS: tuple[int, ...] = (16, 32, 64)
BLOCK_STRIDES: tuple[int, ...] = (2, 4, 8)


class DeepShadowsBlock(nn.Sequential):
    """Conv 3x3 (same) -> ReLU -> BatchNorm -> MaxPool 2x2 -> Dropout, the order of the paper's Keras model."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(out_channels),
            nn.MaxPool2d(2),
            nn.Dropout(dropout),
        )


class DeepShadowsTrunk(FeatureBackbone):
    """Three DeepShadows blocks; returns the outputs of the blocks in ``out_indices`` (strides 2, 4, 8).

    Args:
        in_chans: number of input bands.
        out_indices: which blocks' outputs to return (block k has stride 2**(k+1)).
        dropout: the paper's 0.4 after each block; detection trains better without it.
        frozen_stages: k freezes the first k blocks (the trunk has no stem: 0 and -1 freeze nothing).
        norm: ``bn`` (the paper's BatchNorm), ``gn`` or ``frozen_bn`` (see :func:`astrodet.models.norms.convert_norm`).
        channels: filters of each block.
        checkpoint: local weights file with the trunk's weights (e.g. a DeepShadows classifier's; extra keys such
            as its head are ignored, a missing trunk weight is an error rather than a silent random init).
    """

    def __init__(
        self,
        in_chans: int = 3,
        out_indices: Sequence[int] = (0, 1, 2),
        dropout: float = 0.4,
        frozen_stages: int = -1,
        norm: str = "bn",
        channels: Sequence[int] = BLOCK_CHANNELS,
        checkpoint: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        out_indices = tuple(int(i) for i in out_indices)
        if not out_indices or any(i not in range(len(channels)) for i in out_indices):
            raise ValueError(f"out_indices must be a non-empty subset of 0..{len(channels) - 1}, got {out_indices}")
        widths = [in_chans, *channels]
        self.blocks = nn.ModuleList(DeepShadowsBlock(widths[i], widths[i + 1], dropout) for i in range(len(channels)))
        convert_norm(self.blocks, norm)
        self.in_chans = in_chans
        self.out_indices = out_indices
        self.feature_info = describe_features(
            channels=[channels[i] for i in out_indices], strides=[2 ** (i + 1) for i in out_indices]
        )
        if checkpoint is not None:
            self._load_trunk(checkpoint)
        if frozen_stages > len(channels):
            raise ValueError(f"frozen_stages must be in -1..{len(channels)}, got {frozen_stages}")
        # The trunk has no stem: frozen_stages=k freezes the first k blocks (0 and -1 freeze nothing).
        self.freeze_modules(self.blocks[: max(frozen_stages, 0)])

    def _load_trunk(self, checkpoint: str | os.PathLike[str]) -> None:
        """Load the trunk's weights (wrapper prefixes stripped by the reader); every trunk weight must be there."""
        missing, _ = self.load_state_dict(read_state_dict(checkpoint), strict=False)
        if missing:
            raise ValueError(f"{checkpoint}: no weights for {len(missing)} trunk parameters, e.g. {missing[:3]}")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for block in self.blocks[: max(self.out_indices) + 1]:
            x = block(x)
            outputs.append(x)
        return [outputs[i] for i in self.out_indices]
