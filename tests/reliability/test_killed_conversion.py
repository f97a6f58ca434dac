"""kill -9 of a converter rerun at every step that changes the output folder: the folder then shows the complete
previous outputs or the complete new ones (split files, rejects report and images together), and the next run
leaves exactly one set and no temporary file.

The rerun runs in a forked child that kills itself with SIGKILL just before its k-th rename, link, unlink or
folder change, for every k of a full run, so each point between two file-system steps is tried once,
deterministically. A slower test does the same to the ``astrodet convert`` command, killed from outside when a
staged file appears.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.inputs import Case, clumpscout_case, galaxyzoo_case, npz_case

STEPS = ("replace", "rename", "link", "symlink", "unlink", "rmdir", "mkdir")  # the os calls a run changes files with

Seen = dict[str, object]


def _visible(folder: Path) -> Seen:
    """What a reader sees: each non-hidden name's bytes (a folder: its files' bytes), links followed; a dangling
    link shows nothing, as a missing file."""
    seen: Seen = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.exists():
            continue
        if path.is_dir():
            seen[path.name] = {p.name: p.read_bytes() for p in sorted(path.iterdir())}
        else:
            seen[path.name] = path.read_bytes()
    return seen


def _count_steps(run: Callable[[], object], monkeypatch: pytest.MonkeyPatch) -> int:
    calls = 0
    for name in STEPS:
        real = getattr(os, name)

        def counted(*args, real=real, **kwargs):
            nonlocal calls
            calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(os, name, counted)
    try:
        run()
    finally:
        monkeypatch.undo()
    return calls


def _killed_at(step: int, run: Callable[[], object]) -> bool:
    """Run in a forked child that SIGKILLs itself just before its ``step``-th file-system change; True if it died."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            calls = 0
            for name in STEPS:
                real = getattr(os, name)

                def dying(*args, real=real, **kwargs):
                    nonlocal calls
                    calls += 1
                    if calls == step:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return real(*args, **kwargs)

                setattr(os, name, dying)
            run()
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status):
        assert os.WEXITSTATUS(status) == 0, "the rerun failed in the child (traceback above)"
        return False
    assert os.WTERMSIG(status) == signal.SIGKILL
    return True


def _one_set_left(folder: Path, stem: str) -> None:
    """After a complete run: one generation, its manifest, the lock; no temporary file anywhere."""
    unit = folder / f".{stem}.astrodet"
    inside = sorted(p.name for p in unit.iterdir())
    assert len(inside) == 4 and inside[0] == "current" and inside[3] == "lock", inside
    generation = os.readlink(unit / "current")
    assert inside[1:3] == [generation, f"{generation}.json"]
    hidden = [p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != unit.name]
    assert all(name.startswith(f".{stem}.astrodet-{generation}-") for name in hidden), hidden
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp") or "astrodet-link" in p.name]


CASES: dict[str, tuple[Callable[[Path, int], Case], dict[str, object], dict[str, object]]] = {
    # converter: (input maker taking a seed, options of the first run, options of the rerun)
    "clumpscout_new_split": (lambda f, s: clumpscout_case(f, 4, s), {"split": "train=0.5,val=0.25,test=0.25"}, {}),
    "galaxyzoo_reseeded": (lambda f, s: galaxyzoo_case(f, 4, s), {"split": "train=0.5,test=0.5"}, {"seed": 3}),
    "npz_own_splits": (lambda f, s: npz_case(f, 3, s), {}, {}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_rerun_killed_at_every_step_leaves_the_old_or_the_new_set(tmp_path, monkeypatch, name) -> None:
    make, first, second = CASES[name]
    (tmp_path / "old_in").mkdir()
    (tmp_path / "new_in").mkdir()
    old_case, new_case = make(tmp_path / "old_in", 0), make(tmp_path / "new_in", 1)
    work = tmp_path / "work"

    def fresh(case: Case, **options) -> Path:
        """Run ``case`` into an emptied output folder; that folder."""
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        case.run(work / "o.json", **options)
        return work

    expected_old = _visible(fresh(old_case, **first))
    expected_new = _visible(fresh(new_case, **second))
    assert expected_old != expected_new

    def rerun() -> object:
        return new_case.run(work / "o.json", **second)

    fresh(old_case, **first)
    steps = _count_steps(rerun, monkeypatch)
    assert steps > 3
    outcomes = set()
    for step in range(1, steps + 1):
        fresh(old_case, **first)
        assert _killed_at(step, rerun)
        seen = _visible(work)
        assert seen in (expected_old, expected_new), f"killed before step {step} of {steps}: a mixed set"
        outcomes.add("old" if seen == expected_old else "new")
        rerun()  # the next run finishes and cleans up after the killed one
        assert _visible(work) == expected_new
        _one_set_left(work, "o")
    assert outcomes == {"old", "new"}  # kills landed on both sides of the switch


@pytest.mark.slow
@pytest.mark.parametrize("trigger", ["images", "rejects", "generation"])
def test_the_convert_command_killed_from_outside_leaves_the_old_or_the_new_set(tmp_path, trigger) -> None:
    """``astrodet convert`` on 100 galaxies, killed (SIGKILL from this test) the moment a staged file appears."""
    (tmp_path / "old_in").mkdir()
    (tmp_path / "new_in").mkdir()
    old_case = clumpscout_case(tmp_path / "old_in", n=100, seed=0)
    new_case = clumpscout_case(tmp_path / "new_in", n=100, seed=1)
    work = tmp_path / "work"
    split = "train=0.5,val=0.5"

    def fresh(case: Case) -> Seen:
        """The outputs of a complete run (in this process: the same call the command makes)."""
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        case.run(work / "o.json", split=split)
        return _visible(work)

    expected_new = fresh(new_case)
    expected_old = fresh(old_case)
    images = str(new_case.options["images_dir"])
    argv = [sys.executable, "-m", "astrodet.cli", "convert", "clumpscout", "--split", split]
    argv += ["--boxes", str(new_case.source), "--images", images, "--out", str(work / "o.json")]
    watch = {
        "images": lambda: (work / ".o.astrodet-g2-o_images").is_dir(),
        "rejects": lambda: (work / ".o.astrodet-g2-o_rejects.csv").exists(),
        "generation": lambda: (work / ".o.astrodet" / "g2").exists(),
    }[trigger]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not watch() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _visible(work) in (expected_old, expected_new)
    new_case.run(work / "o.json", split=split)  # the next run
    assert _visible(work) == expected_new
    _one_set_left(work, "o")
