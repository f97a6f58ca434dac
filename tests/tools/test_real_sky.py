"""tools/real_sky.py: the real samples read as documented, detection counts by hand, clear refusals, and (slow) a
run over two galaxies per set with a randomly initialised quick-schedule detector."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from astropy.table import Table

from tests.conftest import REPO, load_tool


def _tool() -> ModuleType:
    return load_tool("real_sky")


def test_counts_per_galaxy_and_their_summary() -> None:
    tool = _tool()
    galaxies = [tool.Galaxy("a.png", "x"), tool.Galaxy("b.png", "x"), tool.Galaxy("c.png", "y")]
    found = Table({"file": ["a.png", "a.png", "b.png", "a.png"], "score": [0.9, 0.3, 0.29, 0.05]})
    assert tool.counts_by_file(found, galaxies, 0.3) == {"a.png": 2, "b.png": 0, "c.png": 0}
    summary = tool.count_summary([0, 2, 4, 7], n_bootstrap=200)
    assert summary["mean"] == pytest.approx(13 / 4) and summary["with_none"] == 1
    assert summary["distribution"] == {"0": 1, "1": 0, "2": 1, "3": 0, "4": 1, "5+": 1}
    low, high = summary["mean_interval"]
    assert 0 <= low < 13 / 4 < high <= 7


def test_stripe82_galaxies_carry_scale_psf_and_trust(shared_data: Path) -> None:
    galaxies = _tool().s82_galaxies(shared_data)
    assert len(galaxies) == 45 and sum(g.group == "trusted" for g in galaxies) == 21
    first = galaxies[0]  # galaxies.csv row 1: 8647474690329084045, 0.0984"/px, its clumps' r PSF 1.301"
    assert first.file.endswith("objID08647474690329084045.jpg") and Path(first.file).is_file()
    assert (first.pixel_scale, first.psf_fwhm, first.group) == (0.0984, 1.301, "untrusted")


def test_bad_command_lines_are_refused_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tool = _tool()
    base = ["--config", str(tmp_path / "none.yaml"), "--weights", str(tmp_path / "w.pth"), "--out", str(tmp_path)]
    assert tool.main([*base, "--data", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.strip() == f"error: --data {tmp_path / 'nowhere'}: no such folder"
    assert tool.main([*base, "--data", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"error: --config {tmp_path / 'none.yaml'}: no such file"
    with pytest.raises(SystemExit) as exit_info:
        tool.main([*base, "--limit", "0"])
    assert exit_info.value.code == 2 and "--limit: expected >= 1, got 0" in capsys.readouterr().err


@pytest.mark.slow
def test_a_small_run_writes_consistent_numbers_and_small_figures(shared_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("detectron2")
    import torch
    from detectron2.modeling import build_model

    from astrodet.detectron2.predictor import build_cfg

    quick = REPO / "configs" / "quick_schedules" / "frcnn_zoobot_quick.yaml"
    torch.manual_seed(0)
    weights = tmp_path / "model_final.pth"
    torch.save({"model": build_model(build_cfg(quick, "cpu")).state_dict(), "iteration": 0}, weights)
    out = tmp_path / "real"
    argv = ["--config", str(quick), "--weights", str(weights), "--out", str(out), "--data", str(shared_data)]
    assert _tool().main([*argv, "--limit", "2", "--psf-px", "11.75", "--bootstrap", "20", "--device", "cpu"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["training_psf_px"] == 11.75 and report["model"]["score_threshold"] == 0.3
    trusted = report["s82"]["trusted"]
    assert trusted["n_images"] == 1 and trusted["n_true"] > 0  # --limit 2: one trusted, one untrusted galaxy
    assert report["s82"]["all"]["n_images"] == 2
    for name in ("s82", "gz2", "perseus"):
        counts = report[name]["detections_per_galaxy"]["all"]
        found = Table.read(out / "catalogues" / f"{name}.ecsv")
        assert counts["galaxies"] == 2 and counts["mean"] == pytest.approx(np.count_nonzero(found["score"] >= 0.3) / 2)
        assert 0 < (out / f"{name}.png").stat().st_size <= 400_000
    assert report["perseus"]["crops"]["whole_image"] == 2  # 1.4" at 0.1"/px wants 238 px of a 200 px cutout
    assert "| trusted | 1 |" in (out / "report.md").read_text()
