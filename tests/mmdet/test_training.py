"""End-to-end MMDetection runs on the tiny default dataset: tools/train_mmdet.py (training, resuming, --eval-only,
two CPU processes), mmdet's own tools/train.py and tools/test.py on the same configs, and checkpoints that would run
code refused on every route a user can name one."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("mmdet")

import mmdet

from astrodet.inference import SIMULATOR_RECIPE
from astrodet.mmdet.compat import load_local_checkpoint
from tests.conftest import REPO

pytestmark = pytest.mark.slow

QUICK = REPO / "configs" / "mmdet" / "quick"
# mmdet's own tools/train.py and tools/test.py are scripts, not modules: the wheel ships them under .mim/tools.
MMDET_TOOLS = Path(mmdet.__file__).parent / ".mim" / "tools"


def _run(cache: Path, cmd: list[str], cwd: Path, expect: int = 0) -> subprocess.CompletedProcess:
    env = dict(os.environ, ASTRODET_CACHE=str(cache))
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=cwd)
    assert result.returncode == expect, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _train_mmdet(
    cache: Path, config: Path, work_dir: Path, *extra: str, launcher: list[str] | None = None, expect: int = 0
) -> subprocess.CompletedProcess:
    cmd = [*(launcher or [sys.executable]), str(REPO / "tools" / "train_mmdet.py"), str(config)]
    return _run(cache, [*cmd, "--work-dir", str(work_dir), *extra], cwd=work_dir.parent, expect=expect)


def _logged(work_dir: Path) -> tuple[list[dict], dict]:
    """mmengine's logs: training and validation scalars (vis_data/scalars.json), and the test metrics (<run>.json)."""
    (scalars,) = work_dir.glob("*/vis_data/scalars.json")
    (test,) = work_dir.glob("*/*.json")
    return [json.loads(line) for line in scalars.read_text().splitlines()], json.loads(test.read_text())


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory, tiny_cache: Path) -> Path:
    work_dir = tmp_path_factory.mktemp("mmdet_quick") / "work"
    _train_mmdet(tiny_cache, QUICK / "frcnn_zoobot_quick.py", work_dir)
    return work_dir


def test_quick_config_trains_validates_tests_and_reports(quick_run: Path, tiny_cache: Path) -> None:
    report = json.loads((quick_run / "report.json").read_text())
    meta = report["meta"]
    assert meta["framework"] == "mmdet" and meta["backbone"] == "TimmEncoder" and meta["max_iters"] == 10
    assert meta["dataset"].startswith(str(tiny_cache)) and meta["dataset"].endswith("clumps_val.json")
    assert set(report["coco"]) >= {"AP", "AP50", "AP75", "APs", "APm", "APl", "per_class", "params"}
    assert report["coco"]["params"]["max_dets"] == [1, 10, 100]
    assert report["coco"]["params"]["area_ranges"]["small"] == [0.0, 169.0]  # astrodet's ranges, not COCO's
    assert all(v is None or 0.0 <= v <= 1.0 for k, v in report["coco"].items() if k not in ("per_class", "params"))
    assert report["matching"]["kind"] == "iou" and report["score_threshold"] == 0.3
    assert set(report["per_class"]) == {"clump", "odd_clump"}
    gt = json.loads(Path(meta["dataset"]).read_text())
    # every true box and every galaxy of the split, the clump-free ones too
    assert report["n_true"] == len(gt["annotations"]) > 0 and report["n_images"] == len(gt["images"])
    for png in ("pr_curve.png", "threshold_curves.png", "bins.png", "examples.png"):
        assert (quick_run / png).stat().st_size > 10_000
    assert "Completeness" in (quick_run / "report.md").read_text()
    saved = load_local_checkpoint(str(quick_run / "iter_10.pth"))["meta"]  # what astrodet predict reads back
    assert saved["image_recipe"] == SIMULATOR_RECIPE.to_dict()  # AstroCheckpointHook's
    assert tuple(saved["dataset_meta"]["classes"]) == ("clump", "odd_clump")  # mmengine's, from the training data
    scalars, test = _logged(quick_run)
    assert max(row.get("iter", 0) for row in scalars) == 10
    (validation,) = [row for row in scalars if "coco/bbox_mAP" in row]  # at the last iteration
    for row in (validation, test):
        assert {"coco/bbox_mAP", "coco/bbox_mAP_50", "astro/completeness", "astro/purity"} <= set(row)
    assert test["astro/completeness"] == report["completeness"]  # the report is the test's
    assert test["coco/bbox_mAP_50"] == round(report["coco"]["AP50"], 3)  # mmdet logs 3 decimals, the report all


