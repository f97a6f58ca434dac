"""Classification heads and their losses: plain torch, shared by both framework adapters.

Three kinds of target, three heads:

- *binary* (DeepShadows: LSBG vs artefact; Perseus: dwarf candidate vs rest): :class:`DenseHead` is the paper's
  flatten -> Dense 1024 ReLU -> Dense 1, trained with binary cross-entropy on the logit (the sigmoid lives in the
  loss and in :func:`class_probabilities`, which is numerically safer than a sigmoid layer).
- *multi-class* (Kim's 6 Galaxy Zoo classes): :class:`PooledLinearHead`, global average pooling + linear, softmax
  cross-entropy; it works at any input size, which a flattening head does not.
- *vote fractions* (Galaxy Zoo's decision tree): one logit per answer column, grouped by question
  (``slices`` [start, stop) per question, from ``astrodet/models/schemas/gz2_questions.json``). Two losses:
  :func:`soft_question_ce`, the cross-entropy of each question's softmax against the observed answer fractions,
  weighted by the fraction of volunteers that reached the question (the Kaggle table's cumulative fractions are
  exactly fraction x reach, so the target is the column itself); and :func:`dirichlet_multinomial_nll`, Zoobot's
  loss on vote *counts*, with per-answer concentrations ``1 + 99 sigmoid(logit)`` (Walmsley et al. 2022). Counts can
  be fractions x the number of volunteers when only fractions are known. Questions nobody answered add nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

HEADS = ("dense", "linear")
LOSSES = ("bce", "ce", "soft_ce", "dirichlet")
DM_MIN, DM_RANGE = 1.0, 99.0  # Zoobot's Dirichlet concentrations: 1 + 99 * sigmoid(logit), in (1, 100)


class DenseHead(nn.Module):
    """Flatten -> Linear(in_features, hidden) -> ReLU -> Dropout -> Linear(hidden, num_outputs).

    With a 64x64 input the DeepShadows trunk gives 8x8x64 = 4096 features, so the paper's head has 4096 * 1024 +
    1024 + 1024 + 1 = 4,196,353 parameters. The flatten fixes the input size: use :class:`PooledLinearHead` for
    variable sizes.
    """

    def __init__(self, in_features: int, num_outputs: int = 1, hidden: int = 1024, dropout: float = 0.0) -> None:
        super().__init__()
        self.in_features = int(in_features)
        self.hidden = nn.Linear(self.in_features, hidden)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = torch.flatten(x, 1)
        if flat.shape[1] != self.in_features:
            raise ValueError(
                f"DenseHead expects {self.in_features} flattened features, got {flat.shape[1]} (shape "
                f"{tuple(x.shape[1:])}): the input size differs from the one the head was built for"
            )
        return self.out(self.dropout(F.relu(self.hidden(flat))))


class PooledLinearHead(nn.Module):
    """Global average pooling -> Dropout -> Linear(channels, num_outputs): any input size."""

    def __init__(self, in_channels: int, num_outputs: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1) if x.ndim == 4 else x
        return self.fc(self.dropout(pooled))


def binary_loss(logits: torch.Tensor, labels: torch.Tensor, pos_weight: float | None = None) -> torch.Tensor:
    """Binary cross-entropy on one logit per image; ``labels`` are 0/1."""
    weight = None if pos_weight is None else torch.tensor(pos_weight, device=logits.device, dtype=logits.dtype)
    return F.binary_cross_entropy_with_logits(
        logits.reshape(-1), labels.to(logits.dtype).reshape(-1), pos_weight=weight
    )


def softmax_loss(logits: torch.Tensor, labels: torch.Tensor, class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax cross-entropy; ``labels`` are class indices 0..K-1."""
    return F.cross_entropy(logits, labels.long(), weight=class_weights)


def _check_slices(width: int, slices: Sequence[tuple[int, int]]) -> None:
    if not slices or slices[0][0] != 0 or slices[-1][1] != width:
        raise ValueError(f"question slices {list(slices)} must tile the {width} answer columns")


