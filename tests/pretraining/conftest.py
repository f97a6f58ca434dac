"""Fixtures of the pretraining tests: the tiny sets' images, tiny picture folders, and the tool called in-process."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, astrodet_cache_env
from tests.data.fits_samples import tiny_fits_cache

# What every short run shares: tiny views, a few images per step, no reader processes (their start-up dominates).
QUICK = ["--batch-size", "4", "--input-size", "32", "--num-workers", "0", "--device", "cpu"]


@functools.cache
def pretrain_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("astrodet_pretrain_tool", REPO / "tools" / "pretrain.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_pretrain(*args: str | Path) -> int:
    """``tools/pretrain.py ARGS`` in this process; its exit status."""
    return pretrain_tool().main([str(a) for a in args])


@pytest.fixture(scope="session")
def tiny_pictures(tiny_cache: Path) -> Path:
    """The folder of the tiny set's 60 PNG cutouts (200 x 200, Lupton RGB)."""
    from astrodet.data import catalogue

    with astrodet_cache_env(tiny_cache):
        folder = catalogue.ensure("tiny", progress=False)["train"].parent / "clumps_images"
    assert len(list(folder.glob("*.png"))) == 60
    return folder


@pytest.fixture(scope="session")
def tiny_fits_train(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The COCO file of the tiny set's training split as 5-band (ugriz) FITS cubes."""
    from astrodet.data import catalogue

    with astrodet_cache_env(tiny_fits_cache(tmp_path_factory)):
        return catalogue.ensure("tiny_fits", progress=False)["train"]


def write_pictures(folder: Path, count: int, size: int = 40, seed: int = 0) -> list[Path]:
    """``count`` random RGB PNGs (blobs on noise) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size]
    paths = []
    for k in range(count):
        blob = np.exp(-((rows - rng.uniform(10, size - 10)) ** 2 + (cols - size / 2) ** 2) / 30.0)
        pixels = np.clip(rng.normal(20, 5, (size, size, 3)) + 200 * blob[..., None], 0, 255).astype(np.uint8)
        path = folder / f"galaxy_{k}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths
