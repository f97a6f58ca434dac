"""The DeepShadows CNN (Tanoglidis, Ciprijanovic & Drlica-Wagner 2021), as a multi-scale trunk.

The paper's network classifies 64x64 g,r,z (DES) cutouts: three blocks of Conv 3x3 (16, 32, 64 filters, same
padding) -> ReLU -> BatchNorm -> MaxPool 2x2 -> Dropout 0.4, then a 1024-unit dense head. The trunk exposes each
block's output (strides 2, 4, 8) so it can also feed an FPN for small objects such as clumps. The paper's L2
kernel penalties (0.13) are an optimiser setting (weight decay), not part of the module.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from astrodet.models.freezing import freeze_parameters
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


class DeepShadowsTrunk(nn.Module):
    """Three DeepShadows blocks; returns the outputs of the blocks in ``out_indices`` (strides 2, 4, 8)."""

    def __init__(
        self,
        in_chans: int = 3,
        out_indices: Sequence[int] = (0, 1, 2),
        dropout: float = 0.4,
        frozen_stages: int = -1,
        norm: str = "bn",
        channels: Sequence[int] = BLOCK_CHANNELS,
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
        self.channels: list[int] = [int(channels[i]) for i in out_indices]
        self.strides: list[int] = [2 ** (i + 1) for i in out_indices]
        if frozen_stages > len(channels):
            raise ValueError(f"frozen_stages must be in -1..{len(channels)}, got {frozen_stages}")
        # The trunk has no stem: frozen_stages=k freezes the first k blocks (0 and -1 freeze nothing).
        self._frozen = list(self.blocks[: max(frozen_stages, 0)])
        freeze_parameters(self._frozen)

    def train(self, mode: bool = True) -> DeepShadowsTrunk:
        super().train(mode)
        for module in self._frozen:
            module.eval()
        return self

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for block in self.blocks[: max(self.out_indices) + 1]:
            x = block(x)
            outputs.append(x)
        return [outputs[i] for i in self.out_indices]
