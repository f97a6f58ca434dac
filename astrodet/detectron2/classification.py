"""Image classification in Detectron2: the meta-architecture, data mapper and evaluator around the core.

``AstroImageClassifier`` (META_ARCH_REGISTRY) is any registered backbone (``build_backbone(cfg)``) wrapped by the
core's :func:`astrodet.models.classifier.build_classifier`; this module only translates ``cfg`` into a
:class:`ClassifierSpec` and Detectron2's input dicts into the core's targets. :class:`ClassificationEvaluator`
collects one row per image and leaves the scoring and the report to :mod:`astrodet.evaluation.classification`.
The datasets are registered by :mod:`astrodet.detectron2.datasets`; the trainer is
:class:`astrodet.detectron2.trainer.ClassificationTrainer`.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from detectron2.config import CfgNode
from detectron2.data import MetadataCatalog
from detectron2.data import transforms as T
from detectron2.evaluation import DatasetEvaluator
from detectron2.layers import ShapeSpec
from detectron2.modeling import META_ARCH_REGISTRY, build_backbone
from detectron2.utils import comm
from torch import nn

from astrodet.data.wholeimage import crop_and_resize, load_cutout
from astrodet.detectron2.augment import sky_augmentations
from astrodet.evaluation.classification import headline_metrics, score_classification, write_classification_report
from astrodet.models.classifier import ClassifierSpec, build_classifier

logger = logging.getLogger(__name__)
META_ARCH = "AstroImageClassifier"


def classifier_spec(cfg: CfgNode, feature: str) -> ClassifierSpec:
    """The core's description of the classifier ``cfg.MODEL.CLASSIFIER`` asks for, reading backbone output
    ``feature`` of ``ASTRODET.CLS.INPUT_SIZE`` images with one channel per ``MODEL.PIXEL_MEAN`` entry."""
    mc = cfg.MODEL.CLASSIFIER
    return ClassifierSpec(
        loss=mc.LOSS,
        num_classes=int(mc.NUM_CLASSES),
        head=mc.HEAD,
        hidden=int(mc.HIDDEN_DIM),
        dropout=float(mc.DROPOUT),
        feature=feature,
        input_size=int(cfg.ASTRODET.CLS.INPUT_SIZE),
        in_channels=len(cfg.MODEL.PIXEL_MEAN),
        vote_schema=mc.VOTE_SCHEMA or None,
        vote_count_scale=float(mc.VOTE_COUNT_SCALE),
        class_weights=tuple(mc.CLASS_WEIGHTS) or None,
    )


@META_ARCH_REGISTRY.register()
class AstroImageClassifier(nn.Module):
    """Backbone (BACKBONE_REGISTRY) + core head. Training returns ``{"loss_cls"}``; inference, per image,
    ``{"class_scores": (K,) probabilities}`` (plus ``"vote_fractions"`` for vote losses)."""

    def __init__(self, cfg: CfgNode) -> None:
        super().__init__()
        backbone = build_backbone(cfg, ShapeSpec(channels=len(cfg.MODEL.PIXEL_MEAN)))
        shapes = backbone.output_shape()
        feature = cfg.MODEL.CLASSIFIER.IN_FEATURE or max(shapes, key=lambda k: shapes[k].stride)
        if feature not in shapes:
            raise ValueError(f"MODEL.CLASSIFIER.IN_FEATURE {feature!r} is not a backbone output ({sorted(shapes)})")
        self.model = build_classifier(backbone, classifier_spec(cfg, feature))
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
        """The core's loss targets: vote fractions, or labels (``"label"``, or the class of the whole-image box in
        ``"instances"`` when Detectron2's own DatasetMapper mapped the inputs)."""
        if self.model.uses_votes:
            return self.model.targets(None, [d["vote_fractions"] for d in batched_inputs])
        labels = [d["label"] if "label" in d else int(d["instances"].gt_classes[0]) for d in batched_inputs]
        return self.model.targets(labels, None)

    def forward(self, batched_inputs: Sequence[dict[str, Any]]):
        logits = self.model(self.preprocess(batched_inputs))
        if self.training:
            return {"loss_cls": self.model.loss(logits, self.targets(batched_inputs))}
        scores = self.model.predict(logits)
        if self.model.uses_votes:
            return [{"vote_fractions": s} for s in scores]
        return [{"class_scores": s} for s in scores]


# --- data mapping ------------------------------------------------------------------------------------------------


class ClassificationMapper:
    """Dataset dict -> ``{"image": (C, H, W) float tensor, "label", ...}``: crop, square resize, sky augmentations."""

    def __init__(self, cfg: CfgNode, is_train: bool) -> None:
        self.is_train = is_train
        self.channels = len(cfg.MODEL.PIXEL_MEAN)
        self.crop = int(cfg.ASTRODET.CLS.CENTRE_CROP)
        self.size = int(cfg.ASTRODET.CLS.INPUT_SIZE)
        self.augmentations: list[T.Augmentation] = sky_augmentations(cfg) if is_train else []

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
    """Collects one row per image (label and class probabilities or vote fractions); the core scores the rows and
    writes report.json/.md and PNGs."""

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
        self._rows: list[dict[str, Any]] = []

    def process(self, inputs: Sequence[dict[str, Any]], outputs: Sequence[dict[str, Any]]) -> None:
        for inp, out in zip(inputs, outputs, strict=True):
            row: dict[str, Any] = {"image_id": int(inp["image_id"]), "label": int(inp["label"])}
            if "vote_fractions" in out:
                row.update(votes_pred=out["vote_fractions"].cpu().tolist(), votes_true=inp.get("vote_fractions"))
            else:
                row["scores"] = out["class_scores"].cpu().tolist()
            self._rows.append(row)

    def evaluate(self) -> dict[str, Any]:
        rows = self._rows
        if self._distributed:
            comm.synchronize()
            gathered = comm.gather(rows, dst=0)
            if not comm.is_main_process():
                return {}
            rows = [r for part in gathered for r in part]
        result = score_classification(
            rows,
            self._classes,
            vote_columns=self._vote_columns,
            vote_class_columns=self._vote_class_columns,
            n_bootstrap=self._n_bootstrap,
            seed=self._seed,
        )
        if self._output_dir:
            self.report = write_classification_report(self._output_dir, result, self._meta)
            logger.info("classification report written to %s", os.path.join(self._output_dir, "report.md"))
        return {"classification": headline_metrics(result)}
