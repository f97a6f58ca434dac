"""``AstroTrainer``: Detectron2's DefaultTrainer with astrodet's data, optimisers and evaluation plugged in.

Everything else (the training loop, checkpointing, hooks, logging, distributed launch) is Detectron2's own.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator

import torch
from detectron2.config import CfgNode
from detectron2.data import DatasetMapper, build_detection_test_loader, build_detection_train_loader
from detectron2.engine import DefaultTrainer
from detectron2.engine import defaults as d2_defaults
from detectron2.evaluation import DatasetEvaluator
from detectron2.solver.build import get_default_optimizer_params, maybe_add_gradient_clipping

from astrodet.detectron2.augment import build_astro_augmentations
from astrodet.detectron2.evaluation import AstroDetectionEvaluator

OPTIMIZERS = ("SGD", "ADAMW", "ADAM")


@contextlib.contextmanager
def _cpu_ddp(device: str) -> Iterator[None]:
    """Multi-process CPU training: DistributedDataParallel refuses ``device_ids`` for CPU modules, which Detectron2
    always passes; wrap without them while the trainer is built."""
    if not device.startswith("cpu"):
        yield
        return
    original = d2_defaults.create_ddp_model
    d2_defaults.create_ddp_model = functools.partial(original, device_ids=None)
    try:
        yield
    finally:
        d2_defaults.create_ddp_model = original


def default_param_groups(cfg: CfgNode, model: torch.nn.Module) -> list[dict]:
    """Detectron2's parameter groups (norm and bias weight decay, bias lr factor) from ``cfg.SOLVER``."""
    return get_default_optimizer_params(
        model,
        base_lr=cfg.SOLVER.BASE_LR,
        weight_decay=cfg.SOLVER.WEIGHT_DECAY,
        weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM,
        bias_lr_factor=cfg.SOLVER.BIAS_LR_FACTOR,
        weight_decay_bias=cfg.SOLVER.WEIGHT_DECAY_BIAS,
    )


def make_optimizer(cfg: CfgNode, params: list[dict]) -> torch.optim.Optimizer:
    """``cfg.ASTRODET.SOLVER.OPTIMIZER`` (SGD, ADAM or ADAMW) over prepared parameter groups, with Detectron2's
    gradient clipping (``cfg.SOLVER.CLIP_GRADIENTS``). Each group carries its own lr and weight decay."""
    name = cfg.ASTRODET.SOLVER.OPTIMIZER.upper()
    lr, weight_decay = cfg.SOLVER.BASE_LR, cfg.SOLVER.WEIGHT_DECAY
    if name == "SGD":
        optim = torch.optim.SGD(
            params, lr=lr, momentum=cfg.SOLVER.MOMENTUM, nesterov=cfg.SOLVER.NESTEROV, weight_decay=weight_decay
        )
    elif name in ("ADAM", "ADAMW"):
        optim = (torch.optim.AdamW if name == "ADAMW" else torch.optim.Adam)(params, lr=lr, weight_decay=weight_decay)
    else:
        raise ValueError(f"cfg.ASTRODET.SOLVER.OPTIMIZER must be one of {OPTIMIZERS}, got {name!r}")
    return maybe_add_gradient_clipping(cfg, optim)


class AstroTrainer(DefaultTrainer):
    """DefaultTrainer + sky augmentations, Adam(W), COCO + completeness/purity evaluation with reports."""

    def __init__(self, cfg: CfgNode) -> None:
        with _cpu_ddp(cfg.MODEL.DEVICE):
            super().__init__(cfg)

    @classmethod
    def build_train_loader(cls, cfg: CfgNode):
        mapper = DatasetMapper(cfg, is_train=True, augmentations=build_astro_augmentations(cfg, is_train=True))
        return build_detection_train_loader(cfg, mapper=mapper)

    @classmethod
    def build_test_loader(cls, cfg: CfgNode, dataset_name: str):
        mapper = DatasetMapper(cfg, is_train=False, augmentations=build_astro_augmentations(cfg, is_train=False))
        return build_detection_test_loader(cfg, dataset_name, mapper=mapper)

    @classmethod
    def build_optimizer(cls, cfg: CfgNode, model: torch.nn.Module) -> torch.optim.Optimizer:
        return make_optimizer(cfg, default_param_groups(cfg, model))

    @staticmethod
    def report_folder(cfg: CfgNode, dataset_name: str) -> str:
        """The report goes to OUTPUT_DIR (one test set) or OUTPUT_DIR/<dataset> (several)."""
        return os.path.join(cfg.OUTPUT_DIR, dataset_name) if len(cfg.DATASETS.TEST) > 1 else cfg.OUTPUT_DIR

    @classmethod
    def build_evaluator(cls, cfg: CfgNode, dataset_name: str, output_folder: str | None = None) -> DatasetEvaluator:
        if output_folder is None:
            output_folder = cls.report_folder(cfg, dataset_name)
        return AstroDetectionEvaluator(dataset_name, cfg, output_dir=output_folder)
