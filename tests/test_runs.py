"""astrodet.runs and the training tools' use of it: the iteration cap, no writing over another run, eval-only
outputs beside the run, threads per CPU process, one scale for the printed metrics, ints for float keys."""

from __future__ import annotations

import argparse
import importlib.util
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from astrodet import runs
from astrodet.errors import AstrodetInputError
from tests.conftest import REPO


def test_the_iteration_cap_is_a_positive_whole_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(runs.MAX_ITER_ENV, raising=False)
    assert runs.iteration_cap() is None and runs.cap_iterations(1500) == 1500
    monkeypatch.setenv(runs.MAX_ITER_ENV, " 3 ")
    assert runs.iteration_cap() == 3
    for bad in ("0", "-2", "1.5", "ten"):
        monkeypatch.setenv(runs.MAX_ITER_ENV, bad)
        with pytest.raises(AstrodetInputError, match=rf"ASTRODET_MAX_ITER='{bad}': expected a positive whole number"):
            runs.iteration_cap()


def test_a_capped_run_says_so_and_a_shorter_one_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv(runs.MAX_ITER_ENV, "2")
    assert runs.cap_iterations(1500) == 2
    assert "ASTRODET_MAX_ITER=2: training capped at 2 iterations (the config asks for 1500)" in capsys.readouterr().out
    assert runs.cap_iterations(1) == 1 and capsys.readouterr().out == ""


@pytest.mark.parametrize("marker", runs.RUN_MARKERS)
def test_a_folder_holding_a_run_is_refused_naming_it_and_the_options(tmp_path: Path, marker: str) -> None:
    runs.refuse_to_overwrite(tmp_path / "new", resumable=True)  # absent or empty folders are fine
    runs.refuse_to_overwrite(tmp_path, resumable=True)
    (tmp_path / marker).write_text("{}")
    with pytest.raises(AstrodetInputError) as refused:
        runs.refuse_to_overwrite(tmp_path, resumable=True)
    assert str(refused.value) == (
        f"{tmp_path} already holds a run ({marker}): pass --resume to continue it, --overwrite to replace it, "
        "or choose another folder"
    )
    with pytest.raises(AstrodetInputError, match=r"pass --overwrite to write over it, or choose another folder"):
        runs.refuse_to_overwrite(tmp_path, resumable=False)


def test_eval_outputs_go_into_a_folder_named_after_the_checkpoint() -> None:
    assert runs.eval_folder("output/z", "output/z/model_final.pth") == "output/z/eval_model_final"
    assert runs.eval_folder("w", Path("/elsewhere/iter_1500.pth")) == "w/eval_iter_1500"
    assert runs.eval_folder("w", "") == "w/eval_no_weights"


def test_printed_results_are_fractions_whatever_the_framework() -> None:
    detectron2 = {
        "bbox": {"AP": 56.3, "AP50": 91.7, "APs": math.nan, "AP-clump": 60.9},
        "astro": {"completeness": 0.981, "purity": 0.822, "f1": 0.895, "score_threshold": 0.3},
    }
    expected = "AP 0.563, AP50 0.917, APs –, completeness 0.981, purity 0.822, F1 0.895"
    assert runs.results_line(detectron2) == f"test results, fractions of 1 as in report.json: {expected}"
    mmdet = {"coco/bbox_mAP": 0.546, "coco/bbox_mAP_s": -1.0, "astro/completeness": 0.977, "astro/purity": math.nan}
    assert runs.results_line(mmdet).endswith(": AP 0.546, APs –, completeness 0.977, purity –")
    several = runs.results_line({"a_test": detectron2, "b_test": {"classification": {"accuracy": 0.5}}})
    assert several.splitlines()[1] == "b_test: test results, fractions of 1 as in report.json: accuracy 0.500"
    assert runs.results_line({}) is None and runs.results_line(None) is None


def test_cpu_processes_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(runs, "available_cores", lambda: 8)
    before = torch.get_num_threads()
    try:
        for chosen, processes, expected in ((None, 2, 4), ("1", 4, 2), ("3", 2, 3), (None, 16, 1)):
            if chosen is None:
                monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
            else:
                monkeypatch.setenv("OMP_NUM_THREADS", chosen)
            assert runs.use_cpu_threads_per_process(processes) == expected
            assert torch.get_num_threads() == expected and runs.os.environ["OMP_NUM_THREADS"] == str(expected)
    finally:
        torch.set_num_threads(before)


