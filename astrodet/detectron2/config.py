"""``add_astrodet_config(cfg)``: the configuration keys astrodet adds to Detectron2's defaults."""

from __future__ import annotations

from detectron2.config import CfgNode as CN

from astrodet.detectron2.classification import add_classification_config


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

    cfg.ASTRODET = CN()
    # COCO files to register before training, as [[dataset_name, path/to/file.json], ...] (astrodet's converters
    # write them; image paths are relative to each file's folder). With none, DATASETS.* name the embedded
    # default (astrodet_default_train / _val / _test), generated on first use.
    cfg.ASTRODET.REGISTER = []

    cfg.ASTRODET.AUG = CN()
    # Flips and exact quarter-turn rotations: sky images have no preferred orientation.
    cfg.ASTRODET.AUG.HFLIP = True
    cfg.ASTRODET.AUG.VFLIP = True
    cfg.ASTRODET.AUG.ROT90 = True

    cfg.ASTRODET.SOLVER = CN()
    # "SGD" (detectron2's own), "ADAMW" or "ADAM" (Popp et al. 2024 used Adam, lr 1e-4, weight decay 5e-5).
    cfg.ASTRODET.SOLVER.OPTIMIZER = "SGD"

    cfg.ASTRODET.EVAL = CN()
    # How a prediction matches a true box for completeness/purity: "iou" (IoU >= IOU_THRESHOLD) or "centre"
    # (centre distance <= CENTRE_RADIUS px); one-to-one, greedy by score (docs/evaluation.md).
    cfg.ASTRODET.EVAL.MATCHING = "iou"
    cfg.ASTRODET.EVAL.IOU_THRESHOLD = 0.5
    # Pixels; about one PSF FWHM in the evaluated frame for point-like clumps.
    cfg.ASTRODET.EVAL.CENTRE_RADIUS = 4.0
    # Operating score threshold for completeness and purity (Popp et al.'s default 0.3); curves cover all.
    cfg.ASTRODET.EVAL.SCORE_THRESHOLD = 0.3
    # Count a prediction only against true boxes of its own class (False: any class).
    cfg.ASTRODET.EVAL.CLASS_AWARE = True
    # Write report.json, report.md and PNG plots into OUTPUT_DIR after each evaluation.
    cfg.ASTRODET.EVAL.REPORT = True
    # Validation images drawn with true and predicted boxes in the report grid.
    cfg.ASTRODET.EVAL.GRID_IMAGES = 12
    add_classification_config(cfg)  # MODEL.CLASSIFIER, ASTRODET.CLS (astrodet/detectron2/classification.py)
    return cfg
