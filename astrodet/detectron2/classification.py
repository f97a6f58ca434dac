"""Image classification in Detectron2: a meta-architecture, data mapper, evaluator and trainer around the core.

``AstroImageClassifier`` (META_ARCH_REGISTRY) is any registered backbone (``build_backbone(cfg)``) plus a core head
(:mod:`astrodet.models.classifier`); it trains through Detectron2's DefaultTrainer machinery via
:class:`ClassificationTrainer`, which only swaps in a mapper yielding image + label, the classification evaluator
(metrics and report from :mod:`astrodet.evaluation.classification`) and the optimisers the classification recipes
need (Adadelta for DeepShadows, Keras-style L2). Datasets are astrodet's whole-image COCO files
(:mod:`astrodet.data.wholeimage`): registered from ``cfg.ASTRODET.CLS.REGISTER`` or, for the real samples, by
name (``astrodet_perseus_train``, ``astrodet_gz2_val``, ``astrodet_deepshadows_test``, ...; converted into the cache
on first use). ``tools/train_net.py`` picks the trainer with :func:`trainer_class`.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from detectron2.config import CfgNode
from detectron2.config import CfgNode as CN
from detectron2.data import DatasetCatalog, MetadataCatalog, build_detection_test_loader, build_detection_train_loader
from detectron2.data import transforms as T
from detectron2.evaluation import DatasetEvaluator
from detectron2.layers import ShapeSpec
from detectron2.modeling import META_ARCH_REGISTRY, build_backbone
from detectron2.solver.build import maybe_add_gradient_clipping
from detectron2.structures import BoxMode
from detectron2.utils import comm
from torch import nn

from astrodet.data import samples
from astrodet.data.wholeimage import crop_and_resize, load_cutout, read_classification_coco, vote_class_columns
from astrodet.detectron2.augment import RandomRot90
from astrodet.detectron2.trainer import AstroTrainer, default_param_groups, make_optimizer
from astrodet.evaluation.classification import (
    class_scores_from_votes,
    evaluate_classification,
    write_classification_report,
)
from astrodet.models.classifier import (
    VOTE_LOSSES,
    ImageClassifier,
    build_head,
    keras_l2_param_groups,
    num_outputs_for,
)

logger = logging.getLogger(__name__)
META_ARCH = "AstroImageClassifier"
EVALUATOR_TYPE = "astrodet_classification"


def add_classification_config(cfg: CfgNode) -> CfgNode:
    """Add the classification keys (called from ``add_astrodet_config``); returns ``cfg``."""
    cfg.MODEL.CLASSIFIER = CN()
    # "dense": flatten + hidden layer (DeepShadows; fixed input size); "linear": global pooling + linear.
    cfg.MODEL.CLASSIFIER.HEAD = "linear"
    # "bce" (binary, one logit), "ce" (softmax), "soft_ce" / "dirichlet" (Galaxy Zoo vote fractions / counts).
    cfg.MODEL.CLASSIFIER.LOSS = "ce"
    cfg.MODEL.CLASSIFIER.NUM_CLASSES = 2
    # Backbone output the head reads; "" = the coarsest one.
    cfg.MODEL.CLASSIFIER.IN_FEATURE = ""
    # Hidden units of the dense head (DeepShadows: 1024).
    cfg.MODEL.CLASSIFIER.HIDDEN_DIM = 1024
    cfg.MODEL.CLASSIFIER.DROPOUT = 0.0
    # Per-class loss weights (empty: equal); for bce, weight[1] / weight[0] is the positive-class weight.
    cfg.MODEL.CLASSIFIER.CLASS_WEIGHTS = []
    # Question schema (JSON) of the vote losses; "" = Galaxy Zoo 2 Kaggle (astrodet/data/schemas/gz2_questions.json).
    cfg.MODEL.CLASSIFIER.VOTE_SCHEMA = ""
    # dirichlet loss on fraction-only data: counts = fractions x this many volunteers (GZ2: about 40 per galaxy).
    cfg.MODEL.CLASSIFIER.VOTE_COUNT_SCALE = 40.0
    # Keras-style L2 coefficients (loss += c * sum(w^2)) on conv kernels and hidden dense kernels (DeepShadows:
    # 0.13 and 0.12); 0 uses SOLVER.WEIGHT_DECAY as usual.
    cfg.MODEL.CLASSIFIER.L2_CONV = 0.0
    cfg.MODEL.CLASSIFIER.L2_DENSE = 0.0

    cfg.ASTRODET.CLS = CN()
    # Whole-image COCO files to register, [[dataset_name, path/to/file.json], ...] (astrodet convert catalog /
    # galaxyzoo). The real samples need no entry: astrodet_<sample>_<split> (perseus, perseus_all, gz2, deepshadows).
    cfg.ASTRODET.CLS.REGISTER = []
    # Central crop (pixels, 0 = none) then a square resize to INPUT_SIZE, in training and testing.
    cfg.ASTRODET.CLS.CENTER_CROP = 0
    cfg.ASTRODET.CLS.INPUT_SIZE = 64
    # Adadelta's decay and epsilon when ASTRODET.SOLVER.OPTIMIZER is "ADADELTA" (Keras defaults, as DeepShadows).
    cfg.ASTRODET.CLS.ADADELTA_RHO = 0.95
    cfg.ASTRODET.CLS.ADADELTA_EPS = 1e-7
    # Bootstrap resamples for the report's confidence intervals (seeded with SEED, or 0).
    cfg.ASTRODET.CLS.BOOTSTRAP = 1000
    # Images per batch at evaluation.
    cfg.ASTRODET.CLS.TEST_BATCH = 32
    return cfg


# --- datasets ----------------------------------------------------------------------------------------------------


def sample_dataset_name(sample: str, split: str) -> str:
    return f"astrodet_{sample}_{split}"


def load_classification_records(json_file: str | Path) -> list[dict[str, Any]]:
    """Detectron2 dataset dicts of a whole-image COCO file (:func:`read_classification_coco`'s records).

    Each dict also carries the whole-image box as ``annotations`` so Detectron2's generic dataset code (empty-image
    filtering, class histograms) works unchanged.
    """
    records, _, _ = read_classification_coco(json_file)
    for record in records:
        box = [0.0, 0.0, float(record["width"]), float(record["height"])]
        record["annotations"] = [
            {"bbox": box, "bbox_mode": BoxMode.XYWH_ABS, "category_id": record["label"], "iscrowd": 0}
        ]
    return records


def _reset(name: str) -> None:
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def register_classification_coco(dataset_name: str, json_file: str | Path) -> None:
    """Register a whole-image COCO file (class names and vote columns read from it)."""
    path = Path(json_file).resolve()
    _, classes, info = read_classification_coco(path)
    _reset(dataset_name)
    DatasetCatalog.register(dataset_name, lambda: load_classification_records(path))
    MetadataCatalog.get(dataset_name).set(
        json_file=str(path),
        image_root=str(path.parent),
        evaluator_type=EVALUATOR_TYPE,
        thing_classes=classes,
        vote_columns=info.get("vote_columns"),
        vote_class_columns=vote_class_columns(info),
    )


def register_sample_datasets() -> None:
    """Register every split of every real sample under ``astrodet_<sample>_<split>``; conversion waits for use."""
    for sample, spec in samples.SAMPLES.items():
        for split in spec.splits:
            name = sample_dataset_name(sample, split)
            _reset(name)

            def load(sample: str = sample, split: str = split) -> list[dict[str, Any]]:
                dataset = samples.ensure_sample(sample)
                return load_classification_records(dataset.splits[split])

            DatasetCatalog.register(name, load)
            MetadataCatalog.get(name).set(
                evaluator_type=EVALUATOR_TYPE, thing_classes=list(spec.categories), astrodet_sample=sample
            )


def prepare_classification_datasets(cfg: CfgNode) -> None:
    """Register the config's files (idempotent) and convert the samples its datasets name, before loaders ask."""
    for entry in cfg.ASTRODET.CLS.REGISTER:
        if len(entry) != 2:
            raise ValueError(f"cfg.ASTRODET.CLS.REGISTER entries must be [name, json_file], got {entry!r}")
        register_classification_coco(str(entry[0]), str(entry[1]))
    for name in list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST):
        sample = MetadataCatalog.get(name).get("astrodet_sample", None) if name in DatasetCatalog.list() else None
        if sample is not None:
            samples.ensure_sample(sample)


