"""The encoders astrodet pretrains and the self-supervised objectives, from lightly (heads and losses).

Why SimCLR by default: it needs one encoder and one projection head (BYOL and DINO add a momentum copy of both, 1.5-2x
the compute per step, and DINO's centring and teacher temperature need long schedules to settle), it learns from the
first steps, and on a CPU, where a batch is 16-64 images, its NT-Xent loss still has 2B-2 negatives per view; a
temperature of 0.2 (lightly's default is 0.5) keeps those few negatives informative. BYOL (``--method byol``) is there
for long GPU runs: it uses no negatives at all, so it does not depend on the batch size, but it needs more
iterations to pass SimCLR. The losses and heads are lightly's (``NTXentLoss`` gathers negatives across processes
under DDP); only the wiring is here.

An encoder is saved as the module the finetuning route loads: a timm model's own state dict (the keys
``TimmEncoder(checkpoint=...)`` and ``MODEL.ZOOBOT.CHECKPOINT`` check with ``check_encoder_keys``), or the DeepShadows
trunk's (``DeepShadowsTrunk(checkpoint=...)``, ``MODEL.DEEPSHADOWS.CHECKPOINT``).
"""

from __future__ import annotations

import copy

import timm
import torch
from lightly.loss import NegativeCosineSimilarity, NTXentLoss
from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead, SimCLRProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule
from torch import nn

from astrodet.errors import AstrodetInputError
from astrodet.models.deepshadows import DeepShadowsTrunk

DEEPSHADOWS = "deepshadows"
METHODS = ("simclr", "byol")
SIMCLR_TEMPERATURE = 0.2
PROJECTION_HIDDEN = 512
PROJECTION_OUT = 128


class PooledTrunk(nn.Module):
    """A DeepShadows trunk's coarsest map, averaged over the image: one embedding per image."""

    def __init__(self, trunk: DeepShadowsTrunk) -> None:
        super().__init__()
        self.trunk = trunk

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)[-1].mean(dim=(-2, -1))


class Encoder(nn.Module):
    """An image -> embedding network; ``weights_at`` names its sub-module whose weights the checkpoint holds."""

    def __init__(self, net: nn.Module, weights_at: str, dim: int) -> None:
        super().__init__()
        self.net = net
        self.weights_at = weights_at
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def encoder_state(self) -> dict[str, torch.Tensor]:
        """The saved weights, on the CPU, in the finetuning routes' key layout."""
        weights = self.net.get_submodule(self.weights_at).state_dict()
        return {key: value.detach().cpu().clone() for key, value in weights.items()}


def build_encoder(arch: str, in_chans: int) -> Encoder:
    """``deepshadows`` (the trunk without dropout: it has no weights, and SSL views are noisy enough) or any timm
    architecture (a classifier-free model: its pooled features are the embedding)."""
    if arch == DEEPSHADOWS:
        trunk = DeepShadowsTrunk(in_chans=in_chans, dropout=0.0)
        return Encoder(PooledTrunk(trunk), "trunk", trunk.channels[-1])
    if not timm.is_model(arch):
        raise AstrodetInputError(
            f"--arch {arch!r}: neither {DEEPSHADOWS!r} nor a timm architecture (e.g. convnext_nano, resnet18; "
            "python -c \"import timm; print(timm.list_models('convnext*'))\" lists them)"
        )
    model = timm.create_model(arch, pretrained=False, num_classes=0, in_chans=in_chans)
    return Encoder(model, "", int(model.num_features))


class SimCLR(nn.Module):
    """Chen et al. (2020): both views through the encoder and a projection head; NT-Xent pulls a view to its pair."""

    def __init__(self, encoder: Encoder, gather_distributed: bool = False) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = SimCLRProjectionHead(encoder.dim, PROJECTION_HIDDEN, PROJECTION_OUT)
        self.criterion = NTXentLoss(temperature=SIMCLR_TEMPERATURE, gather_distributed=gather_distributed)

    def forward(self, view0: torch.Tensor, view1: torch.Tensor) -> torch.Tensor:
        return self.criterion(self.head(self.encoder(view0)), self.head(self.encoder(view1)))

    def after_step(self, step: int, total: int) -> None:
        """Nothing to update outside the optimiser."""


class BYOL(nn.Module):
    """Grill et al. (2020): an online encoder + projector + predictor regresses a momentum copy's projection of the
    other view (symmetrised); the copy follows the online weights with momentum 0.99 -> 1 (cosine)."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = BYOLProjectionHead(encoder.dim, PROJECTION_HIDDEN * 2, PROJECTION_OUT * 2)
        self.predictor = BYOLPredictionHead(PROJECTION_OUT * 2, PROJECTION_HIDDEN * 2, PROJECTION_OUT * 2)
        self.momentum_encoder = copy.deepcopy(encoder)
        self.momentum_projector = copy.deepcopy(self.projector)
        deactivate_requires_grad(self.momentum_encoder)
        deactivate_requires_grad(self.momentum_projector)
        self.criterion = NegativeCosineSimilarity()

    def _online(self, x: torch.Tensor) -> torch.Tensor:
        return self.predictor(self.projector(self.encoder(x)))

    @torch.no_grad()
    def _target(self, x: torch.Tensor) -> torch.Tensor:
        return self.momentum_projector(self.momentum_encoder(x))

    def forward(self, view0: torch.Tensor, view1: torch.Tensor) -> torch.Tensor:
        loss = self.criterion(self._online(view0), self._target(view1))
        return 0.5 * (loss + self.criterion(self._online(view1), self._target(view0)))

    def after_step(self, step: int, total: int) -> None:
        momentum = cosine_schedule(step, total, 0.99, 1.0)
        update_momentum(self.encoder, self.momentum_encoder, m=momentum)
        update_momentum(self.projector, self.momentum_projector, m=momentum)


def build_method(method: str, encoder: Encoder, distributed: bool = False) -> SimCLR | BYOL:
    if method == "simclr":
        return SimCLR(encoder, gather_distributed=distributed)
    if method == "byol":
        return BYOL(encoder)
    raise AstrodetInputError(f"--method {method!r}: one of {METHODS}")
