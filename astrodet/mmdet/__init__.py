"""astrodet's MMDetection adapter: importing it registers astrodet's modules in mmdet's registries.

In an mmdet config::

    custom_imports = dict(imports=["astrodet.mmdet"], allow_failed_imports=False)
    model = dict(backbone=dict(type="ZoobotEncoder", arch="convnext_nano", out_indices=(0, 1, 2, 3)))
"""

from astrodet.mmdet import backbones

__all__ = ["backbones"]
