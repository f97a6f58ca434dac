"""astrodet's Detectron2 adapter: importing it registers astrodet's backbones, the ``AstroImageClassifier``
meta-architecture and every catalogue dataset (``astrodet_<name>_<split>``, built on first use).

Usage::

    import astrodet.detectron2  # BACKBONE_REGISTRY / META_ARCH_REGISTRY entries, astrodet_default_* ... datasets
    from astrodet.detectron2 import add_astrodet_config, prepare_datasets, trainer_class

The trainers (:mod:`astrodet.detectron2.trainer`) load on first access, so reading or merging configs
(:mod:`astrodet.detectron2.config`) does not import Detectron2's training engine.
"""

from typing import Any

from astrodet.detectron2 import backbones, classification
from astrodet.detectron2.config import add_astrodet_config
from astrodet.detectron2.datasets import prepare_datasets, register_catalogue_datasets, register_coco_file
from astrodet.detectron2.evaluation import AstroDetectionEvaluator

register_catalogue_datasets()

_TRAINER_NAMES = ("AstroTrainer", "ClassificationTrainer", "resolve_device", "trainer_class")


def __getattr__(name: str) -> Any:
    if name in _TRAINER_NAMES:
        from astrodet.detectron2 import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AstroDetectionEvaluator",
    "add_astrodet_config",
    "backbones",
    "classification",
    "prepare_datasets",
    "register_catalogue_datasets",
    "register_coco_file",
    *_TRAINER_NAMES,
]
