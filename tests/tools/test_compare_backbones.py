"""tools/compare_backbones.py: random init vs a pretrained encoder, trained by train_net.py on the tiny set; the
finished run skipped on a rerun, an unfinished one resumed, the table's numbers the reports' own; clear refusals."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("detectron2")

from tests.conftest import REPO, load_tool

QUICK = REPO / "configs" / "quick_schedules" / "frcnn_zoobot_quick.yaml"


def _tool() -> ModuleType:
    return load_tool("compare_backbones")


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in for a pretrained encoder: a seeded random timm ResNet-18 state dict (the main job's encoder), the
    format of Zoobot's published encoders that MODEL.ZOOBOT.CHECKPOINT loads."""
    import timm
    import torch

    torch.manual_seed(7)
    path = tmp_path_factory.mktemp("encoder") / "encoder.pth"
    torch.save(timm.create_model("resnet18", num_classes=0).state_dict(), path)
    return path


def _compare(cache: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "tools" / "compare_backbones.py"), *args]
    env = dict(os.environ, ASTRODET_CACHE=str(cache))
    env.pop("ASTRODET_MAX_ITER", None)
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200, cwd=cwd)


@pytest.mark.slow
def test_both_runs_train_then_a_rerun_skips_the_finished_and_resumes_the_unfinished(
    tmp_path: Path, tiny_cache: Path, encoder: Path
) -> None:
    out = tmp_path / "cmp"
    args = ("--config-file", str(QUICK), "--checkpoint", str(encoder), "--output-dir", str(out), "--eval-period", "1")
    args += ("SOLVER.MAX_ITER", "2")
    first = _compare(tiny_cache, tmp_path, *args)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    saved = json.loads((out / "comparison.json").read_text())
    assert saved["task"] == "detection" and saved["settings"]["encoder_key"] == "MODEL.ZOOBOT.CHECKPOINT"
    configs = {name: (out / name / "config.yaml").read_text() for name in ("random", "pretrained")}
    assert f"CHECKPOINT: {encoder}" in configs["pretrained"] and f"CHECKPOINT: {encoder}" not in configs["random"]
    for name in ("random", "pretrained"):
        report = json.loads((out / name / "report.json").read_text())
        got = saved["runs"][name]
        assert got["max_iter"] == 2 and got["iterations_to_target"] in (None, 1, 2)
        assert got["metrics"]["completeness"]["value"] == report["completeness"]
        assert got["metrics"]["purity"]["value"] == report["purity"]
        assert got["metrics"]["AP"]["value"] == report["coco"]["AP"]
        assert got["metrics"]["AP50"]["value"] == report["coco"]["AP50"]
        records = [json.loads(line) for line in (out / name / "metrics.json").read_text().splitlines()]
        assert [r["iteration"] for r in records if "astro/completeness" in r] == [0, 2]  # after 1, and the final
    assert (out / "comparison.md").read_text() in first.stdout

    finished = {name: (out / name / "report.json").stat().st_mtime_ns for name in ("random", "pretrained")}
    (out / "pretrained" / "report.json").unlink()  # as if killed before its final evaluation
    second = _compare(tiny_cache, tmp_path, *args)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert f"random: finished run in {out / 'random'}, not trained again" in second.stdout
    assert f"pretrained: resuming into {out / 'pretrained'}" in second.stdout
    assert (out / "random" / "report.json").stat().st_mtime_ns == finished["random"]
    resumed = json.loads((out / "comparison.json").read_text())
    assert resumed["runs"]["pretrained"]["metrics"] == saved["runs"]["pretrained"]["metrics"]  # the same final weights

    third = _compare(tiny_cache, tmp_path, *args)
    assert third.returncode == 0 and third.stdout.count("not trained again") == 2
    changed = _compare(tiny_cache, tmp_path, *args[:-4], "--eval-period", "2", "SOLVER.MAX_ITER", "2")
    assert changed.returncode == 2
    assert "holds a comparison trained with other settings (eval_period: 1 then, 2 now)" in changed.stderr


@pytest.mark.parametrize(
    ("config", "opts", "checkpoint", "message"),
    [
        (QUICK, [], "absent.pth", r"--checkpoint absent.pth: no such file"),
        (
            REPO / "configs" / "quick_schedules" / "frcnn_r50_quick.yaml",
            [],
            "encoder.pth",
            r"backbone build_resnet_fpn_backbone has no encoder checkpoint key to start from",
        ),
        (QUICK, ["MODEL.WEIGHTS", "model.pth"], "encoder.pth", r"MODEL.WEIGHTS is 'model.pth': both runs would start"),
        (QUICK, ["MODEL.ZOOBOT.CHECKPOINT", "x.pth"], "encoder.pth", r"MODEL.ZOOBOT.CHECKPOINT: compare_backbones.py"),
        (QUICK, ["SEED", "-1"], "encoder.pth", r"SEED -1 draws a seed per run"),
        (QUICK, ["--pretrained-norm", "batch"], "encoder.pth", r"--pretrained-norm 'batch': expected one of model, "),
    ],
)
def test_inputs_that_would_spoil_the_comparison_are_refused_before_training(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    config: Path,
    opts: list[str],
    checkpoint: str,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "encoder.pth").write_bytes(b"weights")
    tool = _tool()
    with pytest.raises(SystemExit) as stopped:
        tool.main(["--config-file", str(config), "--checkpoint", checkpoint, "--output-dir", "cmp", *opts])
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("compare_backbones.py: error: ") and len(err.splitlines()) == 1
    assert re.search(message, err), err
    assert not (tmp_path / "cmp").exists()  # nothing trained, nothing recorded


def test_the_pretrained_norm_changes_the_pretrained_run_only_and_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "encoder.pth").write_bytes(b"weights")
    tool = _tool()
    commands: dict[str, list[str]] = {}

    def fake_run(command: list[str], check: bool) -> subprocess.CompletedProcess:
        commands[Path(command[command.index("OUTPUT_DIR") + 1]).name] = command
        return subprocess.CompletedProcess(command, 1)  # as if the run failed: the comparison stops there

    monkeypatch.setattr(tool.subprocess, "run", fake_run)
    argv = ["--config-file", str(QUICK), "--checkpoint", "encoder.pth", "--output-dir", "cmp"]
    with pytest.raises(SystemExit):
        tool.main([*argv, "--pretrained-norm", "frozen_bn", "SOLVER.MAX_ITER", "2"])
    assert "MODEL.ZOOBOT.NORM" not in commands["random"] and "SOLVER.MAX_ITER" in commands["random"]
    # The first call stopped at the random run; make it look finished to reach the pretrained one.
    monkeypatch.setattr(tool, "run_finished", lambda folder: folder.name == "random")
    with pytest.raises(SystemExit):
        tool.main([*argv, "--pretrained-norm", "frozen_bn", "SOLVER.MAX_ITER", "2"])
    pretrained = commands["pretrained"]
    assert pretrained[pretrained.index("MODEL.ZOOBOT.NORM") + 1] == "frozen_bn"
    assert pretrained[pretrained.index("MODEL.ZOOBOT.CHECKPOINT") + 1] == str((tmp_path / "encoder.pth").resolve())
    settings = json.loads((tmp_path / "cmp" / "compare_settings.json").read_text())
    assert settings["pretrained_norm"] == "frozen_bn"
    with pytest.raises(SystemExit) as refused:
        tool.main([*argv, "--pretrained-norm", "gn", "SOLVER.MAX_ITER", "2"])
    assert refused.value.code == 2
    assert "pretrained_norm: 'frozen_bn' then, 'gn' now" in capsys.readouterr().err
