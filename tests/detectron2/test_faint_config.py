"""configs/frcnn_zoobot_faint.yaml: the main job on the real-sky source population (named dataset ``faint``), and a
short training on its quick schedule (``tiny_faint``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("detectron2")

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog

import astrodet.detectron2  # noqa: F401  (registers)
from astrodet.detectron2 import add_astrodet_config
from tests.conftest import REPO, train_two_iterations


def _cfg(config: str):
    cfg = get_cfg()
    add_astrodet_config(cfg)
    cfg.merge_from_file(str(REPO / "configs" / config))
    return cfg


def test_the_faint_config_is_the_main_job_on_the_faint_set() -> None:
    main, faint = _cfg("frcnn_zoobot.yaml"), _cfg("frcnn_zoobot_faint.yaml")
    assert (faint.DATASETS.TRAIN, faint.DATASETS.TEST) == (("astrodet_faint_train",), ("astrodet_faint_test",))
    assert faint.MODEL == main.MODEL and faint.SOLVER == main.SOLVER and faint.INPUT == main.INPUT
    quick = _cfg("quick_schedules/frcnn_zoobot_faint_quick.yaml")
    assert quick.DATASETS.TRAIN == ("astrodet_tiny_faint_train",) and quick.MODEL == main.MODEL
    registered = DatasetCatalog.list()
    assert {"astrodet_faint_train", "astrodet_faint_test", "astrodet_tiny_faint_val"} <= set(registered)


@pytest.mark.slow
def test_two_iterations_train_on_the_faint_population(tmp_path: Path, tiny_cache: Path) -> None:
    config = REPO / "configs" / "quick_schedules" / "frcnn_zoobot_faint_quick.yaml"
    result = train_two_iterations("detectron2", config, tmp_path / "out", tiny_cache)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["meta"]["framework"] == "detectron2"
    assert any(p.name.startswith("tiny_faint-") for p in (tiny_cache / "datasets").iterdir())