# --- model -------------------------------------------------------------------------------------------------------


def _question_schema(cfg: CfgNode):
    from astrodet.data.galaxyzoo import QUESTIONS, load_question_schema

    return load_question_schema(cfg.MODEL.CLASSIFIER.VOTE_SCHEMA or QUESTIONS)


@META_ARCH_REGISTRY.register()
class AstroImageClassifier(nn.Module):
    """Backbone (BACKBONE_REGISTRY) + core head. Training returns ``{"loss_cls"}``; inference, per image,
    ``{"class_scores": (K,) probabilities}`` (plus ``"vote_fractions"`` for vote losses)."""

    def __init__(self, cfg: CfgNode) -> None:
        super().__init__()
        mc = cfg.MODEL.CLASSIFIER
        backbone = build_backbone(cfg, ShapeSpec(channels=len(cfg.MODEL.PIXEL_MEAN)))
        shapes = backbone.output_shape()
        feature = mc.IN_FEATURE or max(shapes, key=lambda k: shapes[k].stride)
        if feature not in shapes:
            raise ValueError(f"MODEL.CLASSIFIER.IN_FEATURE {feature!r} is not a backbone output ({sorted(shapes)})")
        spec = shapes[feature]
        size = int(cfg.ASTRODET.CLS.INPUT_SIZE)
        with torch.no_grad():  # the feature map's real size at INPUT_SIZE (pooling floors, strided convs ceil)
            was_training = backbone.training
            out = backbone.eval()(torch.zeros(1, len(cfg.MODEL.PIXEL_MEAN), size, size))[feature]
            backbone.train(was_training)
        self.loss_name = mc.LOSS
        schema = _question_schema(cfg) if mc.LOSS in VOTE_LOSSES else None
        num_outputs = num_outputs_for(mc.LOSS, mc.NUM_CLASSES, len(schema.columns) if schema else 0)
        head = build_head(
            mc.HEAD,
            in_channels=spec.channels,
            num_outputs=num_outputs,
            feature_size=tuple(out.shape[2:]),
            hidden=mc.HIDDEN_DIM,
            dropout=mc.DROPOUT,
        )
        self.model = ImageClassifier(
            backbone,
            head,
            loss=mc.LOSS,
            feature=feature,
            question_slices=schema.slices if schema else None,
            question_parents=schema.parents if schema else None,
            class_weights=list(mc.CLASS_WEIGHTS) or None,
        )
        self.vote_count_scale = float(mc.VOTE_COUNT_SCALE)
        self.register_buffer("pixel_mean", torch.tensor(cfg.MODEL.PIXEL_MEAN).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(cfg.MODEL.PIXEL_STD).view(-1, 1, 1), False)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    @property
    def backbone(self) -> nn.Module:
        return self.model.backbone

    def preprocess(self, batched_inputs: Sequence[dict[str, Any]]) -> torch.Tensor:
        images = torch.stack([d["image"].to(self.device, torch.float32) for d in batched_inputs])
        return (images - self.pixel_mean) / self.pixel_std

    def targets(self, batched_inputs: Sequence[dict[str, Any]]) -> torch.Tensor:
        if self.loss_name in VOTE_LOSSES:
            votes = torch.stack([torch.as_tensor(d["vote_fractions"], dtype=torch.float32) for d in batched_inputs])
            if self.loss_name == "dirichlet":
                votes = votes * self.vote_count_scale
            return votes.to(self.device)
        labels = [
            d["label"] if "label" in d else int(d["instances"].gt_classes[0]) for d in batched_inputs
        ]  # "instances": inputs mapped by Detectron2's DatasetMapper from the whole-image box
        return torch.as_tensor(labels, dtype=torch.long, device=self.device)

    def forward(self, batched_inputs: Sequence[dict[str, Any]]):
        logits = self.model(self.preprocess(batched_inputs))
        if self.training:
            return {"loss_cls": self.model.loss(logits, self.targets(batched_inputs))}
        scores = self.model.predict(logits)
        if self.loss_name in VOTE_LOSSES:
            return [{"vote_fractions": s} for s in scores]
        return [{"class_scores": s} for s in scores]


