"""A galaxy detector trained on a simulated wide field: simulate, place the galaxies in a field, cut tiles, train
the quick schedule (Detectron2) and find its report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from astrodet.data.field import convert_field
from astrodet.data.field_sim import simulate_field
from astrodet.data.simulation import simulate_dataset
from tests.conftest import REPO

pytest.importorskip("detectron2")


@pytest.mark.slow  # simulates 30 galaxies and trains Faster R-CNN for 10 iterations on CPU (about a minute)
def test_quick_galaxy_detector_schedule_trains_on_field_tiles_and_reports(tmp_path: Path) -> None:
    simulate_dataset(tmp_path / "sim", 30, 7, workers=1, progress=False)
    made = simulate_field(tmp_path / "sim", tmp_path / "field", shape=(768, 1024), seed=1)
    assert made.placed >= 20
    summary = convert_field(
        made.sources, tmp_path / "data" / "field" / "field.json", fits=[made.frame], a_col="a_arcsec",
        b_col="b_arcsec", theta_col="theta_deg", size_unit="arcsec", ellipse_scale=1, category="galaxy",
        png="lupton", split="train=0.7,val=0.3", seed=0,
    )  # fmt: skip
    assert summary.rows_out == made.placed and summary.categories["galaxy"] > 0
    env = dict(os.environ, ASTRODET_CACHE=str(tmp_path / "cache"))
    config = REPO / "configs" / "quick_schedules" / "frcnn_field_quick.yaml"
    cmd = [sys.executable, str(REPO / "tools" / "train_net.py"), "--config-file", str(config), "OUTPUT_DIR",
           str(tmp_path / "out")]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["meta"]["dataset"] == "field_val" and set(report["per_class"]) == {"galaxy"}
    val = json.loads((tmp_path / "data" / "field" / "field_val.json").read_text())
    assert report["n_true"] == len(val["annotations"]) > 0 and report["n_images"] == len(val["images"])
