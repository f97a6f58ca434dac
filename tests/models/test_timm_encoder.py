"""The timm encoder: shapes, feature description, band counts, local checkpoints, freezing, norm swaps."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from torch import nn

from astrodet import models
from astrodet.models import FeatureSpec, TimmEncoder
from astrodet.models.checkpoints import read_state_dict


def test_convnext_nano_gives_four_strides() -> None:
    encoder = TimmEncoder("convnext_nano").eval()
    features = encoder(torch.zeros(1, 3, 64, 64))
    assert encoder.strides == [4, 8, 16, 32]
    assert encoder.channels == [80, 160, 320, 640]
    assert [f.shape[1] for f in features] == encoder.channels
    assert [64 // f.shape[-1] for f in features] == encoder.strides


def test_feature_info_describes_the_outputs_once() -> None:
    encoder = TimmEncoder("resnet18", out_indices=(0, 2))
    assert encoder.feature_info == [FeatureSpec("stage2", 64, 4), FeatureSpec("stage4", 256, 16)]
    assert encoder.channels == [64, 256] and encoder.strides == [4, 16]


def test_stages_after_the_last_one_handed_on_are_not_built() -> None:
    """An encoder cut at stride 16 must not compute (or hold untrained) stride-32 weights: every weight it has gets
    a gradient, which Detectron2's gradient clipping needs."""
    full, cut = TimmEncoder("convnext_nano"), TimmEncoder("convnext_nano", out_indices=(0, 1, 2))
    assert not any(name.startswith("body.stages_3") for name, _ in cut.named_parameters())
    assert sum(p.numel() for p in cut.parameters()) < sum(p.numel() for p in full.parameters())
    features = cut(torch.zeros(1, 3, 64, 64))
    assert [64 // f.shape[-1] for f in features] == cut.strides == [4, 8, 16]
    assert [f.shape[1] for f in features] == cut.channels == [80, 160, 320]
    sum(f.sum() for f in features).backward()
    assert all(p.grad is not None for p in cut.parameters())
    resnet = TimmEncoder("resnet18", out_indices=(0, 1), frozen_stages=4)
    assert [64 // f.shape[-1] for f in resnet(torch.zeros(1, 3, 64, 64))] == [4, 8]
    assert not any(p.requires_grad for p in resnet.parameters())


def test_zoobot_encoder_is_the_old_name_of_timm_encoder() -> None:
    assert models.ZoobotEncoder is TimmEncoder


def test_resnet_skips_its_stride_two_stem_feature_and_takes_five_bands() -> None:
    encoder = TimmEncoder("resnet18", in_chans=5, out_indices=(1, 3)).eval()
    features = encoder(torch.zeros(2, 5, 64, 64))
    assert encoder.strides == [8, 32]
    assert [tuple(f.shape) for f in features] == [(2, 128, 8, 8), (2, 512, 2, 2)]


def test_bad_out_indices_are_refused() -> None:
    with pytest.raises(ValueError, match="out_indices"):
        TimmEncoder("resnet18", out_indices=(4,))


@pytest.mark.parametrize("prefix", ["", "encoder.", "model.encoder."])
def test_loads_local_checkpoint_with_wrapper_prefixes(tmp_path: Path, prefix: str) -> None:
    torch.manual_seed(0)
    source = timm.create_model("resnet18", num_classes=0)
    state = {prefix + k: v for k, v in source.state_dict().items()}
    path = tmp_path / "encoder.ckpt"
    torch.save({"state_dict": state}, path)
    encoder = TimmEncoder("resnet18", checkpoint=path)
    assert torch.equal(encoder.body.layer4[1].conv2.weight, source.layer4[1].conv2.weight)
    assert torch.equal(encoder.body.conv1.weight, source.conv1.weight)


def test_checkpoint_adapts_to_more_bands(tmp_path: Path) -> None:
    source = timm.create_model("resnet18", num_classes=0)
    path = tmp_path / "encoder.pth"
    torch.save(source.state_dict(), path)
    encoder = TimmEncoder("resnet18", in_chans=5, checkpoint=path)
    assert encoder.body.conv1.weight.shape[1] == 5
    # Deeper layers are copied exactly; only the first conv is adapted by timm.
    assert torch.equal(encoder.body.layer2[0].conv1.weight, source.layer2[0].conv1.weight)


def test_missing_checkpoint_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.pth"):
        read_state_dict(tmp_path / "nope.pth")


def test_frozen_stages_stop_gradients_and_stay_in_eval() -> None:
    encoder = TimmEncoder("resnet18", frozen_stages=1)
    encoder.train()
    assert not any(p.requires_grad for p in encoder.body.conv1.parameters())
    assert not any(p.requires_grad for p in encoder.body.layer1.parameters())
    assert all(p.requires_grad for p in encoder.body.layer2.parameters())
    assert not encoder.body.bn1.training and not encoder.body.layer1.training
    assert encoder.body.layer2.training


def test_frozen_stem_only() -> None:
    encoder = TimmEncoder("convnext_nano", frozen_stages=0)
    assert not any(p.requires_grad for p in encoder.body.stem_0.parameters())
    assert all(p.requires_grad for p in encoder.body.stages_0.parameters())


def test_group_norm_swap_leaves_no_batchnorm() -> None:
    encoder = TimmEncoder("resnet18", norm="gn")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in encoder.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in encoder.modules())
    # Batch-independent: one image gives the same features alone as inside a batch.
    encoder.train()
    x = torch.randn(2, 3, 64, 64)
    assert torch.allclose(encoder(x[:1])[-1], encoder(x)[-1][:1], atol=1e-5)


def test_checkpoint_of_another_architecture_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "resnet18.pth"
    torch.save(timm.create_model("resnet18", num_classes=0).state_dict(), path)
    with pytest.raises(ValueError, match=r"not a timm 'convnext_nano' encoder checkpoint"):
        TimmEncoder("convnext_nano", checkpoint=path)