# --- the tools -------------------------------------------------------------------------------------------------------


def _tool(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"astrodet_tool_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_net_eval_only_writes_beside_the_run_and_takes_whole_numbers_for_floats() -> None:
    pytest.importorskip("detectron2")
    tool = _tool("train_net")
    config = str(REPO / "configs" / "quick_schedules" / "frcnn_zoobot_quick.yaml")
    opts = ["OUTPUT_DIR", "out/z", "MODEL.WEIGHTS", "out/z/model_final.pth", "ASTRODET.EVAL.CENTRE_RADIUS", "4"]
    cfg = tool.merged_cfg(argparse.Namespace(config_file=config, opts=opts, eval_only=True, resume=False))
    assert cfg.OUTPUT_DIR == "out/z/eval_model_final"
    assert cfg.ASTRODET.EVAL.CENTRE_RADIUS == 4.0 and isinstance(cfg.ASTRODET.EVAL.CENTRE_RADIUS, float)
    training = tool.merged_cfg(argparse.Namespace(config_file=config, opts=opts, eval_only=False, resume=False))
    assert training.OUTPUT_DIR == "out/z"


def test_train_net_eval_only_with_resume_evaluates_the_runs_last_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("detectron2")
    tool = _tool("train_net")
    (tmp_path / "last_checkpoint").write_text("model_0000009.pth")
    config = str(REPO / "configs" / "quick_schedules" / "frcnn_zoobot_quick.yaml")
    args = argparse.Namespace(config_file=config, opts=["OUTPUT_DIR", str(tmp_path)], eval_only=True, resume=True)
    cfg = tool.merged_cfg(args)
    assert cfg.MODEL.WEIGHTS == str(tmp_path / "model_0000009.pth")
    assert cfg.OUTPUT_DIR == str(tmp_path / "eval_model_0000009")


def test_train_mmdet_caps_iterations_and_evaluates_beside_the_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("mmdet")
    tool = _tool("train_mmdet")
    config = str(REPO / "configs" / "mmdet" / "quick" / "frcnn_deepshadows_quick.py")
    monkeypatch.setenv(runs.MAX_ITER_ENV, "3")
    cfg = tool.build_cfg(tool.parse_args([config, "--work-dir", str(tmp_path / "w")]))
    assert cfg.train_cfg.max_iters == 3 and cfg.work_dir == str(tmp_path / "w")
    args = tool.parse_args([config, "--work-dir", str(tmp_path / "w"), "--eval-only", "--checkpoint", "w/iter_10.pth"])
    assert tool.build_cfg(args).work_dir == str(tmp_path / "w" / "eval_iter_10")


TRAIN_NET, TRAIN_MMDET = REPO / "tools" / "train_net.py", REPO / "tools" / "train_mmdet.py"


def _run_tool(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_both_tools_refuse_a_folder_holding_another_run(tmp_path: Path) -> None:
    pytest.importorskip("detectron2")
    pytest.importorskip("mmdet")
    (tmp_path / "report.json").write_text("{}")
    d2 = _run_tool([TRAIN_NET, "--config-file", REPO / "configs/frcnn_zoobot.yaml", "OUTPUT_DIR", tmp_path], tmp_path)
    assert d2.returncode == 2
    assert f"{tmp_path} already holds a run (report.json): pass --resume to continue it" in d2.stderr
    mm = _run_tool([TRAIN_MMDET, REPO / "configs/mmdet/frcnn_zoobot.py", "--work-dir", tmp_path], tmp_path)
    assert mm.returncode == 2 and f"{tmp_path} already holds a run (report.json)" in mm.stderr
    assert "Traceback" not in d2.stderr + mm.stderr and sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_mixed_precision_without_a_gpu_is_one_clear_line(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("mmdet")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: --amp is allowed")
    result = _run_tool([TRAIN_MMDET, REPO / "configs/mmdet/frcnn_zoobot.py", "--amp"], tmp_path)
    assert result.returncode == 2 and "--amp needs a GPU" in result.stderr and "Traceback" not in result.stderr
