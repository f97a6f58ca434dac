"""Display-space clump statistics: known answers on drawn pictures."""

from __future__ import annotations

import numpy as np
import pytest

from astrodet.evaluation.visibility import clump_statistics, luminance, quantile_table, standing_out


def _picture(amplitude: float, fwhm: float, disc: float = 0.3, size: int = 64, noise: float = 0.0) -> np.ndarray:
    rows, cols = np.mgrid[0:size, 0:size] + 0.5
    sigma = fwhm / 2.3548
    blob = amplitude * np.exp(-((cols - 32) ** 2 + (rows - 32) ** 2) / (2 * sigma**2))
    return disc + blob + np.random.default_rng(0).normal(0, noise, size=(size, size)) if noise else disc + blob


def test_point_source_step_contrast_and_extent():
    found = clump_statistics(_picture(0.2, 8.0), 32.0, 32.0, psf_px=8.0)
    assert found["disc"] == pytest.approx(0.3, abs=3e-3)  # the annulus (1-1.6 FWHM): at most 6 % of the peak
    assert 0.15 < found["step"] < 0.2  # the core's mean of a Gaussian peak 0.2
    assert found["rel"] == pytest.approx(found["step"] / found["disc"])
    assert 0.2 < found["ext"] < 0.45  # a PSF-sized source: the ring 0.5-0.8 FWHM is well below the core


def test_broad_source_has_larger_extent_and_empty_disc_has_no_step():
    point = clump_statistics(_picture(0.2, 8.0), 32.0, 32.0, psf_px=8.0)
    broad = clump_statistics(_picture(0.2, 16.0), 32.0, 32.0, psf_px=8.0)
    assert broad["ext"] > point["ext"] + 0.2
    empty = clump_statistics(_picture(0.0, 8.0, noise=0.02), 32.0, 32.0, psf_px=8.0)
    assert abs(empty["step"]) < 0.02 and abs(empty["sn"]) < 2


def test_off_picture_positions_and_bad_psf():
    assert clump_statistics(_picture(0.2, 8.0), -30.0, 32.0, psf_px=8.0) is None
    with pytest.raises(ValueError, match="psf_px"):
        clump_statistics(_picture(0.2, 8.0), 32.0, 32.0, psf_px=0.0)


def test_luminance_quantiles_and_standing_out():
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)
    assert luminance(rgb)[0, 0] == pytest.approx(1 / 3)
    rows = [{"step": s, "rel": s, "sn": s, "ext": float("nan") if s < 0 else s, "disc": 0.5} for s in range(-5, 6)]
    table = quantile_table(rows, quantiles=(50,))
    assert table["step"] == [0.0] and table["ext"] == [2.5]  # NaN extents left out
    null = [{"step": s / 10} for s in range(11)]  # 90th percentile 0.9
    assert [r["step"] for r in standing_out(rows, null)] == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="no null"):
        standing_out(rows, [])
