"""Shared fixtures: paths to the real sample data in ../shared/data (tests skip with a reason when absent)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

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
