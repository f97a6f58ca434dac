"""Turning a config into a runnable one: device choice and dataset registration/generation."""

from __future__ import annotations

import logging

import torch
from detectron2.config import CfgNode

from astrodet.detectron2.datasets import ensure_registered_data, register_default_datasets, register_user_coco_file

logger = logging.getLogger(__name__)


def resolve_device(cfg: CfgNode) -> CfgNode:
    """Run on CUDA when a GPU is visible and on the CPU otherwise, with nothing to edit in the config."""
    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        logger.info("No GPU visible: training on the CPU (MODEL.DEVICE cuda -> cpu)")
        cfg.MODEL.DEVICE = "cpu"
    return cfg


def prepare_datasets(cfg: CfgNode) -> None:
    """Register the user's COCO files and the embedded defaults; generate the defaults the config uses."""
    register_default_datasets()
    for entry in cfg.ASTRODET.REGISTER:
        if len(entry) != 2:
            raise ValueError(f"cfg.ASTRODET.REGISTER entries must be [name, json_file], got {entry!r}")
        register_user_coco_file(str(entry[0]), str(entry[1]))
    ensure_registered_data(list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST))
