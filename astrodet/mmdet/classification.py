"""Image classification in MMDetection 3.x / mmengine: the same core classifier, data and metrics as Detectron2.

mmdet has no image-classification task of its own (that is mmpretrain's), so this module supplies the nearest
mmengine-native pieces, registered in mmdet's registries so an mmdet config (``default_scope='mmdet'``) builds them
and mmengine's ``Runner`` trains them:

- ``MODELS``: ``AstroImageClassifier``, an mmengine ``BaseModel`` wrapping :class:`astrodet.models.classifier.
  ImageClassifier` around any backbone in ``MODELS`` (``DeepShadowsTrunk``, ``ZoobotEncoder``, mmdet's ``ResNet``,
  ...); ``forward(inputs, data_samples, mode)`` with the ``loss`` / ``predict`` / ``tensor`` modes.
- ``DATASETS``: ``AstroClassificationDataset``, an astrodet whole-image COCO file (``ann_file``) or a real sample by
  name (``sample='perseus', split='train'``, converted into ``$ASTRODET_CACHE`` on first use).
- ``TRANSFORMS``: ``LoadCutout`` (PNG/JPEG/.npy/FITS), ``CutoutResize`` (centre crop + square resize, the geometry
  the Detectron2 mapper applies), ``CutoutFlipRot`` (flips and quarter turns), ``PackClsInputs``.
- ``METRICS``: ``AstroClassificationMetric``: the core metrics, and the report (report.json/.md, confusion matrix
  and ROC PNGs) when it has an ``output_dir``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmdet.registry import DATASETS, METRICS, MODELS, TRANSFORMS
from mmengine.dataset import BaseDataset
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement

from astrodet.data import samples
from astrodet.data.galaxyzoo import QUESTIONS, load_question_schema
from astrodet.data.wholeimage import crop_and_resize, load_cutout, read_classification_coco, vote_class_columns
from astrodet.evaluation.classification import (
    class_scores_from_votes,
    evaluate_classification,
    write_classification_report,
)
from astrodet.mmdet import backbones as _backbones  # noqa: F401  (registers DeepShadowsTrunk, ZoobotEncoder)
from astrodet.models.classifier import VOTE_LOSSES, ImageClassifier, build_head, num_outputs_for


@DATASETS.register_module()
class AstroClassificationDataset(BaseDataset):
    """Whole-image classification records: ``ann_file`` (astrodet COCO) or ``sample`` + ``split`` (real samples).

    ``metainfo['classes']`` is read from the file unless the config gives it; a mismatch is an error, so a model's
    ``num_classes`` and the data cannot silently disagree.
    """

    def __init__(self, ann_file: str = "", sample: str | None = None, split: str | None = None, **kwargs: Any) -> None:
        if sample is not None:
            if split is None:
                raise ValueError(f"sample {sample!r}: give split= (one of {samples.sample_spec(sample).splits})")
            ann_file = str(samples.ensure_sample(sample).splits[split])
        kwargs.setdefault("data_prefix", {"img_path": ""})
        super().__init__(ann_file=ann_file, **kwargs)

    def load_data_list(self) -> list[dict[str, Any]]:
        records, classes, info = read_classification_coco(self.ann_file)
        given = self._metainfo.get("classes")
        if given is not None and tuple(given) != tuple(classes):
            raise ValueError(f"{self.ann_file}: classes {classes} differ from the config's metainfo {list(given)}")
        self._metainfo["classes"] = tuple(classes)
        self._metainfo["vote_columns"] = info.get("vote_columns")
        self._metainfo["vote_class_columns"] = vote_class_columns(info)
        return [
            {
                "img_path": r["file_name"],
                "img_id": r["image_id"],
                "gt_label": r["label"],
                "vote_fractions": r.get("vote_fractions"),
            }
            for r in records
        ]


@TRANSFORMS.register_module()
class LoadCutout(BaseTransform):
    """``results['img']`` = the cutout as (H, W, C) float32 in the file's units (see ``wholeimage.load_cutout``)."""

    def __init__(self, channels: int | None = None) -> None:
        self.channels = channels

    def transform(self, results: dict) -> dict:
        image = load_cutout(results["img_path"])
        if self.channels is not None and image.shape[2] != self.channels:
            if image.shape[2] != 1:
                raise ValueError(f"{results['img_path']}: {image.shape[2]} bands, the config expects {self.channels}")
            image = np.repeat(image, self.channels, axis=2)
        results["img"] = image
        results["img_shape"] = results["ori_shape"] = image.shape[:2]
        return results


