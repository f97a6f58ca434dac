"""``astrodet predict --precision fp32|bf16|fp16``: the feature extractor under autocast, everything after it in fp32.

Why only the feature extractor: the backbone (and neck) is nearly all of a detector's arithmetic, so it is where
bf16/fp16 pays; the heads, box decoding, score softmax and NMS stay in fp32 (their inputs are cast back), so
scores are not rounded to bf16's 3 significant digits and the catalogue has the same columns and dtypes in every
precision. Autocast is PyTorch's own mixed precision (``torch.autocast``): layers that need fp32 keep it.

Where each runs: bf16 on CPUs whose oneDNN has bf16 kernels (AVX-512/AMX) and on CUDA GPUs that support it; fp16
on CUDA only (PyTorch's CPU fp16 convolutions are slow fallbacks, not an optimisation). Anything else is refused
with a one-line message before a single image is read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from astrodet.errors import AstrodetInputError

PRECISIONS = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_supports_bf16() -> bool:
    """Whether this CPU runs bf16 kernels natively (oneDNN's own check: AVX-512 or AMX)."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def bf16_available(device: str | torch.device) -> bool:
    """Whether ``device`` (a CPU or a CUDA GPU) has bf16 kernels, so bf16 autocast speeds it up."""
    kind = torch.device(device).type
    if kind == "cpu":
        return cpu_supports_bf16()
    return kind == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def check_precision(precision: str, device: str | torch.device) -> None:
    """Refuse ``precision`` on ``device`` where autocast cannot run it (a one-line :class:`AstrodetInputError`)."""
    if precision not in PRECISIONS:
        raise AstrodetInputError(f"--precision {precision}: expected one of {', '.join(PRECISIONS)}")
    kind = torch.device(device).type
    if precision == "fp32":
        return
    if kind == "cpu":
        if precision == "fp16":
            raise AstrodetInputError("--precision fp16: runs on CUDA GPUs only; on a CPU use bf16 (or fp32)")
        if not cpu_supports_bf16():
            raise AstrodetInputError("--precision bf16: this CPU has no bf16 kernels (AVX-512/AMX); use fp32")
    elif kind == "cuda":
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            raise AstrodetInputError("--precision bf16: this GPU does not support bf16; use fp16 or fp32")
    else:
        raise AstrodetInputError(f"--precision {precision}: supported on cpu and cuda devices, not {kind}")


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of ``module``'s first parameter (the CPU for a module without any)."""
    return next((p.device for p in module.parameters()), torch.device("cpu"))


def set_precision(model: Any, precision: str) -> None:
    """Give a loaded model (``load_model``'s result) the precision its forward passes run in; checked against the
    model's device. Models without a ``precision`` attribute (stand-ins, future adapters) run fp32 only."""
    if not hasattr(model, "precision"):
        if precision != "fp32":
            raise AstrodetInputError(
                f"--precision {precision}: the {getattr(model, 'framework', 'given')} model runs in fp32 only"
            )
        return
    check_precision(precision, module_device(model.model))
    model.precision = precision


def as_float32(value: Any) -> Any:
    """``value`` with every floating-point tensor in it (nested in dicts, lists, tuples) cast to float32."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, dict):
        return {key: as_float32(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(as_float32(item) for item in value)
    return value


@contextlib.contextmanager
def features_in(precision: str, modules: Sequence[torch.nn.Module]) -> Iterator[None]:
    """Within the block, each of ``modules`` (a backbone, a neck) runs under autocast in ``precision`` and hands
    float32 outputs on; on leaving it they are as before. ``fp32`` changes nothing."""
    if precision == "fp32":
        yield
        return
    dtype = _DTYPES[precision]
    for module in modules:
        kind = module_device(module).type
        run = module.forward

        def forward(*args: Any, _run: Any = run, _kind: str = kind, **kwargs: Any) -> Any:
            with torch.autocast(device_type=_kind, dtype=dtype):
                return as_float32(_run(*args, **kwargs))

        module.forward = forward  # an instance attribute: nn.Module.__call__ finds it before the class's
    try:
        yield
    finally:
        for module in modules:
            del module.forward
