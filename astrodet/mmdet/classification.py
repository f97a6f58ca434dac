"""``AstroImageClassifier``: the core image classifier as an mmengine model in mmdet's MODELS.

mmdet has no image-classification task of its own (that is mmpretrain's), so this is the nearest mmengine-native
piece: a ``BaseModel`` with ``forward(inputs, data_samples, mode)`` in the ``loss`` / ``predict`` / ``tensor``
modes, around :func:`astrodet.models.classifier.build_classifier` (head, loss, question schema and targets are the
core's, identical to the Detectron2 side). Its data, transforms and metric are ``AstroClassificationDataset``
(:mod:`.datasets`), ``LoadCutout`` / ``CutoutResize`` / ``CutoutFlipRot`` / ``PackClsInputs`` (:mod:`.transforms`)
and ``AstroClassificationMetric`` (:mod:`.metrics`); docs/classification.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from mmdet.registry import MODELS
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement

from astrodet.mmdet import backbones as _backbones  # noqa: F401  (registers DeepShadowsTrunk, TimmEncoder)
from astrodet.models.classifier import ClassifierSpec, build_classifier

HEAD_KEYS = ("kind", "hidden", "dropout")


@MODELS.register_module()
class AstroImageClassifier(BaseModel):
    """Backbone (any ``MODELS`` backbone returning feature maps) + core head; see :class:`ImageClassifier`.

    Args:
        backbone: backbone config, e.g. ``dict(type='DeepShadowsTrunk', out_indices=(2,))``.
        head: ``dict(kind='dense'|'linear', hidden=1024, dropout=0.0)``.
        loss: ``bce``, ``ce``, ``soft_ce`` or ``dirichlet``.
        num_classes: classes of the data (2 for ``bce``).
        input_size: square input side; a dense head's size follows from it.
        in_channels: bands of the input.
        feature: which backbone output the head reads (default the last).
        vote_schema, vote_count_scale, class_weights: as :class:`~astrodet.models.classifier.ClassifierSpec`.
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
        head = dict(head or {})
        unknown = sorted(set(head) - set(HEAD_KEYS))
        if unknown:
            raise ValueError(f"head: unknown keys {unknown}; a head takes {list(HEAD_KEYS)}")
        spec = ClassifierSpec(
            loss=loss,
            num_classes=num_classes,
            head=head.pop("kind", "linear"),
            **head,
            feature=feature,
            input_size=input_size,
            in_channels=in_channels,
            vote_schema=vote_schema,
            vote_count_scale=vote_count_scale,
            class_weights=tuple(class_weights) if class_weights else None,
        )
        self.model = build_classifier(MODELS.build(backbone), spec)

    def forward(
        self, inputs: torch.Tensor, data_samples: list[BaseDataElement] | None = None, mode: str = "tensor"
    ) -> Any:
        logits = self.model(inputs)
        if mode == "tensor":
            return logits
        if mode == "loss":
            if data_samples is None:
                raise ValueError("mode 'loss' needs data_samples with gt_label / vote_fractions")
            votes = [s.get("vote_fractions") for s in data_samples]
            labels = torch.stack([s.gt_label for s in data_samples])
            targets = self.model.targets(labels, None if any(v is None for v in votes) else votes)
            return {"loss_cls": self.model.loss(logits, targets)}
        if mode == "predict":
            scores = self.model.predict(logits)
            samples_out = data_samples or [BaseDataElement() for _ in range(len(inputs))]
            for sample, score in zip(samples_out, scores, strict=True):
                if self.model.uses_votes:
                    sample.pred_votes = score.cpu()
                else:
                    sample.pred_score = score.cpu()
            return samples_out
        raise ValueError(f"mode must be 'tensor', 'loss' or 'predict', got {mode!r}")