@TRANSFORMS.register_module()
class CutoutResize(BaseTransform):
    """Central crop (0 = none) then a square resize to ``size``: Detectron2's ClassificationMapper geometry."""

    def __init__(self, size: int, crop: int = 0) -> None:
        self.size = int(size)
        self.crop = int(crop)

    def transform(self, results: dict) -> dict:
        results["img"] = crop_and_resize(results["img"], self.crop, self.size)
        results["img_shape"] = results["img"].shape[:2]
        return results


@TRANSFORMS.register_module()
class CutoutFlipRot(BaseTransform):
    """Independent horizontal / vertical flips (p = 0.5 each) and a uniform quarter turn: the sky's symmetries."""

    def __init__(self, hflip: bool = True, vflip: bool = True, rot90: bool = True) -> None:
        self.hflip, self.vflip, self.rot90 = hflip, vflip, rot90

    def transform(self, results: dict) -> dict:
        image = results["img"]
        # mmengine seeds numpy's global generator per worker, as mmcv's own random transforms rely on
        if self.hflip and np.random.rand() < 0.5:  # noqa: NPY002
            image = image[:, ::-1]
        if self.vflip and np.random.rand() < 0.5:  # noqa: NPY002
            image = image[::-1]
        if self.rot90:
            image = np.rot90(image, int(np.random.randint(4)))  # noqa: NPY002
        results["img"] = np.ascontiguousarray(image)
        return results


@TRANSFORMS.register_module()
class PackClsInputs(BaseTransform):
    """``{'inputs': (C, H, W) float tensor, 'data_samples': BaseDataElement(gt_label, vote_fractions, img_id)}``."""

    def transform(self, results: dict) -> dict:
        image = np.ascontiguousarray(results["img"].transpose(2, 0, 1))
        sample = BaseDataElement(metainfo={"img_id": results.get("img_id"), "img_path": results.get("img_path")})
        sample.gt_label = torch.tensor(int(results["gt_label"]))
        if results.get("vote_fractions") is not None:
            sample.vote_fractions = torch.tensor(results["vote_fractions"], dtype=torch.float32)
        return {"inputs": torch.from_numpy(image), "data_samples": sample}


