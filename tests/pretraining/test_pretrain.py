"""tools/pretrain.py end to end on the CPU: short schedules on the tiny sets, resume, refusals, the checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from astrodet.models.checkpoints import load_weights_only, read_state_dict
from astrodet.models.timm_encoder import TimmEncoder, check_encoder_keys
from astrodet.pretraining import train
from astrodet.pretraining.methods import build_encoder
from tests.conftest import REPO
from tests.pretraining.conftest import QUICK, run_pretrain, write_pictures


def _initial_weights(arch: str, in_chans: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """What the run started from: the encoder built after seeding, as the tool builds it."""
    torch.manual_seed(seed)
    return build_encoder(arch, in_chans).encoder_state()


def test_pretraining_on_the_tiny_pictures_writes_a_timm_encoder(tiny_pictures: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out" / "resnet18.pth"
    assert run_pretrain(tiny_pictures, "--arch", "resnet18", "--out", out, "--iters", "2", *QUICK) == 0
    said = capsys.readouterr().out
    assert "60 images in = 60 used + 0 rejected [picture: 60]" in said and f"MODEL.ZOOBOT.CHECKPOINT {out}" in said
    checkpoint = load_weights_only(out)
    meta = checkpoint["meta"]
    summary = (meta["arch"], meta["in_chans"], meta["iters"], meta["method"], meta["inputs"])
    assert summary == ("resnet18", 3, 2, "simclr", 60)
    weights = read_state_dict(out)
    check_encoder_keys("resnet18", weights, out)  # what TimmEncoder(checkpoint=...) checks
    initial = _initial_weights("resnet18", 3)
    assert weights.keys() == initial.keys()
    assert not torch.equal(weights["conv1.weight"], initial["conv1.weight"])  # trained, not the initialisation
    assert (out.parent / "resnet18.state.pth").is_file()
    assert (out.parent / "resnet18.rejects.csv").read_text() == "file,row,reason,message\n"


def test_pretraining_on_the_tiny_fits_cubes_takes_five_bands(tiny_fits_train: Path, tmp_path: Path, capsys) -> None:
    """A COCO file's FITS cubes, normalised by the FITS configs' recipe; the 5-band stem loads as it was trained."""
    out = tmp_path / "convnext_nano.pth"
    args = [tiny_fits_train, "--bands", "u", "g", "r", "i", "z", "--arch", "convnext_nano"]
    assert run_pretrain(*args, "--out", out, "--iters", "2", *QUICK) == 0
    assert "41 images in = 41 used + 0 rejected [fits: 41]" in capsys.readouterr().out
    checkpoint = load_weights_only(out)
    recipe = checkpoint["meta"]["fits_recipe"]
    assert checkpoint["meta"]["in_chans"] == 5 and (recipe["bands"], recipe["stretch"]) == (list("ugriz"), "asinh")
    weights, initial = checkpoint["state_dict"], _initial_weights("convnext_nano", 5)
    assert weights["stem.0.weight"].shape[1] == 5 and weights.keys() == initial.keys()
    assert not torch.equal(weights["stem.0.weight"], initial["stem.0.weight"])
    encoder = TimmEncoder("convnext_nano", in_chans=5, checkpoint=out)  # what frcnn_zoobot_fits builds
    assert torch.equal(encoder.body.stem_0.weight, weights["stem.0.weight"])


class _Killed(Exception):
    """Stands for the process dying right after a state file was written."""


@pytest.mark.parametrize("method", ["simclr", "byol"])
def test_a_resumed_run_ends_with_the_uninterrupted_run_s_weights(
    method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = tmp_path / "images"
    write_pictures(images, 6)
    common = [images, "--arch", "deepshadows", "--method", method, "--iters", "4", "--checkpoint-period", "2", *QUICK]
    straight, interrupted = tmp_path / "a" / "enc.pth", tmp_path / "b" / "enc.pth"
    assert run_pretrain(*common, "--out", straight) == 0

    real_save = train.save_state

    def save_then_die(path: Path, state: dict) -> None:
        real_save(path, state)
        raise _Killed

    monkeypatch.setattr(train, "save_state", save_then_die)
    with pytest.raises(_Killed):
        run_pretrain(*common, "--out", interrupted)
    monkeypatch.setattr(train, "save_state", real_save)
    state = load_weights_only(train.state_path(interrupted))
    assert state["iteration"] == 2 and not interrupted.exists()

    assert run_pretrain(*common, "--out", interrupted, "--resume") == 0
    resumed, uninterrupted = read_state_dict(interrupted), read_state_dict(straight)
    assert load_weights_only(interrupted)["meta"]["iters"] == 4
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in uninterrupted), "resume changed the result"
    assert not torch.equal(resumed["blocks.0.0.weight"], state["model"]["encoder.net.trunk.blocks.0.0.weight"])


def test_another_run_s_files_are_never_replaced_silently(tmp_path: Path, capsys) -> None:
    images = tmp_path / "images"
    write_pictures(images, 4)
    out = tmp_path / "enc.pth"
    common = [images, "--arch", "deepshadows", "--out", out, *QUICK]
    assert run_pretrain(*common, "--iters", "1", "--resume") == 2
    assert "--resume: no state file" in capsys.readouterr().err
    assert run_pretrain(*common, "--iters", "1") == 0
    assert run_pretrain(*common, "--iters", "1") == 2
    assert f"{out} exists: pass --resume to continue that run, --overwrite" in capsys.readouterr().err
    assert run_pretrain(*common, "--iters", "2", "--resume", "--seed", "3") == 2
    assert "--resume with other settings than the run that wrote it: seed 0 -> 3" in capsys.readouterr().err
    assert run_pretrain(*common, "--iters", "1", "--overwrite") == 0
    assert run_pretrain(*common[:-len(QUICK)], "--iters", "1", "--out", images / "enc.pth") == 2
    assert "inside the input folder" in capsys.readouterr().err


def test_the_iteration_cap_applies_as_in_the_training_tools(tmp_path: Path, monkeypatch, capsys) -> None:
    write_pictures(tmp_path / "images", 4)
    monkeypatch.setenv("ASTRODET_MAX_ITER", "1")
    out = tmp_path / "enc.pth"
    assert run_pretrain(tmp_path / "images", "--arch", "deepshadows", "--out", out, "--iters", "50", *QUICK) == 0
    assert "training capped at 1 iterations" in capsys.readouterr().out
    assert load_weights_only(out)["meta"]["iters"] == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--arch", "no_such_net"], "--arch 'no_such_net': neither 'deepshadows' nor a timm architecture"),
        (["--arch", "resnet18", "--batch-size", "1"], "--batch-size must be at least 2"),
        (["--arch", "resnet18", "--bands", "g", "r", "i", "--stretch", "sqrt"], "stretch 'sqrt' is not one of"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    write_pictures(tmp_path / "images", 2)
    assert run_pretrain(tmp_path / "images", "--out", tmp_path / "e.pth", "--iters", "1", *QUICK, *extra) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_rejected_images_are_listed_beside_the_checkpoint(tmp_path: Path, capsys) -> None:
    pictures = write_pictures(tmp_path / "images", 4)
    pictures[0].write_bytes(b"not a png")
    out = tmp_path / "enc.pth"
    assert run_pretrain(tmp_path / "images", "--arch", "deepshadows", "--out", out, "--iters", "1", *QUICK) == 0
    said = capsys.readouterr().out
    rejects = tmp_path / "enc.rejects.csv"
    assert "4 images in = 3 used + 1 rejected (unreadable_image: 1)" in said and f"rejects listed in {rejects}" in said
    assert str(pictures[0]) in rejects.read_text() and load_weights_only(out)["meta"]["rejected"] == 1


@pytest.mark.slow
def test_two_cpu_processes_under_torch_distributed_run(tmp_path: Path) -> None:
    """The launcher the training tools use: DDP on gloo, NT-Xent's negatives gathered from both processes."""
    write_pictures(tmp_path / "images", 8)
    out = tmp_path / "enc.pth"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(REPO / "tools" / "pretrain.py"), str(tmp_path / "images"), "--arch", "deepshadows", "--out",
               str(out), "--iters", "2", *QUICK]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("pretrain: wrote") == 1  # rank 0 writes, once
    assert load_weights_only(out)["meta"]["batch_size"] == 8  # 4 per process
