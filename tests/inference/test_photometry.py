"""Aperture photometry of a known synthetic source: flux, error, AB magnitude, Poisson noise, masked pixels."""

from __future__ import annotations

import math

import numpy as np

from astrodet.inference.images import BandImage
from astrodet.inference.photometry import measure


def _gaussian(shape: tuple[int, int], x: float, y: float, flux: float, sigma: float) -> np.ndarray:
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    return flux * np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * sigma**2)) / (2 * math.pi * sigma**2)


def test_flux_error_and_ab_magnitude_of_a_known_source() -> None:
    shape, sigma, noise, total = (120, 100), 2.0, 0.01, 50.0
    col, row = 40.0, 70.0  # FITS 0-based pixel centre of the source
    data = _gaussian(shape, col, row, total, sigma) + np.random.default_rng(0).normal(0, noise, shape)
    height = shape[0]
    x, y = col + 0.5, height - row - 0.5  # the same point in the displayed frame (row 0 at the top)
    half = 3 * sigma  # box of +-3 sigma -> aperture radius 3 sigma holds 1 - exp(-4.5) of the flux
    boxes = np.array([[x - half, y - half, x + half, y + half]])
    bands = {"r": BandImage(data, 22.5, None), "g": BandImage(data, None, None)}
    columns = measure(bands, boxes, height, ("g", "r", "i"))
    expected = total * (1 - math.exp(-4.5))
    radius_error = noise * math.sqrt(math.pi * half**2)
    assert abs(columns["flux_r"][0] - expected) < 4 * radius_error
    assert abs(columns["flux_err_r"][0] / radius_error - 1) < 0.1
    assert abs(columns["mag_r"][0] - (22.5 - 2.5 * math.log10(expected))) < 0.01
    assert np.isnan(columns["mag_g"][0]) and np.isfinite(columns["flux_g"][0])  # no zero point: flux, no mag
    assert np.isnan(columns["flux_i"][0])  # a band the input does not have
    fixed = measure(bands, boxes, height, ("r",), fixed_radius=1.0)
    assert fixed["flux_r"][0] < columns["flux_r"][0] / 2


def test_poisson_noise_from_the_gain_and_nan_pixels_masked() -> None:
    shape = (60, 60)
    data = _gaussian(shape, 30, 30, 1000.0, 2.0)
    data[0, 0] = np.nan
    boxes = np.array([[24.5, 23.5, 36.5, 35.5]])
    without = measure({"r": BandImage(data, 22.5, None)}, boxes, 60, ("r",))
    with_gain = measure({"r": BandImage(data, 22.5, 4.0)}, boxes, 60, ("r",))
    assert np.isfinite(without["flux_r"][0])
    assert with_gain["flux_err_r"][0] > without["flux_err_r"][0]
    assert abs(with_gain["flux_err_r"][0] - math.sqrt(without["flux_r"][0] / 4.0)) < 1.0
