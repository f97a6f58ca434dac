"""kill -9 of an ``astrodet simulate`` rerun (another seed, another count) into the same ``--out``: the folder then
shows the complete previous dataset or the complete new one (images and tables together, never new images beside
old tables), and the next run succeeds and leaves one set and no temporary file.

As for the converters (tests/reliability/test_killed_conversion.py, whose helpers this reuses), the rerun runs in
a forked child that SIGKILLs itself just before its k-th file-system change, for every k of a full run; a slower
test kills the command itself, with its worker processes, from outside when a staged file appears.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from astrodet.data.simulation import simulate_dataset
from tests.reliability.test_killed_conversion import Seen, _count_steps, _killed_at, _one_set_left, _visible

STEM = "o.simulation"  # the output unit of --out <work>/o


def _simulated(work: Path, n: int, seed: int, workers: int = 1) -> None:
    simulate_dataset(work / "o", n, seed, workers=workers, progress=False, write_fits=False)


def _fresh(work: Path, n: int, seed: int) -> Seen:
    """What a reader sees after a complete run into an emptied ``work``."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    _simulated(work, n, seed)
    return _visible(work / "o")


def test_a_rerun_killed_at_every_step_leaves_the_old_or_the_new_set(tmp_path, monkeypatch) -> None:
    work, template = tmp_path / "work", tmp_path / "template"
    expected_new = _fresh(work, 1, seed=1)
    expected_old = _fresh(work, 2, seed=0)
    assert expected_old.keys() == expected_new.keys() and expected_old != expected_new
    shutil.copytree(work, template, symlinks=True)  # the old set, as published (links and unit included)

    def rerun() -> object:
        return _simulated(work, 1, seed=1)

    def restore_old() -> None:
        shutil.rmtree(work)
        shutil.copytree(template, work, symlinks=True)

    restore_old()
    steps = _count_steps(rerun, monkeypatch)
    assert steps > 5
    outcomes = set()
    for step in range(1, steps + 1):
        restore_old()
        assert _killed_at(step, rerun)
        seen = _visible(work / "o")
        assert seen in (expected_old, expected_new), f"killed before step {step} of {steps}: a mixed set"
        outcomes.add("old" if seen == expected_old else "new")
        rerun()  # the next run finishes and cleans up after the killed one
        assert _visible(work / "o") == expected_new
        _one_set_left(work, STEM)
    assert outcomes == {"old", "new"}  # kills landed on both sides of the switch


def test_a_folder_written_in_place_is_taken_over_and_other_files_are_kept(tmp_path) -> None:
    """An ``--out`` of an earlier astrodet (plain files) switches like any other; a user's own file survives."""
    out = tmp_path / "o"
    simulate_dataset(out, 2, 0, workers=1, progress=False, atomic=False)
    assert not out.is_symlink() and (out / "fits").is_dir()
    (out / "notes.txt").write_text("mine")
    simulate_dataset(out, 1, 1, workers=1, progress=False, write_fits=False)
    assert out.is_symlink() and (out / "notes.txt").read_text() == "mine"
    assert not (out / "fits").exists()  # the old run's FITS do not survive beside the new tables
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["images", "boxes.csv", "clumps.csv", "galaxies.csv", "simulation.json", "notes.txt"]
    )
    assert len(list((out / "images").iterdir())) == 1
    _one_set_left(tmp_path, STEM)


@pytest.mark.slow
@pytest.mark.parametrize("trigger", ["images", "tables", "generation"])
def test_the_simulate_command_killed_from_outside_leaves_the_old_or_the_new_set(tmp_path, trigger) -> None:
    """``astrodet simulate`` with two worker processes, killed (SIGKILL) the moment a staged file appears."""
    work = tmp_path / "work"
    expected_new = _fresh(work, 12, seed=1)
    expected_old = _fresh(work, 10, seed=0)
    staged = work / f".{STEM}.astrodet-g2-o"
    watch = {
        "images": lambda: any((staged / "images").glob("*.png")) if (staged / "images").is_dir() else False,
        "tables": lambda: (staged / "boxes.csv").exists(),
        "generation": lambda: (work / f".{STEM}.astrodet" / "g2").exists(),
    }[trigger]
    argv = [sys.executable, "-m", "astrodet.cli", "simulate", "--out", str(work / "o"), "--n", "12", "--seed", "1"]
    argv += ["--workers", "2", "--no-fits", "--no-progress"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while not watch() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if trigger != "generation":  # staged while most of the run was still ahead: the kill landed mid-run
        assert proc.returncode == -signal.SIGKILL
    seen = _visible(work / "o")
    assert seen in (expected_old, expected_new)
    time.sleep(0.5)  # a surviving worker would still be writing now
    assert _visible(work / "o") == seen
    _simulated(work, 12, seed=1, workers=2)  # the next run
    assert _visible(work / "o") == expected_new
    _one_set_left(work, STEM)
