"""A run killed with SIGKILL resumes from its finished chunks and gives the table of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from astrodet import cli
from astrodet.inference import command
from astrodet.inference.catalogue import read_catalogue
from tests.inference.fakes import PeakDetector

REPO = Path(__file__).resolve().parents[2]


def _args(simulated: Path, fake_config: tuple[str, str], out: Path) -> list[str]:
    config, weights = fake_config
    return ["predict", "--config", config, "--weights", weights, str(simulated / "images"), "--meta",
            str(simulated / "galaxies.csv"), "--chunk-size", "1", "--out", str(out), "--no-progress"]  # fmt: skip


def test_kill_then_resume_equals_an_uninterrupted_run(
    simulated: Path, tmp_path: Path, fake_config, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "killed.fits"
    parts = Path(f"{out}.parts")
    env = {**os.environ, "FAKE_DETECTOR_DELAY": "0.3"}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.inference.fakes", *_args(simulated, fake_config, out)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while len(list(parts.glob("chunk-*.json"))) < 2:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "no chunk finished in time"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    done = len(list(parts.glob("chunk-*.json")))
    assert not out.exists() and 2 <= done < 6

    monkeypatch.setattr(command, "load_model", lambda config, weights, device="auto": PeakDetector())
    assert cli.main([*_args(simulated, fake_config, out), "--score-threshold", "0.5", "--resume"]) == 2
    assert "another model, inputs or options" in capsys.readouterr().err
    assert cli.main([*_args(simulated, fake_config, out), "--resume"]) == 0
    assert not parts.exists()
    assert cli.main(_args(simulated, fake_config, tmp_path / "whole.fits")) == 0
    resumed, whole = read_catalogue(out), read_catalogue(tmp_path / "whole.fits")
    assert len(whole) > 10 and resumed.colnames == whole.colnames
    for name in whole.colnames:
        floats = whole[name].dtype.kind == "f"
        assert np.array_equal(np.asarray(resumed[name]), np.asarray(whole[name]), equal_nan=floats), name
    assert {k: v for k, v in resumed.meta.items() if k != "created"} == {
        k: v for k, v in whole.meta.items() if k != "created"
    }
    assert (tmp_path / "killed_rejects.csv").read_text() == (tmp_path / "whole_rejects.csv").read_text()
