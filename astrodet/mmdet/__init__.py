"""astrodet's MMDetection adapter: importing it registers astrodet's modules in mmdet's registries.

- ``MODELS``: ``ZoobotEncoder``, ``DeepShadowsTrunk`` (backbones, :mod:`astrodet.mmdet.backbones`)
- ``METRICS``: ``AstroDetectionMetric`` (COCO AP for compact sources + completeness/purity + report)
- ``TRANSFORMS``: ``RandomRot90`` (exact quarter turns)

In an mmdet config::

    custom_imports = dict(imports=["astrodet.mmdet"], allow_failed_imports=False)
    model = dict(backbone=dict(type="ZoobotEncoder", arch="convnext_nano", out_indices=(0, 1, 2, 3)))

The embedded default dataset is named by ``ann_file='astrodet_default:<split>'`` placeholders, resolved by
``tools/train_mmdet.py`` (:mod:`astrodet.mmdet.datasets`). See docs/mmdet.md.
"""

from astrodet.mmdet import backbones, classification, datasets, metrics, transforms
from astrodet.mmdet.datasets import resolve_default_datasets
from astrodet.mmdet.metrics import AstroDetectionMetric
from astrodet.mmdet.transforms import RandomRot90

__all__ = [
    "AstroDetectionMetric",
    "RandomRot90",
    "backbones",
    "classification",
    "datasets",
    "metrics",
    "resolve_default_datasets",
    "transforms",
]
