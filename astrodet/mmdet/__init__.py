"""astrodet's MMDetection adapter: importing it registers astrodet's modules in mmdet's registries.

- ``MODELS``: ``TimmEncoder`` (alias ``ZoobotEncoder``), ``DeepShadowsTrunk`` (:mod:`.backbones`),
  ``AstroImageClassifier`` (:mod:`.classification`)
- ``DATASETS``: ``AstroCocoDataset``, ``AstroClassificationDataset`` (catalogue name + split, or ``ann_file``)
- ``TRANSFORMS``: ``RandomRot90`` (exact quarter turns), ``LoadFitsImage`` (multi-band float FITS by the image
  recipe), the classification cutout pipeline
- ``METRICS``: ``AstroDetectionMetric`` (COCO AP for compact sources + completeness/purity + report),
  ``AstroClassificationMetric``
- ``HOOKS``: ``AstroReportHook`` (the test report goes into the work dir), ``AstroCheckpointHook`` (a loaded
  checkpoint must fit the model; saved ones record the image recipe)

and applies the framework patches of :mod:`.compat` (checked against the tested versions). In an mmdet config::

    custom_imports = dict(imports=["astrodet.mmdet"], allow_failed_imports=False)
    train_dataloader = dict(dataset=dict(type="AstroCocoDataset", dataset="default", split="train", ...))

See docs/mmdet.md.
"""

from astrodet.mmdet import backbones, classification, compat, datasets, hooks, metrics, transforms
from astrodet.mmdet.classification import AstroImageClassifier
from astrodet.mmdet.datasets import AstroClassificationDataset, AstroCocoDataset
from astrodet.mmdet.hooks import AstroReportHook
from astrodet.mmdet.metrics import AstroClassificationMetric, AstroDetectionMetric
from astrodet.mmdet.transforms import RandomRot90, RealSkyDegrade

__all__ = [
    "AstroClassificationDataset",
    "AstroClassificationMetric",
    "AstroCocoDataset",
    "AstroDetectionMetric",
    "AstroImageClassifier",
    "AstroReportHook",
    "RandomRot90",
    "RealSkyDegrade",
    "backbones",
    "classification",
    "compat",
    "datasets",
    "hooks",
    "metrics",
    "transforms",
]
