"""Feature-map names shared by both adapters: ``stage<k>`` for stride 2**k, as Detectron2's ResNet names them."""

from __future__ import annotations

import math


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
