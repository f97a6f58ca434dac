"""Pure-Python stand-in for detectron2's compiled ``_C`` extension.

Installed as ``detectron2/_C.py`` when detectron2 comes from its PyPI
republication, whose ``_C`` binary targets CPython 3.10 only.  detectron2
imports ``_C`` at module top in a few places (deform conv, rotated boxes,
fast COCO eval), so the module must import; axis-aligned Faster R-CNN never
calls it (RoIAlign and NMS come from torchvision).  Every compiled-only op
raises a :class:`NotImplementedError` naming the op and the way out.
"""

from __future__ import annotations

from typing import Any, NoReturn

ASTRODET_STANDIN = True

_HELP = (
    "detectron2 was installed without its compiled C++/CUDA extension "
    "(astrodet's pure-Python `_C` stand-in is in place). "
    "Reinstall detectron2 from source to get it: "
    "`pip install --no-build-isolation 'git+https://github.com/facebookresearch/detectron2.git'` "
    "(or rerun astrodet's scripts/install.sh with ASTRODET_D2_ROUTE=upstream)."
)


def get_compiler_version() -> str:
    return "not compiled (astrodet _C stand-in)"


def get_cuda_version() -> str:
    return "not available (astrodet _C stand-in)"


def has_cuda() -> bool:
    return False


class _CompiledOnly:
    """A callable placeholder for one compiled op: calling it raises."""

    def __init__(self, name: str) -> None:
        self.__name__ = name

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError(f"detectron2._C.{self.__name__} is a compiled-only op. {_HELP}")

    def __repr__(self) -> str:
        return f"<compiled-only op detectron2._C.{self.__name__} (unavailable)>"


def __getattr__(name: str) -> _CompiledOnly:
    # Module-level __getattr__ (PEP 562): any op detectron2 asks for exists, and
    # fails loudly only when it is called.
    if name.startswith("__"):
        raise AttributeError(name)
    return _CompiledOnly(name)
