"""Shared fixtures: paths to the real sample data in ../shared/data (tests skip with a reason when absent)."""

from __future__ import annotations

import os
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
