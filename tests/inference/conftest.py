"""Fixtures for the inference tests: a few simulated galaxies with PNG cutouts, cutout-frame FITS and truth tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from astrodet.data.simulation import simulate_dataset


@pytest.fixture(scope="session")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six simulated galaxies (seed 5): images/*.png, fits_cutout/<id>_<band>.fits, galaxies.csv, clumps.csv."""
    folder = tmp_path_factory.mktemp("simulated")
    simulate_dataset(folder, 6, 5, workers=1, progress=False, write_fits=False, write_cutout_fits=True)
    return folder


@pytest.fixture
def fake_config(tmp_path: Path) -> tuple[str, str]:
    """A config and weights file pair for the command line (the fake model ignores their contents)."""
    config, weights = tmp_path / "fake.yaml", tmp_path / "fake.pth"
    config.write_text("MODEL: {}\n")
    weights.write_bytes(b"fake weights")
    return str(config), str(weights)
