"""An image classifier = any core backbone + a head + its loss: the one implementation both adapters wrap.

Why here and not in each adapter: the choice of feature map, the loss for each target kind and the mapping of
logits to probabilities must be identical in Detectron2 and MMDetection so their numbers are comparable. A backbone
may return a list/tuple of feature maps (astrodet's core backbones, mmdet backbones) or a dict (Detectron2's
``Backbone``); ``feature`` picks one by index or name.

Targets by loss: ``bce`` -> labels 0/1 and one logit; ``ce`` -> class indices and K logits; ``soft_ce`` ->
(N, A) vote fractions; ``dirichlet`` -> (N, A) vote counts. :meth:`ImageClassifier.predict` gives (N, K) class
probabilities for the class losses and (N, A) cumulative vote fractions (Kaggle layout) for the vote losses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from astrodet.models.deepshadows import DeepShadowsTrunk
from astrodet.models.heads import (
    HEADS,
    LOSSES,
    DenseHead,
    PooledLinearHead,
    binary_loss,
    class_probabilities,
    cumulative_fractions,
    dirichlet_multinomial_nll,
    question_probabilities,
    soft_question_ce,
    softmax_loss,
)
from astrodet.models.schemas import QUESTIONS, load_question_schema

VOTE_LOSSES = ("soft_ce", "dirichlet")


def num_outputs_for(loss: str, num_classes: int, num_answers: int = 0) -> int:
    """Logits a head needs: 1 for a binary BCE head, K for softmax, one per answer column for vote losses."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if loss == "bce":
        if num_classes != 2:
            raise ValueError(f"the binary (bce) loss needs exactly 2 classes, got {num_classes}")
        return 1
    if loss in VOTE_LOSSES:
        if num_answers <= 0:
            raise ValueError(f"loss {loss!r} needs the answer columns of a question schema")
        return num_answers
    return num_classes


def build_head(
    kind: str,
    *,
    in_channels: int,
    num_outputs: int,
    feature_size: Sequence[int] | None = None,
    hidden: int = 1024,
    dropout: float = 0.0,
) -> nn.Module:
    """``dense`` (flatten; needs ``feature_size`` (H, W) of the feature map) or ``linear`` (pooled)."""
    if kind == "dense":
        if feature_size is None:
            raise ValueError("a dense head flattens a fixed-size feature map: give feature_size (H, W)")
        h, w = (int(v) for v in feature_size)
        return DenseHead(in_channels * h * w, num_outputs, hidden=hidden, dropout=dropout)
    if kind == "linear":
        return PooledLinearHead(in_channels, num_outputs, dropout=dropout)
    raise ValueError(f"head must be one of {HEADS}, got {kind!r}")


