"""Any timm convnet as a multi-scale encoder, for detection and classification.

``TimmEncoder`` wraps a timm ``features_only`` model (ConvNeXt, ResNet, EfficientNet, ...) and returns its
stride-4/8/16/32 features. Zoobot (Walmsley et al. 2023) publishes its galaxy encoders as plain timm models, so a
Zoobot encoder is one checkpoint format it loads (with timm and Lightning checkpoints, see
:func:`astrodet.models.checkpoints.read_state_dict`); weights come from a local file, never from a hub at run time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import timm
import torch
from torch import nn

from astrodet.models.checkpoints import read_state_dict
from astrodet.models.features import FeatureBackbone, describe_features
from astrodet.models.norms import convert_norm

# Feature strides this encoder exposes, finest first; ``out_indices`` index into this tuple.
STAGE_STRIDES: tuple[int, ...] = (4, 8, 16, 32)


def check_encoder_keys(arch: str, state: dict[str, torch.Tensor], source: str | os.PathLike[str]) -> None:
    """Refuse a checkpoint that is not this architecture's: timm's feature models load pretrained weights
    non-strictly, so a mismatched file would otherwise leave the encoder silently at random initialisation."""
    expected = set(timm.create_model(arch, num_classes=0, pretrained=False).state_dict())
    missing = sorted(expected - set(state))
    # The first conv may legitimately differ (timm adapts it to other band counts), nothing else may be absent.
    if len(missing) > 2:
        unexpected = sorted(set(state) - expected)
        raise ValueError(
            f"{source}: not a timm {arch!r} encoder checkpoint: {len(missing)} of {len(expected)} weights missing "
            f"(e.g. {missing[:3]}); unexpected keys e.g. {unexpected[:3]}"
        )


class TimmEncoder(FeatureBackbone):
    """A timm encoder returning features at strides 4, 8, 16, 32 (or the subset in ``out_indices``).

    Args:
        arch: timm model name (Zoobot's default encoder architecture is ``convnext_nano``).
        in_chans: number of input bands; a 3-band checkpoint is adapted by timm for other counts.
        out_indices: which of the stride-4/8/16/32 stages to return.
        checkpoint: local weights file (a Zoobot encoder or timm state dict, or a Lightning checkpoint).
        frozen_stages: -1 trains everything; 0 freezes the stem; k freezes the stem and the first k stages.
        norm: ``model`` keeps the architecture's own norm layers (LayerNorm for ConvNeXt); ``gn`` swaps BatchNorm
            for GroupNorm (trains from scratch at batch 1-2); ``frozen_bn`` freezes BatchNorm statistics.
        drop_path_rate: stochastic depth, where the architecture supports it.
    """

    def __init__(
        self,
        arch: str = "convnext_nano",
        in_chans: int = 3,
        out_indices: Sequence[int] = (0, 1, 2, 3),
        checkpoint: str | os.PathLike[str] | None = None,
        frozen_stages: int = -1,
        norm: str = "model",
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        out_indices = tuple(int(i) for i in out_indices)
        if not out_indices or any(i not in range(len(STAGE_STRIDES)) for i in out_indices):
            raise ValueError(
                f"out_indices must be a non-empty subset of 0..3 (strides {STAGE_STRIDES}), got {out_indices}"
            )
        kwargs: dict[str, object] = {"features_only": True, "in_chans": in_chans}
        if drop_path_rate:
            kwargs["drop_path_rate"] = drop_path_rate
        if checkpoint is not None:
            state = read_state_dict(checkpoint)
            check_encoder_keys(arch, state, checkpoint)
            kwargs["pretrained"] = True
            kwargs["pretrained_cfg_overlay"] = {"state_dict": state}
        self.body = timm.create_model(arch, **kwargs)
        reductions = list(self.body.feature_info.reduction())
        missing = [s for s in STAGE_STRIDES if s not in reductions]
        if missing:
            raise ValueError(f"timm model {arch!r} has no features at strides {missing} (it has {reductions})")
        # timm's feature index for each of our stages (ResNets also expose a stride-2 stem feature).
        stage_feature = [reductions.index(s) for s in STAGE_STRIDES]
        self.arch = arch
        self.in_chans = in_chans
        self.out_indices = out_indices
        self._feature_indices = [stage_feature[i] for i in out_indices]
        all_channels = self.body.feature_info.channels()
        module_names = [info["module"].replace(".", "_") for info in self.body.feature_info.get_dicts()]
        if max(self._feature_indices) < len(reductions) - 1:
            # Stages after the last one handed on would be computed for nothing (and get no gradient, which
            # breaks gradient clipping): timm builds the feature model without them when told its out_indices.
            self.body = timm.create_model(arch, out_indices=tuple(self._feature_indices), **kwargs)
            self._feature_indices = list(range(len(out_indices)))
        self.feature_info = describe_features(
            channels=[all_channels[stage_feature[i]] for i in out_indices],
            strides=[STAGE_STRIDES[i] for i in out_indices],
        )
        convert_norm(self.body, norm)
        self.frozen_stages = frozen_stages
        self.freeze_modules(self._modules_to_freeze(frozen_stages, stage_feature, module_names))

    def _modules_to_freeze(
        self, frozen_stages: int, stage_feature: list[int], module_names: list[str]
    ) -> list[nn.Module]:
        """The stem plus the first ``frozen_stages`` stages, as top-level modules of timm's feature wrapper
        (``module_names``: the wrapper's module for each of timm's features, in the full model)."""
        if frozen_stages < 0:
            return []
        if frozen_stages > len(STAGE_STRIDES):
            raise ValueError(f"frozen_stages must be in -1..{len(STAGE_STRIDES)}, got {frozen_stages}")
        children = list(self.body.named_children())
        names = {name for name, _ in children}
        if frozen_stages > 0 and module_names[stage_feature[frozen_stages - 1]] not in names:
            return [module for _, module in children]  # freezing past the last stage kept: all of it
        if frozen_stages == 0:
            # Stem only: everything before the first stride-4 stage module.
            last = module_names[stage_feature[0]]
            stop = next(i for i, (name, _) in enumerate(children) if name == last)
        else:
            last = module_names[stage_feature[frozen_stages - 1]]
            stop = next(i for i, (name, _) in enumerate(children) if name == last) + 1
        return [module for _, module in children[:stop]]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = self.body(x)
        return [features[j] for j in self._feature_indices]
