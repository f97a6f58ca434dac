"""astrodet's Detectron2 adapter: importing it registers astrodet's backbones (and, through them, configs).

Usage::

    import astrodet.detectron2  # registers in BACKBONE_REGISTRY
    from astrodet.detectron2 import add_astrodet_config
"""

from astrodet.detectron2 import backbones
from astrodet.detectron2.config import add_astrodet_config

__all__ = ["add_astrodet_config", "backbones"]
