"""configs/mmdet/frcnn_zoobot_faint.py: the twin of the Detectron2 config (main job, named dataset ``faint``), and a
short training on its quick schedule (``tiny_faint``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("mmdet")

from mmengine.config import Config

from tests.conftest import REPO, train_two_iterations

MMDET_CONFIGS = REPO / "configs" / "mmdet"


def test_the_faint_config_is_the_main_job_on_the_faint_set() -> None:
    plain = Config.fromfile(str(MMDET_CONFIGS / "frcnn_zoobot.py"))
    faint = Config.fromfile(str(MMDET_CONFIGS / "frcnn_zoobot_faint.py"))
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        assert faint[loader].dataset.dataset == "faint"
        assert faint[loader].dataset.pipeline == plain[loader].dataset.pipeline
    assert faint.val_evaluator.dataset == faint.test_evaluator.dataset == "faint"
    assert faint.model == plain.model and faint.work_dir == "output/mmdet/frcnn_zoobot_faint"
    quick = Config.fromfile(str(MMDET_CONFIGS / "quick" / "frcnn_zoobot_faint_quick.py"))
    assert quick.train_dataloader.dataset.dataset == "tiny_faint" and quick.test_evaluator.split == "val"


@pytest.mark.slow
def test_two_iterations_train_on_the_faint_population(tmp_path: Path, tiny_cache: Path) -> None:
    config = MMDET_CONFIGS / "quick" / "frcnn_zoobot_faint_quick.py"
    result = train_two_iterations("mmdet", config, tmp_path / "work", tiny_cache)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert json.loads((tmp_path / "work" / "report.json").read_text())["meta"]["framework"] == "mmdet"
    assert any(p.name.startswith("tiny_faint-") for p in (tiny_cache / "datasets").iterdir())
