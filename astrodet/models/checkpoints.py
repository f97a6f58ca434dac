"""Read weights from local files without ever running code from them: timm checkpoints, Zoobot's published encoders,
Lightning checkpoints, and (through :func:`load_weights_only`) the frameworks' own checkpoints.

Nothing is fetched: Zoobot's encoders are timm state dicts on the Hugging Face hub, so a user downloads one
(``pytorch_model.bin`` or ``model.safetensors``) once and points astrodet at the file. A model file from a colleague
or the web is untrusted: a pickle can run any code while it loads, so PyTorch files are read with
``torch.load(weights_only=True)`` (tensors and plain containers only) and a refusal names the file, never the
``weights_only=False`` way round it.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from astrodet.errors import AstrodetInputError

# Key prefixes that wrappers add around a timm encoder (Zoobot's Lightning modules, DDP, our own wrappers).
_WRAPPER_PREFIXES: tuple[str, ...] = ("model.encoder.", "encoder.", "module.", "model.", "backbone.", "body.")
# What torch.load raises for a file cut short or not a checkpoint at all: an empty file (EOFError), a zip without
# its directory (RuntimeError), a few bytes of one (OSError: [Errno 22], with no file name), text (KeyError).
_UNREADABLE = (EOFError, OSError, RuntimeError, KeyError, ValueError, pickle.UnpicklingError)


def refusal_reason(err: pickle.UnpicklingError) -> str | None:
    """The one line of torch's weights-only refusal that says what the file asked for (``Unsupported global: GLOBAL
    io.open ...``), without the advice around it to load with ``weights_only=False``; None for other errors."""
    text = str(err)
    if "Weights only load failed" not in text:
        return None
    reason = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\.\s|\n|$)", text)
    return reason.group(1) if reason else "an object that is not a tensor or a plain container"


def load_weights_only(path: str | os.PathLike[str], holds: str = "weights", map_location: Any = "cpu") -> Any:
    """``torch.load(path, map_location=map_location, weights_only=True)``: a file that would run code or build
    anything but tensors, plain containers and allow-listed types, and a corrupt or empty file, are one-line
    :class:`AstrodetInputError` naming the file. ``holds`` says what such a checkpoint may legitimately hold."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {file}")
    try:
        return torch.load(file, map_location=map_location, weights_only=True)
    except _UNREADABLE as err:
        if file.stat().st_size == 0:
            raise AstrodetInputError(f"{file}: the file is empty, not a PyTorch checkpoint") from None
        reason = refusal_reason(err) if isinstance(err, pickle.UnpicklingError) else None
        if reason is not None:
            raise AstrodetInputError(
                f"{file}: refused: a checkpoint may hold only {holds}, and this file does not ({reason}); "
                "astrodet never runs code from a checkpoint"
            ) from None
        raise AstrodetInputError(
            f"{file}: not a readable PyTorch checkpoint ({type(err).__name__}: {_first_line(err)}); "
            "is the file complete? (empty, cut short or another format)"
        ) from None


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a state dict from ``.safetensors``, ``.bin``/``.pth``/``.pt`` or a Lightning ``.ckpt`` file."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {file}")
    if file.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(file), device="cpu")
        except SafetensorError as err:
            raise AstrodetInputError(f"{file}: not a readable safetensors file ({_first_line(err)})") from None
    else:
        state = load_weights_only(file, holds="weights (a state dict, optionally with training state)")
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AstrodetInputError(f"{file}: expected a state dict of tensors (optionally under 'state_dict' or 'model')")
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


def _first_line(err: BaseException, limit: int = 120) -> str:
    """An exception's first line, cut to ``limit`` characters (torch's corrupt-file messages run to a paragraph)."""
    lines = str(err).strip().splitlines()
    line = lines[0] if lines else "no detail"
    return line if len(line) <= limit else line[: limit - 3] + "..."
