"""Plain torch modules, written once and wrapped by each framework adapter.

A backbone here is a :class:`FeatureBackbone`: it returns a list of feature maps, finest first, and describes them
once in ``feature_info`` (name, channels, stride); the adapters turn that into Detectron2's ``output_shape()`` and
MMDetection's ``out_channels``/``strides``.

The names below load on first use, so importing a light submodule (``astrodet.models.schemas``, which the Galaxy Zoo
converter reads) does not import torch and timm: the ``astrodet`` command starts in a fraction of a second.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DeepShadowsTrunk": "astrodet.models.deepshadows",
    "FeatureBackbone": "astrodet.models.features",
    "FeatureSpec": "astrodet.models.features",
    "describe_features": "astrodet.models.features",
    "TimmEncoder": "astrodet.models.timm_encoder",
    # The old name of TimmEncoder (it wraps any timm model; Zoobot's encoders are one checkpoint format it loads).
    "ZoobotEncoder": "astrodet.models.timm_encoder",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'astrodet.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), "TimmEncoder" if name == "ZoobotEncoder" else name)
    globals()[name] = value
    return value