def soft_question_ce(logits: torch.Tensor, fractions: torch.Tensor, slices: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Sum over questions of -sum_a f_a log softmax_q(logits)_a, averaged over the batch.

    ``fractions`` may be cumulative (Kaggle) or per question: either way each question's term is its answer
    fractions' cross-entropy, weighted by how many volunteers reached it.
    """
    _check_slices(logits.shape[1], slices)
    total = logits.new_zeros(())
    for start, stop in slices:
        log_p = F.log_softmax(logits[:, start:stop], dim=1)
        total = total - (fractions[:, start:stop].to(log_p.dtype) * log_p).sum(dim=1).mean()
    return total


def dirichlet_concentrations(logits: torch.Tensor) -> torch.Tensor:
    return DM_MIN + DM_RANGE * torch.sigmoid(logits)


def dirichlet_multinomial_nll(
    logits: torch.Tensor, counts: torch.Tensor, slices: Sequence[tuple[int, int]]
) -> torch.Tensor:
    """Negative log-likelihood of vote ``counts`` under a Dirichlet-multinomial per question, batch mean.

    ``log p(k | alpha) = lgamma(n + 1) - sum lgamma(k + 1) + lgamma(A) - lgamma(n + A) + sum [lgamma(k + alpha) -
    lgamma(alpha)]`` with ``n = sum k``, ``A = sum alpha``; a question with n = 0 contributes exactly 0.
    """
    _check_slices(logits.shape[1], slices)
    alpha = dirichlet_concentrations(logits)
    counts = counts.to(alpha.dtype)
    total = alpha.new_zeros(())
    for start, stop in slices:
        a, k = alpha[:, start:stop], counts[:, start:stop]
        n, a_sum = k.sum(dim=1), a.sum(dim=1)
        log_p = (
            torch.lgamma(n + 1)
            - torch.lgamma(k + 1).sum(dim=1)
            + torch.lgamma(a_sum)
            - torch.lgamma(n + a_sum)
            + (torch.lgamma(k + a) - torch.lgamma(a)).sum(dim=1)
        )
        total = total - log_p.mean()
    return total


def question_probabilities(
    logits: torch.Tensor, slices: Sequence[tuple[int, int]], loss: str = "soft_ce"
) -> torch.Tensor:
    """Per-question answer probabilities: softmax (soft_ce) or the Dirichlet mean alpha / sum(alpha) (dirichlet)."""
    _check_slices(logits.shape[1], slices)
    parts = []
    for start, stop in slices:
        if loss == "dirichlet":
            a = dirichlet_concentrations(logits[:, start:stop])
            parts.append(a / a.sum(dim=1, keepdim=True))
        else:
            parts.append(F.softmax(logits[:, start:stop], dim=1))
    return torch.cat(parts, dim=1)


def cumulative_fractions(
    probabilities: torch.Tensor, slices: Sequence[tuple[int, int]], parents: Sequence[int | None]
) -> torch.Tensor:
    """Per-question probabilities -> Kaggle-style cumulative fractions (each question scaled by its reach).

    ``parents[q]`` is the answer column leading to question q (None: everyone); questions must come after the
    question of their parent answer, as in the Galaxy Zoo 2 schema.
    """
    out = probabilities.clone()
    for (start, stop), parent in zip(slices, parents, strict=True):
        if parent is not None:
            if parent >= start:
                raise ValueError(f"question [{start}, {stop}) comes before its parent answer column {parent}")
            out[:, start:stop] = out[:, start:stop] * out[:, parent : parent + 1]
    return out


def class_probabilities(logits: torch.Tensor, loss: str) -> torch.Tensor:
    """(N, K) class probabilities: sigmoid -> [1 - p, p] for one binary logit, softmax otherwise."""
    if loss == "bce":
        p = torch.sigmoid(logits.reshape(-1, 1))
        return torch.cat([1 - p, p], dim=1)
    return F.softmax(logits, dim=1)
