"""astrodet's Detectron2 adapter: importing it registers astrodet's backbones and the embedded default datasets.

Usage::

    import astrodet.detectron2  # BACKBONE_REGISTRY entries, astrodet_default_* / astrodet_tiny_* datasets
    from astrodet.detectron2 import AstroTrainer, add_astrodet_config
"""

import astrodet.detectron2.classification  # noqa: F401  (AstroImageClassifier, astrodet_<sample>_<split> datasets)
from astrodet.detectron2 import backbones
from astrodet.detectron2.config import add_astrodet_config
from astrodet.detectron2.datasets import register_coco_file, register_default_datasets, register_user_coco_file
from astrodet.detectron2.evaluation import AstroDetectionEvaluator
from astrodet.detectron2.prepare import prepare_datasets, resolve_device
from astrodet.detectron2.trainer import AstroTrainer

register_default_datasets()

__all__ = [
    "AstroDetectionEvaluator",
    "AstroTrainer",
    "add_astrodet_config",
    "backbones",
    "prepare_datasets",
    "register_coco_file",
    "register_default_datasets",
    "register_user_coco_file",
    "resolve_device",
]
