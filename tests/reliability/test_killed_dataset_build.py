"""kill -9 of a first-use dataset build, at several points: the next run neither hangs nor meets a half-built set.

The real build (simulator with its forked worker pool, then the converter) is killed after different delays; the
next ``catalogue.ensure`` must finish (a lock inherited by orphaned workers would time out here) and give exactly
the dataset an uninterrupted build gives.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from astrodet.data import catalogue
from astrodet.data.coco import load_coco
from tests.conftest import astrodet_cache_env

BUILD = "from astrodet.data import catalogue; catalogue.ensure('tiny', progress=False)"


def _digest(paths: dict[str, Path]) -> dict[str, str]:
    """Each split's images, annotations and categories, and the bytes of every image (``info`` names the folder)."""
    out = {}
    for split, path in paths.items():
        data = load_coco(path)
        digest = hashlib.sha256(json.dumps({k: data[k] for k in ("images", "annotations", "categories")}).encode())
        for image in data["images"]:
            digest.update((path.parent / image["file_name"]).read_bytes())
        out[split] = digest.hexdigest()
    return out


@pytest.mark.slow
@pytest.mark.parametrize("delay_s", [0.5, 2.0, 5.0])
def test_next_run_after_a_killed_build_finishes_and_matches(tmp_path, tiny_cache, monkeypatch, delay_s) -> None:
    with astrodet_cache_env(tiny_cache):
        reference = _digest(catalogue.ensure("tiny", progress=False))
    monkeypatch.setenv("ASTRODET_LOCK_TIMEOUT", "60")  # a leaked lock fails the test instead of hanging it
    env = {**os.environ, "ASTRODET_CACHE": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-c", BUILD], env=env, start_new_session=True)
    time.sleep(delay_s)
    proc.kill()  # the builder only: any forked simulator workers are orphaned, as after a real kill -9
    proc.wait()
    try:
        with astrodet_cache_env(tmp_path):
            paths = catalogue.ensure("tiny", progress=False)
            assert _digest(paths) == reference
            assert (catalogue.folder("tiny") / "READY.json").is_file()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
