"""``add_astrodet_config(cfg)``: the configuration keys astrodet adds to Detectron2's defaults."""

from __future__ import annotations

from detectron2.config import CfgNode as CN


def add_astrodet_config(cfg: CN) -> CN:
    """Add astrodet's keys (with their defaults) to ``cfg`` in place; returns ``cfg`` for chaining."""
    cfg.MODEL.ZOOBOT = CN()
    # timm architecture of the encoder; Zoobot's published encoders are timm models (convnext_nano is its default).
    cfg.MODEL.ZOOBOT.ARCH = "convnext_nano"
    # Local weights file (a Zoobot encoder, timm or Lightning checkpoint); empty means random initialisation.
    cfg.MODEL.ZOOBOT.CHECKPOINT = ""
    # Feature maps handed on, by stride: stage2=4, stage3=8, stage4=16, stage5=32.
    cfg.MODEL.ZOOBOT.OUT_FEATURES = ["stage2", "stage3", "stage4", "stage5"]
    # "model" keeps the architecture's norm (ConvNeXt: LayerNorm, batch-independent); "gn" or "frozen_bn" for
    # BatchNorm architectures trained at small batch.
    cfg.MODEL.ZOOBOT.NORM = "model"
    # Stochastic depth rate inside the encoder (0 disables).
    cfg.MODEL.ZOOBOT.DROP_PATH_RATE = 0.0

    cfg.MODEL.DEEPSHADOWS = CN()
    # Block outputs handed on: stage1=stride 2 (16 ch), stage2=4 (32 ch), stage3=8 (64 ch).
    cfg.MODEL.DEEPSHADOWS.OUT_FEATURES = ["stage1", "stage2", "stage3"]
    # Dropout after each block; the paper's classifier uses 0.4.
    cfg.MODEL.DEEPSHADOWS.DROPOUT = 0.4
    # "bn" is the paper's BatchNorm; "gn" suits batch 1-2 detection training.
    cfg.MODEL.DEEPSHADOWS.NORM = "bn"
    # Filters per block (the paper: 16, 32, 64).
    cfg.MODEL.DEEPSHADOWS.CHANNELS = [16, 32, 64]
    return cfg
