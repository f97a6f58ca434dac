"""astrodet's trainers: Detectron2's DefaultTrainer with astrodet's data, optimisers and evaluation plugged in.

:class:`AstroTrainer` trains detectors, :class:`ClassificationTrainer` whole-image classifiers, and
:func:`trainer_class` picks one from the config (``tools/train_net.py`` asks it). Everything else (the training loop,
checkpointing, hooks, logging, distributed launch) is Detectron2's own.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
from detectron2.config import CfgNode
from detectron2.data import build_detection_test_loader, build_detection_train_loader
from detectron2.engine import DefaultTrainer
from detectron2.evaluation import DatasetEvaluator
from detectron2.solver.build import get_default_optimizer_params, maybe_add_gradient_clipping

from astrodet.detectron2.checkpoint import AstroCheckpointer
from astrodet.detectron2.classification import META_ARCH, ClassificationEvaluator, ClassificationMapper
from astrodet.detectron2.compat import cpu_ddp
from astrodet.detectron2.evaluation import AstroDetectionEvaluator
from astrodet.detectron2.fits_mapper import detection_mapper
from astrodet.errors import AstrodetInputError
from astrodet.inference.precision import bf16_available, check_precision, features_in
from astrodet.models.classifier import keras_l2_param_groups

logger = logging.getLogger(__name__)
OPTIMIZERS = ("SGD", "ADAMW", "ADAM")


def resolve_device(cfg: CfgNode) -> CfgNode:
    """Run on CUDA when a GPU is visible and on the CPU otherwise, with nothing to edit in the config."""
    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        logger.info("No GPU visible: training on the CPU (MODEL.DEVICE cuda -> cpu)")
        cfg.MODEL.DEVICE = "cpu"
    return cfg


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


def train_in_precision(inner: Any, cfg: CfgNode) -> None:
    """Run each training step of Detectron2's ``inner`` trainer with the backbone under ``ASTRODET.SOLVER.PRECISION``
    autocast (the region ``astrodet predict --precision`` uses); evaluation stays fp32. bf16 needs no loss scaling.
    ``auto`` is bf16 where the device has bf16 kernels and fp32 elsewhere, so a shipped config runs everywhere."""
    precision = cfg.ASTRODET.SOLVER.PRECISION.lower()
    if precision == "auto":
        precision = "bf16" if bf16_available(cfg.MODEL.DEVICE) else "fp32"
        logger.info("ASTRODET.SOLVER.PRECISION auto: the backbone trains in %s on %s", precision, cfg.MODEL.DEVICE)
    if precision == "fp16":
        raise AstrodetInputError(
            "ASTRODET.SOLVER.PRECISION fp16: use Detectron2's SOLVER.AMP.ENABLED True (CUDA, with a gradient scaler)"
        )
    check_precision(precision, cfg.MODEL.DEVICE)
    if precision == "fp32":
        return
    model = inner.model.module if hasattr(inner.model, "module") else inner.model
    step = inner.run_step

    def run_step() -> None:
        with features_in(precision, [model.backbone]):
            step()

    inner.run_step = run_step


class AstroTrainer(DefaultTrainer):
    """DefaultTrainer + sky augmentations, Adam(W), COCO + completeness/purity evaluation with reports; 8-bit
    pictures through Detectron2's DatasetMapper, float recipes (FITS bands) through FitsDatasetMapper."""

    evaluator_class: type[DatasetEvaluator] = AstroDetectionEvaluator

    def __init__(self, cfg: CfgNode) -> None:
        with cpu_ddp(cfg.MODEL.DEVICE):
            super().__init__(cfg)
        # DefaultTrainer builds its checkpointer with no hook to choose the class: astrodet's takes over loading
        # (MODEL.WEIGHTS, --resume) and the PeriodicCheckpointer's saving, which records the image recipe and classes.
        AstroCheckpointer.take_over(self)
        train_in_precision(self._trainer, cfg)

    @classmethod
    def build_train_loader(cls, cfg: CfgNode):
        return build_detection_train_loader(cfg, mapper=detection_mapper(cfg, is_train=True))

    @classmethod
    def build_test_loader(cls, cfg: CfgNode, dataset_name: str):
        return build_detection_test_loader(cfg, dataset_name, mapper=detection_mapper(cfg, is_train=False))

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
        return cls.evaluator_class(dataset_name, cfg, output_dir=output_folder)


class ClassificationTrainer(AstroTrainer):
    """AstroTrainer with classification data, evaluation and optimisers; the loop and hooks stay Detectron2's."""

    evaluator_class = ClassificationEvaluator

    @classmethod
    def build_train_loader(cls, cfg: CfgNode):
        return build_detection_train_loader(cfg, mapper=ClassificationMapper(cfg, is_train=True))

    @classmethod
    def build_test_loader(cls, cfg: CfgNode, dataset_name: str):
        return build_detection_test_loader(
            cfg, dataset_name, mapper=ClassificationMapper(cfg, is_train=False), batch_size=cfg.ASTRODET.CLS.TEST_BATCH
        )

    @classmethod
    def build_optimizer(cls, cfg: CfgNode, model: torch.nn.Module) -> torch.optim.Optimizer:
        """AstroTrainer's optimisers plus Adadelta (the DeepShadows recipe) and Keras-style L2 parameter groups."""
        l2_conv, l2_dense = float(cfg.MODEL.CLASSIFIER.L2_CONV), float(cfg.MODEL.CLASSIFIER.L2_DENSE)
        if l2_conv or l2_dense:
            head = model.module.model.head if hasattr(model, "module") else model.model.head
            output_layers = [m for m in (getattr(head, "out", None), getattr(head, "fc", None)) if m is not None]
            params = keras_l2_param_groups(model, l2_conv, l2_dense, skip=output_layers)
        else:
            params = default_param_groups(cfg, model)
        if cfg.ASTRODET.SOLVER.OPTIMIZER.upper() != "ADADELTA":
            return make_optimizer(cfg, params)
        optim = torch.optim.Adadelta(
            params, lr=cfg.SOLVER.BASE_LR, rho=cfg.ASTRODET.CLS.ADADELTA_RHO, eps=cfg.ASTRODET.CLS.ADADELTA_EPS
        )
        return maybe_add_gradient_clipping(cfg, optim)


def trainer_class(cfg: CfgNode) -> type[AstroTrainer]:
    """The trainer a config needs: :class:`ClassificationTrainer` for ``AstroImageClassifier``, else AstroTrainer."""
    return ClassificationTrainer if cfg.MODEL.META_ARCHITECTURE == META_ARCH else AstroTrainer
