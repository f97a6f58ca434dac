"""The one build-once protocol: a dataset is built by one process, readers never see half of it, a killed builder
(or its orphaned workers) never leaves a lock that hangs the next run, and a waiter says whom it waits for."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from astrodet.data import cache


def _build_writing(marker: str):
    def build(folder: Path) -> dict:
        folder.mkdir(parents=True)
        (folder / "data.txt").write_text(marker)
        return {"marker": marker}

    return build


def test_builds_once_and_reuses(tmp_path) -> None:
    calls = []

    def build(folder: Path) -> dict:
        calls.append(folder)
        folder.mkdir(parents=True)
        return {"n": len(calls)}

    first = cache.build_once(tmp_path / "ds", build, "test set")
    second = cache.build_once(tmp_path / "ds", build, "test set")
    assert first == second == {"n": 1} and len(calls) == 1
    assert json.loads((tmp_path / "ds" / cache.READY_FILE).read_text()) == {"n": 1}


def test_a_failed_build_leaves_no_ready_file_and_the_next_starts_clean(tmp_path) -> None:
    def failing(folder: Path) -> dict:
        folder.mkdir(parents=True)
        (folder / "half.txt").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        cache.build_once(tmp_path / "ds", failing, "test set")
    assert cache.ready_info(tmp_path / "ds") is None
    cache.build_once(tmp_path / "ds", _build_writing("ok"), "test set")
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == [cache.READY_FILE, "data.txt"]


def _hold_lock_in_child(lock: str, ready: str) -> None:
    with cache.exclusive(Path(lock), "held set"):
        Path(ready).write_text("held")
        time.sleep(60)


def test_a_waiter_names_the_holder_and_gives_up_after_the_timeout(tmp_path, capfd) -> None:
    lock, ready = tmp_path / "ds.lock", tmp_path / "held"
    holder = multiprocessing.get_context("spawn").Process(target=_hold_lock_in_child, args=(str(lock), str(ready)))
    holder.start()
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), "the child never took the lock"
        with pytest.raises(TimeoutError, match=rf"still locked by pid {holder.pid} .*ASTRODET_LOCK_TIMEOUT"):
            with cache.exclusive(lock, "test set", timeout=0.5):
                pass
        assert f"waiting for pid {holder.pid}" in capfd.readouterr().err
    finally:
        holder.kill()
        holder.join()
    with cache.exclusive(lock, "test set", timeout=5):  # the kernel released the dead holder's lock
        pass


_FORKING_BUILDER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from astrodet.data import cache

    def build(folder):
        folder.mkdir(parents=True)
        if os.fork() == 0:  # a worker forked while the lock is held, as a process pool's would be
            time.sleep(120)
            os._exit(0)
        Path(sys.argv[2]).write_text("building")
        time.sleep(120)
        return {}

    cache.build_once(Path(sys.argv[1]), build, "forking set")
    """
)


def test_killing_a_builder_leaves_no_lock_even_with_forked_workers_alive(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(cache.LOCK_TIMEOUT_ENV, "20")  # an inherited lock would fail here instead of hanging
    folder, started = tmp_path / "ds", tmp_path / "started"
    proc = subprocess.Popen([sys.executable, "-c", _FORKING_BUILDER, str(folder), str(started)], start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), "the builder never started"
        proc.kill()  # kill -9 of the builder only: its forked worker lives on
        proc.wait()
        t0 = time.monotonic()
        info = cache.build_once(folder, _build_writing("rebuilt"), "forking set")
        assert info == {"marker": "rebuilt"} and time.monotonic() - t0 < 10
        assert (folder / "data.txt").read_text() == "rebuilt"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def test_lock_timeout_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv(cache.LOCK_TIMEOUT_ENV, "12.5")
    assert cache.lock_timeout() == 12.5
    monkeypatch.setenv(cache.LOCK_TIMEOUT_ENV, "soon")
    with pytest.raises(ValueError, match="ASTRODET_LOCK_TIMEOUT: expected a number of seconds, got 'soon'"):
        cache.lock_timeout()
