"""Plain torch modules, written once and wrapped by each framework adapter.

A backbone here returns a list of feature maps, finest first, and describes them with ``channels`` and
``strides``; the adapters turn that into Detectron2's ``output_shape()`` and MMDetection's tuple outputs.
"""

from astrodet.models.deepshadows import DeepShadowsTrunk
from astrodet.models.zoobot import ZoobotEncoder

__all__ = ["DeepShadowsTrunk", "ZoobotEncoder"]
