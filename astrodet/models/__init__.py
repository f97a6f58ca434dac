"""Plain torch modules, written once and wrapped by each framework adapter.

A backbone here is a :class:`FeatureBackbone`: it returns a list of feature maps, finest first, and describes them
once in ``feature_info`` (name, channels, stride); the adapters turn that into Detectron2's ``output_shape()`` and
MMDetection's ``out_channels``/``strides``.
"""

from astrodet.models.deepshadows import DeepShadowsTrunk
from astrodet.models.features import FeatureBackbone, FeatureSpec, describe_features
from astrodet.models.timm_encoder import TimmEncoder

# The old name of TimmEncoder (it wraps any timm model; Zoobot's encoders are one checkpoint format it loads).
ZoobotEncoder = TimmEncoder

__all__ = ["DeepShadowsTrunk", "FeatureBackbone", "FeatureSpec", "TimmEncoder", "ZoobotEncoder", "describe_features"]
