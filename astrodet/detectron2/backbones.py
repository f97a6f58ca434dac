"""Detectron2 builders for astrodet's core backbones (BACKBONE_REGISTRY), plain and with an FPN.

Each builder wraps the core module in :class:`CoreBackbone`, which only renames its feature list to Detectron2's
``{name: tensor}`` form and reports the core's ``feature_info`` through ``output_shape()``.
"""

from __future__ import annotations

import torch
from detectron2.config import CfgNode
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, FPN, Backbone
from detectron2.modeling.backbone.fpn import LastLevelMaxPool

from astrodet.models.deepshadows import BLOCK_STRIDES, DeepShadowsTrunk
from astrodet.models.features import FeatureBackbone, stage_indices
from astrodet.models.timm_encoder import STAGE_STRIDES, TimmEncoder


class CoreBackbone(Backbone):
    """A core backbone (a list of features described by ``feature_info``) seen as a Detectron2 Backbone."""

    def __init__(self, body: FeatureBackbone) -> None:
        super().__init__()
        self.body = body
        self._out_features = [f.name for f in body.feature_info]
        self._out_feature_channels = {f.name: f.channels for f in body.feature_info}
        self._out_feature_strides = {f.name: f.reduction for f in body.feature_info}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(zip(self._out_features, self.body(x), strict=True))


def _in_chans(cfg: CfgNode, input_shape: ShapeSpec) -> int:
    # PIXEL_MEAN's length sets the band count in Detectron2; input_shape carries it.
    return int(input_shape.channels if input_shape.channels is not None else len(cfg.MODEL.PIXEL_MEAN))


def with_fpn(cfg: CfgNode, bottom_up: Backbone) -> FPN:
    """FPN over ``cfg.MODEL.FPN.IN_FEATURES`` plus one max-pooled level above the coarsest one."""
    top_block = LastLevelMaxPool()
    # Detectron2's top block reads "p5"; a trunk whose coarsest level is another stride names its own.
    coarsest = max(bottom_up.output_shape()[f].stride for f in cfg.MODEL.FPN.IN_FEATURES)
    top_block.in_feature = f"p{coarsest.bit_length() - 1}"
    return FPN(
        bottom_up=bottom_up,
        in_features=cfg.MODEL.FPN.IN_FEATURES,
        out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
        norm=cfg.MODEL.FPN.NORM,
        top_block=top_block,
        fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
    )


@BACKBONE_REGISTRY.register()
def build_timm_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> Backbone:
    """Any timm encoder, configured by cfg.MODEL.ZOOBOT (the key predates the rename: a Zoobot encoder is a timm
    model, loaded from MODEL.ZOOBOT.CHECKPOINT); FREEZE_AT follows Detectron2: 1 = stem, 2 = stem + stage2."""
    encoder = TimmEncoder(
        arch=cfg.MODEL.ZOOBOT.ARCH,
        in_chans=_in_chans(cfg, input_shape),
        out_indices=stage_indices(list(cfg.MODEL.ZOOBOT.OUT_FEATURES), STAGE_STRIDES),
        checkpoint=cfg.MODEL.ZOOBOT.CHECKPOINT or None,
        frozen_stages=cfg.MODEL.BACKBONE.FREEZE_AT - 1,
        norm=cfg.MODEL.ZOOBOT.NORM,
        drop_path_rate=cfg.MODEL.ZOOBOT.DROP_PATH_RATE,
    )
    return CoreBackbone(encoder)


@BACKBONE_REGISTRY.register()
def build_timm_fpn_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> Backbone:
    """timm encoder + FPN (cfg.MODEL.FPN.IN_FEATURES picks from stage2..stage5)."""
    return with_fpn(cfg, build_timm_backbone(cfg, input_shape))


@BACKBONE_REGISTRY.register()
def build_zoobot_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> Backbone:
    """The old name of :func:`build_timm_backbone`, kept so existing configs run."""
    return build_timm_backbone(cfg, input_shape)


@BACKBONE_REGISTRY.register()
def build_zoobot_fpn_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> Backbone:
    """The old name of :func:`build_timm_fpn_backbone`, kept so existing configs run."""
    return build_timm_fpn_backbone(cfg, input_shape)


@BACKBONE_REGISTRY.register()
def build_deepshadows_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> Backbone:
    """DeepShadows trunk (cfg.MODEL.DEEPSHADOWS); FREEZE_AT=k freezes its first k-1 blocks, as for ResNets."""
    trunk = DeepShadowsTrunk(
        in_chans=_in_chans(cfg, input_shape),
        out_indices=stage_indices(list(cfg.MODEL.DEEPSHADOWS.OUT_FEATURES), BLOCK_STRIDES),
        dropout=cfg.MODEL.DEEPSHADOWS.DROPOUT,
        frozen_stages=cfg.MODEL.BACKBONE.FREEZE_AT - 1,
        norm=cfg.MODEL.DEEPSHADOWS.NORM,
        channels=tuple(cfg.MODEL.DEEPSHADOWS.CHANNELS),
        checkpoint=cfg.MODEL.DEEPSHADOWS.CHECKPOINT or None,
    )
    return CoreBackbone(trunk)


@BACKBONE_REGISTRY.register()
def build_deepshadows_fpn_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> Backbone:
    """DeepShadows trunk + FPN: strides 2..8 (+16 from the max-pool top block) for compact sources."""
    return with_fpn(cfg, build_deepshadows_backbone(cfg, input_shape))