# --- data mapping ------------------------------------------------------------------------------------------------


class ClassificationMapper:
    """Dataset dict -> ``{"image": (C, H, W) float tensor, "label", ...}``: crop, square resize, sky augmentations."""

    def __init__(self, cfg: CfgNode, is_train: bool) -> None:
        self.is_train = is_train
        self.channels = len(cfg.MODEL.PIXEL_MEAN)
        self.crop = int(cfg.ASTRODET.CLS.CENTER_CROP)
        self.size = int(cfg.ASTRODET.CLS.INPUT_SIZE)
        self.augmentations: list[T.Augmentation] = []
        if is_train:
            aug = cfg.ASTRODET.AUG
            if aug.HFLIP:
                self.augmentations.append(T.RandomFlip(prob=0.5, horizontal=True, vertical=False))
            if aug.VFLIP:
                self.augmentations.append(T.RandomFlip(prob=0.5, horizontal=False, vertical=True))
            if aug.ROT90:
                self.augmentations.append(RandomRot90())

    def __call__(self, dataset_dict: dict[str, Any]) -> dict[str, Any]:
        d = copy.deepcopy(dataset_dict)
        image = load_cutout(d["file_name"])
        if image.shape[2] != self.channels:
            if image.shape[2] == 1:
                image = np.repeat(image, self.channels, axis=2)
            else:
                raise ValueError(
                    f"{d['file_name']}: {image.shape[2]} bands, but MODEL.PIXEL_MEAN has {self.channels} entries"
                )
        image = crop_and_resize(image, self.crop, self.size)
        if self.augmentations:
            aug_input = T.AugInput(image)
            T.AugmentationList(self.augmentations)(aug_input)
            image = aug_input.image
        d["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)), dtype=torch.float32)
        d["height"], d["width"] = self.size, self.size
        d.pop("annotations", None)
        return d


# --- evaluation --------------------------------------------------------------------------------------------------


class ClassificationEvaluator(DatasetEvaluator):
    """Collects labels and class probabilities; computes the core metrics and writes report.json/.md and PNGs."""

    def __init__(self, dataset_name: str, cfg: CfgNode, output_dir: str | None = None, distributed: bool = True):
        self._dataset_name = dataset_name
        self._output_dir = output_dir
        self._distributed = distributed
        meta = MetadataCatalog.get(dataset_name)
        self._classes = list(meta.thing_classes)
        self._vote_columns = meta.get("vote_columns", None)
        self._vote_class_columns = meta.get("vote_class_columns", None)
        self._n_bootstrap = int(cfg.ASTRODET.CLS.BOOTSTRAP)
        self._seed = max(int(cfg.SEED), 0)
        self._meta = {
            "framework": "detectron2",
            "dataset": dataset_name,
            "meta_architecture": cfg.MODEL.META_ARCHITECTURE,
            "backbone": cfg.MODEL.BACKBONE.NAME,
            "head": cfg.MODEL.CLASSIFIER.HEAD,
            "loss": cfg.MODEL.CLASSIFIER.LOSS,
            "input_size": cfg.ASTRODET.CLS.INPUT_SIZE,
            "optimizer": cfg.ASTRODET.SOLVER.OPTIMIZER,
            "base_lr": cfg.SOLVER.BASE_LR,
            "ims_per_batch": cfg.SOLVER.IMS_PER_BATCH,
            "max_iter": cfg.SOLVER.MAX_ITER,
            "weights": cfg.MODEL.WEIGHTS or None,
        }
        self.report: dict[str, Any] | None = None
        self.reset()

    def reset(self) -> None:
        self._rows: list[tuple[int, int, list[float], list[float] | None, list[float] | None]] = []

    def process(self, inputs: Sequence[dict[str, Any]], outputs: Sequence[dict[str, Any]]) -> None:
        for inp, out in zip(inputs, outputs, strict=True):
            votes_pred = out["vote_fractions"].cpu().tolist() if "vote_fractions" in out else None
            scores = out["class_scores"].cpu().tolist() if "class_scores" in out else []
            self._rows.append((int(inp["image_id"]), int(inp["label"]), scores, inp.get("vote_fractions"), votes_pred))

    def evaluate(self) -> dict[str, Any]:
        rows = self._rows
        if self._distributed:
            comm.synchronize()
            gathered = comm.gather(rows, dst=0)
            if not comm.is_main_process():
                return {}
            rows = [r for part in gathered for r in part]
        rows = sorted({r[0]: r for r in rows}.values())  # one row per image, in image-id order
        labels = np.array([r[1] for r in rows], dtype=np.int64)
        votes_true = votes_pred = None
        if rows and rows[0][4] is not None:
            votes_pred = np.array([r[4] for r in rows], dtype=np.float64)
            votes_true = np.array([r[3] for r in rows], dtype=np.float64) if rows[0][3] is not None else None
            probs = class_scores_from_votes(votes_pred, self._vote_columns, self._vote_class_columns, self._classes)
        else:
            probs = np.array([r[2] for r in rows], dtype=np.float64).reshape(len(rows), len(self._classes))
        result = evaluate_classification(
            labels,
            probs,
            self._classes,
            n_bootstrap=self._n_bootstrap,
            seed=self._seed,
            votes_true=votes_true,
            votes_pred=votes_pred,
        )
        if self._output_dir:
            self.report = write_classification_report(self._output_dir, result, self._meta)
            logger.info("classification report written to %s", os.path.join(self._output_dir, "report.md"))
        keys = ("accuracy", "balanced_accuracy", "roc_auc", "log_loss")
        metrics = {k: float("nan") if result.get(k) is None else float(result[k]) for k in keys}
        if result.get("votes"):
            metrics["vote_rmse"] = float(result["votes"]["rmse"])
        return {"classification": metrics}


# --- trainer -----------------------------------------------------------------------------------------------------


class ClassificationTrainer(AstroTrainer):
    """AstroTrainer with classification data, evaluation and optimisers; the loop and hooks stay Detectron2's."""

    @classmethod
    def build_train_loader(cls, cfg: CfgNode):
        prepare_classification_datasets(cfg)
        return build_detection_train_loader(cfg, mapper=ClassificationMapper(cfg, is_train=True))

    @classmethod
    def build_test_loader(cls, cfg: CfgNode, dataset_name: str):
        prepare_classification_datasets(cfg)
        return build_detection_test_loader(
            cfg, dataset_name, mapper=ClassificationMapper(cfg, is_train=False), batch_size=cfg.ASTRODET.CLS.TEST_BATCH
        )

    @classmethod
    def build_optimizer(cls, cfg: CfgNode, model: nn.Module) -> torch.optim.Optimizer:
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

    @classmethod
    def build_evaluator(cls, cfg: CfgNode, dataset_name: str, output_folder: str | None = None) -> DatasetEvaluator:
        if output_folder is None:
            output_folder = cls.report_folder(cfg, dataset_name)
        return ClassificationEvaluator(dataset_name, cfg, output_dir=output_folder)


def trainer_class(cfg: CfgNode) -> type[AstroTrainer]:
    """The trainer a config needs: :class:`ClassificationTrainer` for ``AstroImageClassifier``, else AstroTrainer."""
    return ClassificationTrainer if cfg.MODEL.META_ARCHITECTURE == META_ARCH else AstroTrainer


register_sample_datasets()
