"""Aperture photometry of detections on FITS inputs, per band, with photutils.

Why this way: a catalogue of clumps is used for their fluxes and colours (Adams et al. 2022 and Popp et al. publish
ugriz fluxes), and the detector only sees a stretched 8-bit rendering, so fluxes are measured on the FITS data.
Each detection gets a circular aperture at its box centre, radius half the box's geometric-mean side (or a fixed
``--aperture`` in pixels). The background is the band's sigma-clipped median (zero for sky-subtracted data), the
per-pixel error its sigma-clipped standard deviation plus Poisson noise when the header gives ``GAIN``
(photutils ``calc_total_error``). Fluxes are in the data's flux unit per pixel summed (nanomaggies for SDSS-like
data); ``mag`` is AB from the band's zero point, NaN without one or for a flux <= 0. NaN pixels are masked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from astrodet.data.imaging import png_to_fits_pixel
from astrodet.inference.images import BandImage

MIN_RADIUS = 1.0  # px: an aperture smaller than a pixel measures the pixel grid, not the source


def aperture_radii(boxes: np.ndarray, fixed: float | None) -> np.ndarray:
    """Half the geometric-mean side of each box, or ``fixed`` pixels; never below one pixel."""
    if fixed is not None:
        return np.full(len(boxes), max(float(fixed), MIN_RADIUS))
    side = np.sqrt(np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None))
    return np.maximum(side / 2, MIN_RADIUS)


def _band_photometry(band: BandImage, cols: np.ndarray, rows: np.ndarray, radii: np.ndarray) -> tuple:
    from astropy.stats import sigma_clipped_stats
    from photutils.aperture import CircularAperture, aperture_photometry
    from photutils.utils import calc_total_error

    data = band.flux
    finite = np.isfinite(data)
    _, median, std = sigma_clipped_stats(data[finite], sigma=3.0)
    clean = np.where(finite, data - median, 0.0)
    background_error = np.full(data.shape, float(std))
    error = background_error if band.gain is None else calc_total_error(clean, background_error, band.gain)
    flux = np.full(len(cols), np.nan)
    flux_err = np.full(len(cols), np.nan)
    for radius in np.unique(radii):
        chosen = np.flatnonzero(radii == radius)
        aperture = CircularAperture(np.column_stack([cols[chosen], rows[chosen]]), r=float(radius))
        result = aperture_photometry(clean, aperture, error=error, mask=~finite)
        flux[chosen] = np.asarray(result["aperture_sum"], dtype=float)
        flux_err[chosen] = np.asarray(result["aperture_sum_err"], dtype=float)
    if band.zeropoint is None:
        mag = np.full(len(cols), np.nan)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            mag = np.where(flux > 0, band.zeropoint - 2.5 * np.log10(np.where(flux > 0, flux, 1.0)), np.nan)
    return flux, flux_err, mag


def measure(
    bands: Mapping[str, BandImage],
    boxes: np.ndarray,
    height: int,
    band_order: Sequence[str],
    fixed_radius: float | None = None,
) -> dict[str, np.ndarray]:
    """``flux_<b>``, ``flux_err_<b>``, ``mag_<b>`` for every band of ``band_order`` (NaN for bands not in ``bands``).

    ``boxes`` are in the displayed frame of an image of ``height`` rows (row 0 at the top); the bands' data are in
    FITS orientation.
    """
    n = len(boxes)
    x = (boxes[:, 0] + boxes[:, 2]) / 2
    y = (boxes[:, 1] + boxes[:, 3]) / 2
    cols, rows = png_to_fits_pixel(x, y, height)
    radii = aperture_radii(boxes, fixed_radius)
    columns: dict[str, np.ndarray] = {}
    for name in band_order:
        if name in bands and n:
            flux, flux_err, mag = _band_photometry(bands[name], cols, rows, radii)
        else:
            flux, flux_err, mag = (np.full(n, np.nan) for _ in range(3))
        columns[f"flux_{name}"] = flux
        columns[f"flux_err_{name}"] = flux_err
        columns[f"mag_{name}"] = mag
    return columns