def test_resume_continues_from_the_last_checkpoint(quick_run: Path, tiny_cache: Path, tmp_path: Path) -> None:
    work_dir = tmp_path / "work"
    shutil.copytree(quick_run, work_dir)
    result = _train_mmdet(
        tiny_cache,
        QUICK / "frcnn_zoobot_quick.py",
        work_dir,
        "--resume",
        "--cfg-options",
        "train_cfg.max_iters=12",
        "train_cfg.val_interval=12",
    )
    log = result.stdout + result.stderr
    assert "resumed epoch: 0, iter: 10" in log
    assert (work_dir / "iter_12.pth").is_file()
    assert json.loads((work_dir / "report.json").read_text())["meta"]["max_iters"] == 12


def test_resume_on_a_finished_run_reevaluates_it(quick_run: Path, tiny_cache: Path, tmp_path: Path) -> None:
    """The re-evaluation route (as Detectron2's --eval-only): nothing is left to train, so the Runner only tests."""
    work_dir = tmp_path / "work"
    shutil.copytree(quick_run, work_dir)
    (work_dir / "report.json").unlink()
    result = _train_mmdet(tiny_cache, QUICK / "frcnn_zoobot_quick.py", work_dir, "--resume")
    assert "resumed epoch: 0, iter: 10" in result.stdout + result.stderr
    first = json.loads((quick_run / "report.json").read_text())
    second = json.loads((work_dir / "report.json").read_text())
    for report in (first, second):
        report.pop("meta")
    assert second == first


def _without_meta(work_dir: Path) -> dict:
    report = json.loads((work_dir / "report.json").read_text())
    report.pop("meta")
    return report


def test_eval_only_writes_the_report_from_a_checkpoint(quick_run: Path, tiny_cache: Path, tmp_path: Path) -> None:
    """Checkpoint in, report out (as Detectron2's --eval-only): nothing trains, the report is the training run's."""
    work_dir = tmp_path / "eval"
    config = QUICK / "frcnn_zoobot_quick.py"
    result = _train_mmdet(tiny_cache, config, work_dir, "--eval-only", "--checkpoint", str(quick_run / "iter_10.pth"))
    assert "Iter(train)" not in result.stdout + result.stderr and not list(work_dir.rglob("iter_*.pth"))
    work_dir = work_dir / "eval_iter_10"  # --eval-only writes beside the work dir's own files, never over them
    assert _without_meta(work_dir) == _without_meta(quick_run)
    assert json.loads((work_dir / "report.json").read_text())["meta"]["config"] == str(config)


def test_a_checkpoint_of_another_model_is_refused_not_trained_over(tiny_cache: Path, tmp_path: Path) -> None:
    """mmengine loads non-strictly and only warns: a checkpoint none of whose weights fits the model would leave it
    at random initialisation with exit 0. Refused on the load_from and --checkpoint routes, naming the file."""
    foreign = tmp_path / "other_model.pth"
    torch.save({"state_dict": {"encoder.layer0.weight": torch.zeros(3)}, "meta": {}}, foreign)
    config = QUICK / "frcnn_deepshadows_quick.py"
    for extra in (["--cfg-options", f"load_from={foreign}"], ["--eval-only", "--checkpoint", str(foreign)]):
        result = _train_mmdet(tiny_cache, config, tmp_path / extra[0].strip("-"), *extra, expect=2)
        assert f"{foreign}: none of its 1 weights fits this model" in result.stdout + result.stderr
        assert "Iter(train)" not in result.stdout + result.stderr


@pytest.mark.skipif(not (MMDET_TOOLS / "train.py").is_file(), reason=f"mmdet's tools are not in {MMDET_TOOLS}")
def test_mmdet_own_tools_refuse_a_checkpoint_of_another_model(tiny_cache: Path, tmp_path: Path) -> None:
    """The configs' AstroCheckpointHook applies the same refusal under mmdet's tools/train.py and tools/test.py,
    which know nothing of astrodet (their own error handling: a traceback ending in the one line, exit 1)."""
    foreign = tmp_path / "other_model.pth"
    torch.save({"state_dict": {"encoder.layer0.weight": torch.zeros(3)}, "meta": {}}, foreign)
    config = str(QUICK / "frcnn_deepshadows_quick.py")
    train = [str(MMDET_TOOLS / "train.py"), config, "--work-dir", str(tmp_path / "train")]
    test = [str(MMDET_TOOLS / "test.py"), config, str(foreign), "--work-dir", str(tmp_path / "test")]
    for cmd in ([*train, "--cfg-options", f"load_from={foreign}"], test):
        result = _run(tiny_cache, [sys.executable, *cmd], tmp_path, expect=1)
        log = result.stdout + result.stderr
        assert f"AstrodetInputError: {foreign}: none of its 1 weights fits this model" in log
        assert "Iter(train)" not in log and "Iter(test)" not in log