class ImageClassifier(nn.Module):
    """backbone -> one feature map -> head; ``loss`` and ``predict`` interpret the logits for the target kind."""

    def __init__(
        self,
        backbone: nn.Module,
        head: nn.Module,
        *,
        loss: str = "ce",
        feature: int | str = -1,
        question_slices: Sequence[tuple[int, int]] | None = None,
        question_parents: Sequence[int | None] | None = None,
        class_weights: Sequence[float] | None = None,
        vote_count_scale: float = 40.0,
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if loss in VOTE_LOSSES and not question_slices:
            raise ValueError(f"loss {loss!r} needs question_slices (a Galaxy Zoo question schema)")
        self.backbone = backbone
        self.head = head
        self.loss_name = loss
        self.feature = feature
        self.question_slices = [tuple(s) for s in question_slices or []]
        self.question_parents = list(question_parents) if question_parents is not None else None
        self.vote_count_scale = float(vote_count_scale)
        weights = None if class_weights is None else torch.tensor(list(class_weights), dtype=torch.float32)
        self.register_buffer("class_weights", weights, persistent=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return pick_feature(self.backbone(x), self.feature)

    @property
    def uses_votes(self) -> bool:
        return self.loss_name in VOTE_LOSSES

    def targets(
        self, labels: Sequence[int] | torch.Tensor | None, vote_fractions: Sequence[Any] | torch.Tensor | None
    ) -> torch.Tensor:
        """What :meth:`loss` takes, from a batch's labels or vote fractions, on the model's device.

        ``dirichlet`` wants vote counts: fraction-only data (Galaxy Zoo 2 Kaggle) is scaled by ``vote_count_scale``
        volunteers per galaxy.
        """
        device = next(self.parameters()).device
        if self.uses_votes:
            if vote_fractions is None:
                raise ValueError(f"loss {self.loss_name!r} needs the images' vote fractions")
            votes = torch.stack([torch.as_tensor(v, dtype=torch.float32) for v in vote_fractions]).to(device)
            return votes * self.vote_count_scale if self.loss_name == "dirichlet" else votes
        if labels is None:
            raise ValueError(f"loss {self.loss_name!r} needs the images' class labels")
        return torch.as_tensor(labels, dtype=torch.long, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.loss_name == "bce":
            pos_weight = None
            if self.class_weights is not None:
                pos_weight = float(self.class_weights[1] / self.class_weights[0])
            return binary_loss(logits, targets, pos_weight)
        if self.loss_name == "ce":
            return softmax_loss(logits, targets, self.class_weights)
        if self.loss_name == "soft_ce":
            return soft_question_ce(logits, targets, self.question_slices)
        return dirichlet_multinomial_nll(logits, targets, self.question_slices)

    @torch.no_grad()
    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        if self.loss_name in VOTE_LOSSES:
            probs = question_probabilities(logits, self.question_slices, self.loss_name)
            if self.question_parents is not None:
                probs = cumulative_fractions(probs, self.question_slices, self.question_parents)
            return probs
        return class_probabilities(logits, self.loss_name)


def pick_feature(out: Any, feature: int | str) -> torch.Tensor:
    """One feature map from a backbone's output: a dict (Detectron2) by name or position, a list/tuple by index."""
    if isinstance(out, Mapping):
        key = feature if isinstance(feature, str) else list(out)[feature]
        return out[key]
    if isinstance(out, list | tuple):
        if isinstance(feature, str):
            raise ValueError(f"feature {feature!r} is a name, but the backbone returns a {type(out).__name__}")
        return out[feature]
    return out


@dataclass(frozen=True)
class ClassifierSpec:
    """A classifier in plain terms, as both frameworks' configs describe it (the backbone is built by the adapter).

    ``feature`` picks the backbone output the head reads (index, or name for dict outputs); ``input_size`` and
    ``in_channels`` size the dry run that tells a dense head its input; ``vote_schema`` is a question-schema JSON
    (default Galaxy Zoo 2) for the vote losses.
    """

    loss: str = "ce"
    num_classes: int = 2
    head: str = "linear"
    hidden: int = 1024
    dropout: float = 0.0
    feature: int | str = -1
    input_size: int = 64
    in_channels: int = 3
    vote_schema: str | None = None
    vote_count_scale: float = 40.0
    class_weights: tuple[float, ...] | None = None


def build_classifier(backbone: nn.Module, spec: ClassifierSpec) -> ImageClassifier:
    """backbone + the head ``spec`` asks for, sized by a dry run of the backbone at ``spec.input_size``."""
    with torch.no_grad():  # the feature map's real size at input_size (pooling floors, strided convs ceil)
        was_training = backbone.training
        out = backbone.eval()(torch.zeros(1, spec.in_channels, spec.input_size, spec.input_size))
        backbone.train(was_training)
    feat = pick_feature(out, spec.feature)
    schema = load_question_schema(spec.vote_schema or QUESTIONS) if spec.loss in VOTE_LOSSES else None
    num_outputs = num_outputs_for(spec.loss, spec.num_classes, len(schema.columns) if schema else 0)
    head = build_head(
        spec.head,
        in_channels=int(feat.shape[1]),
        num_outputs=num_outputs,
        feature_size=tuple(feat.shape[2:]),
        hidden=spec.hidden,
        dropout=spec.dropout,
    )
    return ImageClassifier(
        backbone,
        head,
        loss=spec.loss,
        feature=spec.feature,
        question_slices=schema.slices if schema else None,
        question_parents=schema.parents if schema else None,
        class_weights=list(spec.class_weights) if spec.class_weights else None,
        vote_count_scale=spec.vote_count_scale,
    )


def build_deepshadows_classifier(
    in_chans: int = 3, input_size: int = 64, dropout: float = 0.4, hidden: int = 1024, norm: str = "bn"
) -> ImageClassifier:
    """The DeepShadows CNN (Tanoglidis et al. 2021): three conv blocks + Dense 1024 ReLU + Dense 1, BCE.

    At 64x64x3 it has exactly 4,220,161 trainable parameters, as the paper reports.
    """
    if input_size % 8:
        raise ValueError(f"input_size must be a multiple of 8 (three 2x2 max-pools), got {input_size}")
    trunk = DeepShadowsTrunk(in_chans=in_chans, out_indices=(2,), dropout=dropout, norm=norm)
    side = input_size // 8
    head = build_head("dense", in_channels=trunk.channels[-1], num_outputs=1, feature_size=(side, side), hidden=hidden)
    return ImageClassifier(trunk, head, loss="bce")


def count_trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def keras_l2_param_groups(
    model: nn.Module, conv_l2: float, dense_l2: float, *, skip: Iterable[nn.Module] = ()
) -> list[dict[str, Any]]:
    """Parameter groups reproducing Keras ``kernel_regularizer=l2(c)`` as optimiser weight decay.

    Keras adds ``c * sum(w**2)`` to the loss, whose gradient is ``2 c w``: weight decay ``2 c`` on the kernels of
    conv layers (``conv_l2``) and of hidden dense layers (``dense_l2``); biases, norms and the layers in ``skip``
    (the output layer: DeepShadows regularises only its hidden dense layer) get none.
    """
    skipped = {id(p) for m in skip for p in m.parameters()}
    conv, dense, rest = [], [], []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            if name == "weight" and isinstance(module, nn.Conv2d) and id(param) not in skipped:
                conv.append(param)
            elif name == "weight" and isinstance(module, nn.Linear) and id(param) not in skipped:
                dense.append(param)
            else:
                rest.append(param)
    groups = [
        {"params": conv, "weight_decay": 2.0 * conv_l2},
        {"params": dense, "weight_decay": 2.0 * dense_l2},
        {"params": rest, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]
