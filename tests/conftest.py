"""Shared fixtures: paths to the real sample data in ../shared/data (tests skip with a reason when absent)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ASTRODET_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real sample data folder (see its README for sources); skip if this checkout has none beside it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sample data not found at {SHARED_DATA} (set ASTRODET_SHARED_DATA)")
    return SHARED_DATA


@contextlib.contextmanager
def astrodet_cache_env(cache: Path) -> Iterator[Path]:
    """Point ``$ASTRODET_CACHE`` at ``cache`` inside the block, restoring the previous value after."""
    old = os.environ.get("ASTRODET_CACHE")
    os.environ["ASTRODET_CACHE"] = str(cache)
    try:
        yield cache
    finally:
        if old is None:
            del os.environ["ASTRODET_CACHE"]
        else:
            os.environ["ASTRODET_CACHE"] = old


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ASTRODET_CACHE holding the tiny default dataset, generated once per test session."""
    from astrodet.data import catalogue

    cache = tmp_path_factory.mktemp("astrodet_cache")
    with astrodet_cache_env(cache):
        catalogue.ensure("tiny", progress=False)
    return cache


def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` as a module (the tools are scripts, not a package); registered in ``sys.modules`` first,
    as the dataclasses some of them define look their module up while being created."""
    spec = importlib.util.spec_from_file_location(f"astrodet_tool_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def train_two_iterations(framework: str, config: Path, out: Path, cache: Path) -> subprocess.CompletedProcess:
    """Train ``config`` for two iterations with the framework's own tool (a subprocess, as a user runs it), the data
    from ``cache``; Detectron2 writes into ``out``, MMDetection uses it as the work dir."""
    if framework == "detectron2":
        cmd = [str(REPO / "tools" / "train_net.py"), "--config-file", str(config), "OUTPUT_DIR", str(out)]
        cmd += ["SOLVER.MAX_ITER", "2"]
    else:
        cmd = [str(REPO / "tools" / "train_mmdet.py"), str(config), "--work-dir", str(out), "--cfg-options"]
        cmd += ["train_cfg.max_iters=2", "train_cfg.val_interval=2"]
    env = dict(os.environ, ASTRODET_CACHE=str(cache))
    return subprocess.run([sys.executable, *cmd], capture_output=True, text=True, env=env, timeout=900, cwd=out.parent)