@pytest.mark.skipif(not (MMDET_TOOLS / "train.py").is_file(), reason=f"mmdet's tools are not in {MMDET_TOOLS}")
def test_mmdet_own_tools_train_and_test_a_shipped_config_with_the_report(tiny_cache: Path, tmp_path: Path) -> None:
    """The config runs unchanged under mmdet's tools/train.py, and tools/test.py writes astrodet's report."""
    config = str(QUICK / "frcnn_zoobot_quick.py")
    train_dir, test_dir = tmp_path / "train", tmp_path / "test"
    train = [sys.executable, str(MMDET_TOOLS / "train.py"), config, "--work-dir", str(train_dir), "--cfg-options"]
    train += ["train_cfg.max_iters=2", "train_cfg.val_interval=2", "default_hooks.checkpoint.interval=2"]
    _run(tiny_cache, train, tmp_path)
    checkpoint = train_dir / "iter_2.pth"
    assert checkpoint.is_file() and not (train_dir / "report.json").exists()  # mmdet's train.py does not test
    assert load_local_checkpoint(str(checkpoint))["meta"]["image_recipe"] == SIMULATOR_RECIPE.to_dict()
    test = [sys.executable, str(MMDET_TOOLS / "test.py"), config, str(checkpoint), "--work-dir", str(test_dir)]
    _run(tiny_cache, test, tmp_path)
    report = json.loads((test_dir / "report.json").read_text())
    meta = report["meta"]
    assert meta["framework"] == "mmdet" and meta["config"] == config and meta["backbone"] == "TimmEncoder"
    assert meta["dataset"].startswith(str(tiny_cache)) and meta["dataset"].endswith("clumps_val.json")
    gt = json.loads(Path(meta["dataset"]).read_text())
    assert report["n_true"] == len(gt["annotations"]) > 0 and report["n_images"] == len(gt["images"])
    assert report["coco"]["params"]["area_ranges"]["small"] == [0.0, 169.0]
    for png in ("pr_curve.png", "threshold_curves.png", "bins.png", "examples.png"):
        assert (test_dir / png).stat().st_size > 10_000
    (logged,) = test_dir.glob("*/*.json")  # mmengine's record of the test metrics: the report's
    assert json.loads(logged.read_text())["astro/completeness"] == report["completeness"]


class _CreatesAFile:
    """Unpickling this would create ``marker``: what a crafted checkpoint could do with any code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("route", ["load_from", "--resume", "--checkpoint", "init_cfg"])
def test_a_checkpoint_that_would_run_code_is_refused_on_every_route(
    route: str, tiny_cache: Path, tmp_path: Path
) -> None:
    marker, evil = tmp_path / "MARKER", tmp_path / "weights.pth"
    torch.save({"state_dict": {}, "meta": _CreatesAFile(marker)}, evil)
    config, extra = QUICK / "frcnn_r50_quick.py", []
    if route == "load_from":
        extra = ["--cfg-options", f"load_from={evil}"]
    elif route == "--resume":
        extra = ["--resume", str(evil)]
    elif route == "--checkpoint":
        extra = ["--eval-only", "--checkpoint", str(evil)]
    else:  # mmdet's ResNet reads its Pretrained init_cfg through mmengine's checkpoint loader
        config = tmp_path / "pretrained.py"
        pretrained = dict(_delete_=True, type="Pretrained", checkpoint=str(evil))  # replaces the base's None
        base = str(QUICK / "frcnn_r50_quick.py")
        config.write_text(f"_base_ = [{base!r}]\nmodel = dict(backbone=dict(init_cfg={pretrained!r}))\n")
    result = _train_mmdet(tiny_cache, config, tmp_path / "work", *extra, expect=2)
    log = result.stdout + result.stderr
    assert f"{evil}: refused" in log and "Traceback" not in log
    assert not marker.exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_cpu_processes_through_the_pytorch_launcher(tmp_path: Path, tiny_cache: Path) -> None:
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    launcher += ["--master_addr", "127.0.0.1", "--master_port", str(_free_port())]
    result = _train_mmdet(
        tiny_cache,
        QUICK / "frcnn_deepshadows_quick.py",
        work_dir,
        "--launcher",
        "pytorch",
        "--cfg-options",
        "train_cfg.max_iters=4",
        "train_cfg.val_interval=4",
        launcher=launcher,
    )
    log = result.stdout + result.stderr
    assert "Distributed training: True" in log and "GPU number: 2" in log  # mmengine's name for the world size
    assert "terminate called" not in log
    assert (work_dir / "iter_4.pth").is_file()
    report = json.loads((work_dir / "report.json").read_text())
    gt = json.loads(Path(report["meta"]["dataset"]).read_text())
    assert report["n_images"] == len(gt["images"])  # both processes' halves of the split were gathered for scoring
