"""The DeepShadows trunk: the paper's layer sizes, multi-scale outputs, feature description, checkpoints, freezing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from astrodet.models import DeepShadowsTrunk, FeatureSpec


def test_block_outputs_at_strides_two_four_eight() -> None:
    trunk = DeepShadowsTrunk().eval()
    features = trunk(torch.zeros(2, 3, 64, 64))
    assert [tuple(f.shape) for f in features] == [(2, 16, 32, 32), (2, 32, 16, 16), (2, 64, 8, 8)]
    assert trunk.channels == [16, 32, 64] and trunk.strides == [2, 4, 8]
    assert [f.name for f in trunk.feature_info] == ["stage1", "stage2", "stage3"]


def test_feature_info_follows_out_indices_and_channels() -> None:
    trunk = DeepShadowsTrunk(out_indices=(1, 2), channels=(8, 24, 40))
    assert trunk.feature_info == [FeatureSpec("stage2", 24, 4), FeatureSpec("stage3", 40, 8)]


def test_checkpoint_loads_the_trunk_and_refuses_a_partial_file(tmp_path: Path) -> None:
    torch.manual_seed(3)
    source = DeepShadowsTrunk(dropout=0.0).eval()
    path = tmp_path / "classifier.pth"
    torch.save({"state_dict": {**source.state_dict(), "head.weight": torch.zeros(2, 8)}}, path)
    trunk = DeepShadowsTrunk(dropout=0.0, checkpoint=path).eval()
    x = torch.randn(1, 3, 32, 32)
    assert all(torch.equal(a, b) for a, b in zip(trunk(x), source(x), strict=True))
    partial = tmp_path / "partial.pth"
    torch.save({k: v for k, v in source.state_dict().items() if not k.startswith("blocks.2.")}, partial)
    with pytest.raises(ValueError, match=r"partial\.pth: no weights for"):
        DeepShadowsTrunk(checkpoint=partial)


def test_trunk_parameters_match_the_paper() -> None:
    # Conv 3x3 16/32/64 with bias + BatchNorm gamma/beta: 448+32 + 4640+64 + 18496+128 trainable parameters.
    trunk = DeepShadowsTrunk()
    assert sum(p.numel() for p in trunk.parameters() if p.requires_grad) == 23_808
    conv_layers = [m for m in trunk.modules() if isinstance(m, nn.Conv2d)]
    assert [m.kernel_size for m in conv_layers] == [(3, 3)] * 3


def test_out_indices_subset_and_freezing() -> None:
    trunk = DeepShadowsTrunk(out_indices=(2,), frozen_stages=2)
    trunk.train()
    (out,) = trunk(torch.zeros(1, 3, 32, 32))
    assert out.shape == (1, 64, 4, 4)
    assert not any(p.requires_grad for p in trunk.blocks[1].parameters())
    assert all(p.requires_grad for p in trunk.blocks[2].parameters())
    assert not trunk.blocks[0].training and trunk.blocks[2].training
