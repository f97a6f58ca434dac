"""Read encoder weights from local files: timm checkpoints, Zoobot's published encoders, Lightning checkpoints.

Nothing is fetched: Zoobot's encoders are timm state dicts on the Hugging Face hub, so a user downloads one
(``pytorch_model.bin`` or ``model.safetensors``) once and points astrodet at the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

# Key prefixes that wrappers add around a timm encoder (Zoobot's Lightning modules, DDP, our own wrappers).
_WRAPPER_PREFIXES: tuple[str, ...] = ("model.encoder.", "encoder.", "module.", "model.", "backbone.", "body.")


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a state dict from ``.safetensors``, ``.bin``/``.pth``/``.pt`` or a Lightning ``.ckpt`` file."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {file}")
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(file), device="cpu")
    else:
        state = torch.load(file, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{file}: expected a state dict of tensors (optionally under 'state_dict' or 'model')")
    return strip_wrapper_prefixes(state)


def strip_wrapper_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop a prefix shared by every key (e.g. ``encoder.``), repeatedly, so keys match a bare timm model."""
    changed = True
    while changed and state:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                changed = True
                break
    return state