@MODELS.register_module(name="AstroImageClassifier")
class MMAstroImageClassifier(BaseModel):
    """Backbone (any ``MODELS`` backbone returning feature maps) + core head; see :class:`ImageClassifier`.

    Args:
        backbone: backbone config, e.g. ``dict(type='DeepShadowsTrunk', out_indices=(2,))``.
        head: ``dict(kind='dense'|'linear', hidden=1024, dropout=0.0)``.
        loss: ``bce``, ``ce``, ``soft_ce`` or ``dirichlet``.
        num_classes: classes of the data (2 for ``bce``).
        input_size: square input side; a dense head's size follows from it.
        in_channels: bands of the input.
        feature: which backbone output the head reads (default the last).
    """

    def __init__(
        self,
        backbone: dict,
        head: dict | None = None,
        loss: str = "ce",
        num_classes: int = 2,
        input_size: int = 64,
        in_channels: int = 3,
        feature: int = -1,
        vote_schema: str | None = None,
        vote_count_scale: float = 40.0,
        class_weights: Sequence[float] | None = None,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        head = dict(head or {"kind": "linear"})
        body = MODELS.build(backbone)
        with torch.no_grad():  # the chosen feature map's shape decides the head's input size
            was_training = body.training
            body.eval()
            out = body(torch.zeros(1, in_channels, input_size, input_size))
            body.train(was_training)
        feat = out[feature] if isinstance(out, list | tuple) else out
        schema = load_question_schema(vote_schema or QUESTIONS) if loss in VOTE_LOSSES else None
        num_outputs = num_outputs_for(loss, num_classes, len(schema.columns) if schema else 0)
        built_head = build_head(
            head.pop("kind", "linear"),
            in_channels=int(feat.shape[1]),
            num_outputs=num_outputs,
            feature_size=tuple(feat.shape[2:]),
            **head,
        )
        self.model = ImageClassifier(
            body,
            built_head,
            loss=loss,
            feature=feature,
            question_slices=schema.slices if schema else None,
            question_parents=schema.parents if schema else None,
            class_weights=class_weights,
        )
        self.loss_name = loss
        self.vote_count_scale = float(vote_count_scale)

    def _targets(self, data_samples: Sequence[BaseDataElement]) -> torch.Tensor:
        device = next(self.parameters()).device
        if self.loss_name in VOTE_LOSSES:
            votes = torch.stack([s.vote_fractions for s in data_samples]).to(device)
            return votes * self.vote_count_scale if self.loss_name == "dirichlet" else votes
        return torch.stack([s.gt_label for s in data_samples]).to(device)

    def forward(
        self, inputs: torch.Tensor, data_samples: list[BaseDataElement] | None = None, mode: str = "tensor"
    ) -> Any:
        logits = self.model(inputs)
        if mode == "tensor":
            return logits
        if mode == "loss":
            if data_samples is None:
                raise ValueError("mode 'loss' needs data_samples with gt_label / vote_fractions")
            return {"loss_cls": self.model.loss(logits, self._targets(data_samples))}
        if mode == "predict":
            scores = self.model.predict(logits)
            samples_out = data_samples or [BaseDataElement() for _ in range(len(inputs))]
            for sample, score in zip(samples_out, scores, strict=True):
                if self.loss_name in VOTE_LOSSES:
                    sample.pred_votes = score.cpu()
                else:
                    sample.pred_score = score.cpu()
            return samples_out
        raise ValueError(f"mode must be 'tensor', 'loss' or 'predict', got {mode!r}")


@METRICS.register_module()
class AstroClassificationMetric(BaseMetric):
    """accuracy, balanced accuracy, ROC AUC, log loss (+ vote RMSE); the full report into ``output_dir`` if set."""

    default_prefix = "astro_cls"

    def __init__(
        self,
        output_dir: str | None = None,
        n_bootstrap: int = 1000,
        seed: int = 0,
        meta: dict | None = None,
        collect_device: str = "cpu",
        prefix: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.output_dir = output_dir
        self.n_bootstrap = n_bootstrap
        self.seed = seed
        self.meta = dict(meta or {})
        self.report: dict[str, Any] | None = None

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            get = sample.get if isinstance(sample, dict) else lambda k, s=sample: getattr(s, k, None)
            votes_true = get("vote_fractions")
            self.results.append(
                {
                    "img_id": get("img_id"),
                    "label": int(get("gt_label")),
                    "scores": None if get("pred_score") is None else torch.as_tensor(get("pred_score")).tolist(),
                    "votes_pred": None if get("pred_votes") is None else torch.as_tensor(get("pred_votes")).tolist(),
                    "votes_true": None if votes_true is None else torch.as_tensor(votes_true).tolist(),
                }
            )

    def compute_metrics(self, results: list[dict]) -> dict[str, float]:
        meta = self.dataset_meta or {}
        classes = list(meta.get("classes") or [])
        results = sorted({r["img_id"]: r for r in results}.values(), key=lambda r: r["img_id"])
        labels = np.array([r["label"] for r in results], dtype=np.int64)
        votes_pred = votes_true = None
        if results and results[0]["votes_pred"] is not None:
            votes_pred = np.array([r["votes_pred"] for r in results])
            if results[0]["votes_true"] is not None:
                votes_true = np.array([r["votes_true"] for r in results])
            probs = class_scores_from_votes(
                votes_pred, meta.get("vote_columns"), meta.get("vote_class_columns"), classes
            )
        else:
            probs = np.array([r["scores"] for r in results], dtype=np.float64).reshape(len(results), -1)
        if not classes:
            classes = [str(k) for k in range(probs.shape[1])]
        result = evaluate_classification(
            labels,
            probs,
            classes,
            n_bootstrap=self.n_bootstrap,
            seed=self.seed,
            votes_true=votes_true,
            votes_pred=votes_pred,
        )
        if self.output_dir:
            self.report = write_classification_report(
                Path(self.output_dir), result, {"framework": "mmdetection", **self.meta}
            )
        out = {
            k: float("nan") if result.get(k) is None else float(result[k])
            for k in ("accuracy", "balanced_accuracy", "roc_auc", "log_loss")
        }
        if result.get("votes"):
            out["vote_rmse"] = float(result["votes"]["rmse"])
        return out
