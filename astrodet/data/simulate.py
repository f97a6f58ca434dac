"""Simulated SDSS clumpy galaxies labelled like Galaxy Zoo: Clump Scout: astrodet's embedded default training data.

Why: nothing can be downloaded on the machines astrodet must run on, yet its main job (Faster R-CNN clump
detection, Popp et al. 2024) needs images that look and label like the SDSS cutouts Clump Scout volunteers marked.
This module draws such galaxies, renders them at SDSS depth and resolution, and writes them in the Clump Scout box
format, with the box statistics calibrated on the real tables (see :mod:`astrodet.data.boxstats`).

What one galaxy is (every draw from ``numpy.random.default_rng([seed, index])``, so each galaxy depends only on the
seed and its index, never on the number of worker processes):

- *Observation*: g, r, i at SDSS depth: sky 22.0 / 21.1 / 20.4 mag arcsec^-2, photon noise of sky and sources with
  SDSS gains, read noise; Moffat PSF (beta 2.8-3.6), r-band FWHM 1.1-1.7 arcsec (median 1.35; g 5% wider, i 4%
  narrower). Data are made on the native SDSS grid (0.396 arcsec/px, nanomaggies per pixel, sky subtracted) and
  resampled with a Keys bicubic kernel onto the 400x400 cutout, as Clump Scout cutouts were made from SDSS frames,
  so the noise has the same pixel-correlated texture.
- *Cutout scale*: Clump Scout cutouts are scaled so the galaxy fills the frame. The per-galaxy pixel scale follows
  from the volunteers' box size: a box is ``BOX_SIDE_PER_FWHM`` r-band PSF FWHMs wide (one side per galaxy, as in
  the real tables), the side is drawn from the real per-galaxy distribution for the galaxy's clump count, and
  ``pixel_scale = BOX_SIDE_PER_FWHM * fwhm_arcsec / side`` (about 0.05-0.4 arcsec/px, median 0.12). The disk's
  size in cutout pixels is drawn independently (scale length ~36 px), so its angular size follows from the scale.
- *Galaxy*: exponential disk (face-on central surface brightness, scale length, axis ratio from a random
  inclination, position angle), optional logarithmic spiral arms, and a Sersic bulge (n 1.5-4) that is redder
  than the disk.
- *Labelled sources* (counts from the real joint distribution of clumps and odd clumps per galaxy, plus
  ``NEGATIVE_FRACTION`` = 10% of galaxies with none): giant star-forming clumps (label 1, kind ``sf_clump``:
  compact, near PSF size, bluer than the disk, placed in the disk plane following its light, arms and inclination,
  only where the disk itself is visible, never on the nucleus), and odd clumps (label 2):
  foreground stars (kind ``star``, stellar-locus colours, Moffat wings) or red compact sources on the disk (kind
  ``red_compact``). Every labelled source is *visible*: its peak contrast over the local PSF-convolved galaxy light
  is at least ``MIN_CONTRAST`` and its PSF-weighted signal-to-noise at least ``MIN_SNR`` (both in g+r+i), with
  a random margin above both (in the spirit of the flux-ratio cuts of Adams et al. 2022).
- *Unlabelled content*, so that labels stay consistent with pixels: faint star-forming knots at most
  ``FAINT_MAX_FRACTION`` of both visibility thresholds (invisible), extended background galaxies away from the
  disk, an occasional companion galaxy, and field stars outside the central 200x200 training crop only.

Outputs in the dataset folder (each written atomically; same seed -> identical bytes, whatever ``workers``):

- ``images/<local_id>.png``: 400x400 RGB, north up, east left, Lupton asinh of (i, r, g) surface brightness via
  :func:`astrodet.data.imaging.lupton_rgb`.
- ``fits/<local_id>_<band>.fits`` (g, r, i): the native-resolution data, ``BUNIT = 'nanomaggy'`` per 0.396 arcsec
  pixel (SDSS frame units; 22.5 mag = 1 nanomaggy), TAN WCS with the galaxy at ``CRPIX`` = (``fits_x`` + 1,
  ``fits_y`` + 1) of galaxies.csv; headers carry PSF, sky and gain.
- ``boxes.csv``: exactly the Clump Scout table columns ``image_id,local_ids,filename,label,label_text,x1,x2,y1,y2``.
  ``x1..y2`` are in pixels of the central 200x200 crop (PNG pixels 100-300), i.e. PNG-frame coordinates minus 100,
  so boxes of sources outside the crop have negative or > 200 values, as in the real table; label 1 ``clumpy``,
  2 ``clumpy, odd``; ``filename`` is ``images/<local_id>.png``.
- ``clumps.csv``: one row per box, same order: source positions (RA/Dec, PNG-frame x, y), g/r/i fluxes in
  nanomaggies, flux ratio to the smooth galaxy (bulge + disk) in g and r, r magnitude, contrast, SNR, kind.
- ``galaxies.csv``: one row per galaxy, including galaxies without clumps.
- ``simulation.json``: seed, count and the calibration constants, no timestamp.

Coordinates: PNG frame (x, y) is continuous with the origin at the top-left corner of the top-left pixel, x right,
y down (as :mod:`astrodet.data.coco`); the galaxy centre is at (200, 200). The 0-based FITS pixel of a PNG point
is ``fits_x + (x - 200) * pixel_scale / 0.396``, ``fits_y - (y - 200) * pixel_scale / 0.396``; the WCS of the PNG
frame is :func:`astrodet.data.imaging.celestial_wcs` (ra, dec, pixel_scale, (400, 400)) after
:func:`astrodet.data.imaging.png_to_fits_pixel`. image_id is 50,000,000 + galaxy index (Zooniverse-like subject id,
outside the real Clump Scout range); local_ids is a 12-digit id unique for (seed mod 90,000, index).
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import re
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from scipy.signal import fftconvolve
from scipy.special import gamma as gamma_fn

from astrodet.data.imaging import celestial_wcs, fits_header, lupton_rgb, write_fits_image, write_png
from astrodet.errors import AstrodetInputError
from astrodet.io import atomic_write_json, atomic_write_text

BANDS = ("g", "r", "i")
FRAME = 400  # Clump Scout PNG cutout side (px)
CROP_OFFSET = 100  # boxes are in the central 200x200 crop: crop = PNG - 100 (Popp et al. 2024)
CROP_SIDE = 200
SDSS_PIXEL = 0.396  # arcsec per native SDSS pixel
ZEROPOINT = 22.5  # mag of 1 nanomaggy
BOXES_COLUMNS = ("image_id", "local_ids", "filename", "label", "label_text", "x1", "x2", "y1", "y2")
LABEL_TEXT = {1: "clumpy", 2: "clumpy, odd"}
IMAGE_ID_BASE = 50_000_000
MAX_GALAXIES = 10_000_000

# Observing conditions (SDSS DR7-like): sky surface brightness (mag arcsec^-2), electrons per nanomaggy
# (gain / nanomaggies-per-count), read noise (electrons), seeing ratio to r (FWHM ~ wavelength^-0.2).
SKY_MAG = {"g": 22.0, "r": 21.1, "i": 20.4}
ELECTRONS_PER_NMGY = {"g": 1000.0, "r": 870.0, "i": 765.0}
READ_NOISE_E = 5.5
SEEING_RATIO = {"g": 1.055, "r": 1.0, "i": 0.96}

# Labelling rule: a source is visible (and must be labelled) when, in g+r+i, its peak is >= MIN_CONTRAST times the
# local PSF-convolved galaxy light AND its PSF-weighted S/N is >= MIN_SNR. Labelled sources get a random margin
# above both; unlabelled knots stay below FAINT_MAX_FRACTION of both, so no source sits near the boundary.
MIN_CONTRAST = 0.7
MIN_SNR = 25.0
LABEL_MARGIN = 1.3
FAINT_MAX_FRACTION = 0.3
DISK_MIN_SNR = 4.0  # clumps (not stars) only where the smooth galaxy is >= 4 sigma per native pixel
BOX_SIDE_PER_FWHM = 1.5  # box side = 1.5 r-band PSF FWHM (volunteer boxes are one size per galaxy)
NEGATIVE_FRACTION = 0.1  # galaxies drawn with no clumps at all

# Joint distribution of (clumps, odd clumps) per galaxy in the real Clump Scout train table
# (clumpscout_boxes_train.csv, 13,969 galaxies; rows: 0..8 clumps, columns: 0..4 odd clumps).
COUNT_TABLE = np.array(
    [
        [0, 1278, 784, 72, 12],
        [2345, 2614, 305, 39, 4],
        [2427, 986, 164, 24, 8],
        [1142, 426, 66, 12, 0],
        [503, 176, 46, 4, 1],
        [223, 74, 18, 2, 0],
        [110, 26, 4, 0, 0],
        [42, 11, 0, 0, 0],
        [13, 3, 0, 0, 0],
    ],
    dtype=float,
)
# Per-galaxy box side (px) quantiles in the real train table by number of boxes (1, 2, 3, 4, 5+): galaxies with
# more clumps have smaller boxes (finer pixel scale relative to the PSF). Extremes capped to 6-36 px.
SIDE_LEVELS = np.array([0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0])
SIDE_QUANTILES = np.array(
    [
        [6.0, 8.1, 10.9, 12.6, 15.4, 19.5, 23.7, 27.2, 29.6, 33.2, 36.0],
        [6.0, 7.4, 10.0, 11.4, 14.4, 18.2, 22.4, 26.4, 28.9, 32.7, 36.0],
        [6.0, 7.0, 9.0, 10.2, 12.8, 16.2, 20.1, 24.3, 26.6, 30.7, 36.0],
        [6.0, 6.8, 8.6, 9.6, 12.0, 14.9, 18.4, 22.4, 25.0, 29.7, 36.0],
        [6.0, 6.6, 8.6, 9.5, 11.3, 13.7, 17.0, 20.6, 23.2, 27.7, 32.1],
    ]
)

GALAXY_COLUMNS = (
    "local_ids", "image_id", "filename", "ra", "dec", "pixel_scale", "psf_fwhm_arcsec", "psf_fwhm_px", "psf_beta",
    "box_side_px", "n_boxes", "n_clumps", "n_odd", "n_faint_knots", "n_background", "has_companion",
    "mag_g", "mag_r", "mag_i", "disk_scale_px", "disk_mu0_r", "axis_ratio", "position_angle_deg",
    "disk_g_r", "disk_r_i", "bulge_fraction_r", "bulge_sersic_n", "arm_amplitude", "fits_x", "fits_y", "fits_size",
)  # fmt: skip
CLUMP_COLUMNS = (
    "local_ids", "image_id", "clump_index", "label", "kind", "ra", "dec", "x", "y",
    "flux_g", "flux_r", "flux_i", "flux_ratio_g", "flux_ratio_r", "mag_r", "contrast", "snr",
)  # fmt: skip


@dataclass(frozen=True)
class SimulationSummary:
    """What :func:`simulate_dataset` wrote: counts, paths and speed (for logs and the dataset builder)."""

    out_dir: str
    n_galaxies: int
    n_boxes: int
    n_clumps: int
    n_odd: int
    n_without_clumps: int
    seconds: float
    galaxies_per_minute: float
    files: dict[str, str] = field(default_factory=dict)


@dataclass
class _Psf:
    fwhm: float  # native pixels
    beta: float

    @property
    def alpha(self) -> float:
        return self.fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / self.beta) - 1.0))

    def peak(self) -> float:
        """Peak value per unit flux of the Moffat profile (per native pixel)."""
        return (self.beta - 1.0) / (math.pi * self.alpha**2)

    def nea(self) -> float:
        """Noise-equivalent area (native pixels): 1 / sum(P^2)."""
        return math.pi * self.alpha**2 * (2.0 * self.beta - 1.0) / (self.beta - 1.0) ** 2

    def widened(self, intrinsic_fwhm: float) -> _Psf:
        return _Psf(math.hypot(self.fwhm, intrinsic_fwhm), self.beta)


@dataclass
class _Source:
    kind: str
    label: int  # 0 = unlabelled
    u: float  # arcsec offsets from the galaxy centre: u to the right (west), v up (north)
    v: float
    fluxes: dict[str, float]
    intrinsic_fwhm: float  # native pixels
    contrast: float = 0.0
    snr: float = 0.0


# ----------------------------------------------------------------------------------------------- profile helpers


def _mag_to_flux(mag: float) -> float:
    return 10.0 ** ((ZEROPOINT - mag) / 2.5)


def _flux_to_mag(flux: float) -> float:
    return ZEROPOINT - 2.5 * math.log10(max(flux, 1e-12))


def _colour_fluxes(total: float, g_r: float, r_i: float) -> dict[str, float]:
    """Split a g+r+i total flux into bands for the given colours."""
    weights = {"g": 10.0 ** (-0.4 * g_r), "r": 1.0, "i": 10.0 ** (0.4 * r_i)}
    norm = sum(weights.values())
    return {b: total * w / norm for b, w in weights.items()}


def _sersic_b(n: float) -> float:
    return 2.0 * n - 1.0 / 3.0 + 4.0 / (405.0 * n) + 46.0 / (25515.0 * n * n)


def _sersic_total_per_ie(n: float, re: float, q: float) -> float:
    b = _sersic_b(n)
    return 2.0 * math.pi * n * q * re * re * math.exp(b) * b ** (-2.0 * n) * gamma_fn(2.0 * n)


def _ellipse_radius(u: np.ndarray, v: np.ndarray, q: float, theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    x = u * c + v * s
    y = (-u * s + v * c) / q
    return np.hypot(x, y)


def _moffat_stamp(psf: _Psf, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Moffat profile (unit flux) integrated over native pixels by 3x3 sub-sampling; dx, dy are pixel offsets."""
    alpha2 = psf.alpha**2
    norm = (psf.beta - 1.0) / (math.pi * alpha2)
    total = np.zeros(np.broadcast(dx, dy).shape)
    for ox in (-1.0 / 3.0, 0.0, 1.0 / 3.0):
        for oy in (-1.0 / 3.0, 0.0, 1.0 / 3.0):
            total += (1.0 + ((dx + ox) ** 2 + (dy + oy) ** 2) / alpha2) ** (-psf.beta)
    return total * (norm / 9.0)


def _psf_kernel(psf: _Psf) -> np.ndarray:
    radius = math.ceil(3.5 * psf.fwhm)
    grid = np.arange(-radius, radius + 1, dtype=float)
    kernel = _moffat_stamp(psf, grid[None, :], grid[:, None])
    return kernel / kernel.sum()


def _keys_taps(coords: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (n, 4) and Keys (a = -0.5) bicubic weights (n, 4) to sample a grid of ``size`` at ``coords``."""
    base = np.floor(coords)
    frac = coords - base
    dist = np.abs(np.stack([frac + 1.0, frac, 1.0 - frac, 2.0 - frac], axis=1))
    a = -0.5
    near = ((a + 2.0) * dist - (a + 3.0)) * dist * dist + 1.0
    far = ((a * dist - 5.0 * a) * dist + 8.0 * a) * dist - 4.0 * a
    weights = np.where(dist <= 1.0, near, far)
    index = np.clip(base.astype(np.int64)[:, None] + np.arange(-1, 3)[None, :], 0, size - 1)
    return index, weights


def _interpolation_matrix(coords: np.ndarray, size: int) -> sparse.csr_matrix:
    """Sparse (len(coords), size) matrix of bicubic weights: ``M @ column`` samples a grid column at ``coords``."""
    index, weights = _keys_taps(coords, size)
    indptr = np.arange(0, 4 * coords.size + 1, 4)
    return sparse.csr_matrix((weights.ravel(), index.ravel(), indptr), shape=(coords.size, size))


def _resample(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Separable bicubic resampling of ``image`` at the grid ``rows`` x ``cols``, in the image's float dtype (sparse
    products: fast and exactly reproducible, no BLAS threads)."""
    row_matrix = _interpolation_matrix(rows, image.shape[0]).astype(image.dtype)
    col_matrix = _interpolation_matrix(cols, image.shape[1]).astype(image.dtype)
    return row_matrix @ (col_matrix @ image.T).T


def _bilinear(image: np.ndarray, row: float, col: float) -> float:
    r0 = min(max(math.floor(row), 0), image.shape[0] - 2)
    c0 = min(max(math.floor(col), 0), image.shape[1] - 2)
    fr = min(max(row - r0, 0.0), 1.0)
    fc = min(max(col - c0, 0.0), 1.0)
    patch = image[r0 : r0 + 2, c0 : c0 + 2]
    return float(
        patch[0, 0] * (1 - fr) * (1 - fc)
        + patch[0, 1] * (1 - fr) * fc
        + patch[1, 0] * fr * (1 - fc)
        + patch[1, 1] * fr * fc
    )


# ------------------------------------------------------------------------------------------------- one galaxy


class _Galaxy:
    """One simulated galaxy: draws its parameters, renders the native g, r, i data and its labelled sources."""

    def __init__(self, seed: int, index: int, negative_fraction: float) -> None:
        self.index = index
        self.rng = np.random.default_rng([seed, index])
        self.image_id = IMAGE_ID_BASE + index
        self.local_id = 100_000_000_000 + (seed % 90_000) * 10_000_000 + index
        self._draw(negative_fraction)

    # -- parameters
    def _draw(self, negative_fraction: float) -> None:
        rng = self.rng
        self.ra = float(rng.uniform(110.0, 260.0))
        self.dec = float(np.degrees(np.arcsin(rng.uniform(math.sin(math.radians(-5.0)), math.sin(math.radians(65.0))))))
        # counts of labelled sources
        if rng.random() < negative_fraction:
            self.n_clumps, self.n_odd = 0, 0
        else:
            flat = COUNT_TABLE.ravel() / COUNT_TABLE.sum()
            pick = int(rng.choice(flat.size, p=flat))
            self.n_clumps, self.n_odd = divmod(pick, COUNT_TABLE.shape[1])
        n_total = self.n_clumps + self.n_odd
        group = min(max(n_total, 2), 5) - 1 if n_total else 1
        self.box_side = float(np.interp(rng.random(), SIDE_LEVELS, SIDE_QUANTILES[group]))
        # observing conditions
        self.fwhm_r = float(np.clip(rng.normal(1.35, 0.13), 1.1, 1.7))
        self.beta = float(rng.uniform(2.8, 3.6))
        self.sky_mag = {b: SKY_MAG[b] + float(rng.normal(0.0, 0.15)) for b in BANDS}
        self.scale = BOX_SIDE_PER_FWHM * self.fwhm_r / self.box_side  # arcsec per PNG pixel
        self.psf = {b: _Psf(self.fwhm_r * SEEING_RATIO[b] / SDSS_PIXEL, self.beta) for b in BANDS}
        # galaxy structure (sizes in arcsec)
        self.disk_scale_px = float(np.clip(rng.lognormal(math.log(36.0), 0.15), 16.0, 75.0))
        self.rd = self.disk_scale_px * self.scale
        cos_i = rng.uniform(0.3, 1.0)
        self.q = float(math.sqrt(cos_i**2 * (1 - 0.12**2) + 0.12**2))
        self.theta = float(rng.uniform(0.0, math.pi))
        self.mu0_r = float(np.clip(rng.normal(21.0, 0.4), 20.0, 22.0))
        self.disk_gr = float(np.clip(rng.normal(0.45, 0.1), 0.25, 0.7))
        self.disk_ri = float(np.clip(rng.normal(0.28, 0.05), 0.15, 0.4))
        self.bt = float(rng.uniform(0.02, 0.25))
        self.sersic_n = float(rng.uniform(1.5, 4.0))
        self.re_bulge = float(rng.uniform(0.2, 0.55)) * self.rd
        self.q_bulge = float(rng.uniform(max(self.q, 0.6), 1.0))
        self.bulge_gr = float(np.clip(rng.normal(0.85, 0.06), 0.7, 1.0))
        self.bulge_ri = float(np.clip(rng.normal(0.40, 0.04), 0.3, 0.5))
        has_arms = rng.random() < 0.7
        self.arm_amp = float(rng.uniform(0.1, 0.45)) if has_arms else 0.0
        self.arm_m = 2 if rng.random() < 0.75 else 3
        self.arm_pitch = math.radians(float(rng.uniform(12.0, 30.0)))
        self.arm_phase = float(rng.uniform(0.0, 2.0 * math.pi))
        disk_r = 2.0 * math.pi * self.rd**2 * _mag_to_flux(self.mu0_r)
        bulge_r = disk_r * self.bt / (1.0 - self.bt)
        self.disk_flux = _colour_fluxes_r(disk_r, self.disk_gr, self.disk_ri)
        self.bulge_flux = _colour_fluxes_r(bulge_r, self.bulge_gr, self.bulge_ri)
        self.galaxy_flux = {b: self.disk_flux[b] + self.bulge_flux[b] for b in BANDS}
        # native grid: the 400 px frame plus a margin for the interpolation and PSF wings
        half = math.ceil(FRAME / 2 * self.scale / SDSS_PIXEL) + 10
        self.size = 2 * half + 1
        self.cx = half + float(rng.uniform(-0.5, 0.5))
        self.cy = half + float(rng.uniform(-0.5, 0.5))

    # -- geometry
    def to_png(self, u: float, v: float) -> tuple[float, float]:
        return FRAME / 2 + u / self.scale, FRAME / 2 - v / self.scale

    def to_native(self, u: float, v: float) -> tuple[float, float]:
        """(col, row) 0-based native pixel-centre coordinates."""
        return self.cx + u / SDSS_PIXEL, self.cy + v / SDSS_PIXEL

    def disk_point(self, radius: float, phi: float) -> tuple[float, float]:
        """Sky offsets (arcsec) of a point at ``radius`` (arcsec) and azimuth ``phi`` in the inclined disk plane."""
        x, y = radius * math.cos(phi), radius * math.sin(phi) * self.q
        c, s = math.cos(self.theta), math.sin(self.theta)
        return x * c - y * s, x * s + y * c

    def arm_phi(self, radius: float) -> float:
        """Azimuth of a spiral arm crest at ``radius`` (one of the m arms, chosen at random)."""
        arm = int(self.rng.integers(self.arm_m))
        return (
            self.arm_phase
            + math.log(max(radius, 1e-3) / self.rd) / math.tan(self.arm_pitch)
            + 2 * math.pi * arm / self.arm_m
        )

    # -- rendering of the smooth galaxy (native pixels, before the PSF)
    def _smooth_profile(self, cols: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Bulge + disk (+ arms) in nanomaggies per native pixel at native coordinates ``rows`` x ``cols``."""
        uu, vv = np.meshgrid((cols - self.cx) * SDSS_PIXEL, (rows - self.cy) * SDSS_PIXEL)
        r_disk = _ellipse_radius(uu, vv, self.q, self.theta)
        base = np.exp(-r_disk / self.rd)
        arms = np.zeros_like(base)
        if self.arm_amp > 0:
            c, s = math.cos(self.theta), math.sin(self.theta)
            phi = np.arctan2((-uu * s + vv * c) / self.q, uu * c + vv * s)
            wind = np.log(np.maximum(r_disk, 1e-3) / self.rd) / math.tan(self.arm_pitch)
            crest = ((1.0 + np.cos(self.arm_m * (phi - wind - self.arm_phase))) / 2.0) ** 3 / (5.0 / 16.0) - 1.0
            arms = crest * (1.0 - np.exp(-((r_disk / (0.8 * self.rd)) ** 2)))
        r_bulge = _ellipse_radius(uu, vv, self.q_bulge, self.theta)
        bulge = np.exp(-_sersic_b(self.sersic_n) * ((r_bulge / self.re_bulge) ** (1.0 / self.sersic_n) - 1.0))
        disk_norm = SDSS_PIXEL**2 / (2.0 * math.pi * self.rd**2 * self.q)
        bulge_norm = SDSS_PIXEL**2 / _sersic_total_per_ie(self.sersic_n, self.re_bulge, self.q_bulge)
        arm_colour = {"g": 1.25, "r": 1.0, "i": 0.85}  # arms are bluer than the mean disk
        return {
            band: self.disk_flux[band] * disk_norm * base * (1.0 + self.arm_amp * arm_colour[band] * arms)
            + self.bulge_flux[band] * bulge_norm * bulge
            for band in BANDS
        }

    def _smooth_model(self, sub: int = 4) -> dict[str, np.ndarray]:
        """The smooth galaxy before the PSF: sampled at pixel centres, and integrated over pixels by ``sub`` x ``sub``
        sub-sampling in the centre, where the bulge cusp changes within a pixel."""
        axis = np.arange(self.size, dtype=float)
        out = self._smooth_profile(axis, axis)
        half = min(math.ceil(3.0 * self.re_bulge / SDSS_PIXEL) + 3, self.size // 2)
        c0, r0 = round(self.cx) - half, round(self.cy) - half
        c0, r0 = min(max(c0, 0), self.size - 2 * half - 1), min(max(r0, 0), self.size - 2 * half - 1)
        n = 2 * half + 1
        offsets = (np.arange(sub) + 0.5) / sub - 0.5
        cols = (np.arange(c0, c0 + n, dtype=float)[:, None] + offsets[None, :]).ravel()
        rows = (np.arange(r0, r0 + n, dtype=float)[:, None] + offsets[None, :]).ravel()
        fine = self._smooth_profile(cols, rows)
        for band in BANDS:
            out[band][r0 : r0 + n, c0 : c0 + n] = fine[band].reshape(n, sub, n, sub).mean(axis=(1, 3))
        return out

    def _add_extended(
        self, images: dict[str, np.ndarray], u0: float, v0: float, fluxes: dict[str, float], shape: tuple[float, ...]
    ) -> None:
        """Add a Sersic galaxy (pre-PSF) in a stamp around its centre; ``shape`` = (re arcsec, n, q, theta)."""
        re, n, q, theta = shape
        col, row = self.to_native(u0, v0)
        half = math.ceil(8.0 * re / SDSS_PIXEL) + 2
        c0, c1 = max(int(col) - half, 0), min(int(col) + half + 1, self.size)
        r0, r1 = max(int(row) - half, 0), min(int(row) + half + 1, self.size)
        if c0 >= c1 or r0 >= r1:
            return
        sub = 2
        offsets = (np.arange(sub) + 0.5) / sub - 0.5
        cc = (np.arange(c0, c1)[:, None] + offsets[None, :]).ravel()
        rr = (np.arange(r0, r1)[:, None] + offsets[None, :]).ravel()
        uu, vv = np.meshgrid((cc - col) * SDSS_PIXEL, (rr - row) * SDSS_PIXEL)
        radius = _ellipse_radius(uu, vv, q, theta)
        b = _sersic_b(n)
        profile = np.exp(-b * ((radius / re) ** (1.0 / n) - 1.0)) / _sersic_total_per_ie(n, re, q) * SDSS_PIXEL**2
        profile = profile.reshape(r1 - r0, sub, c1 - c0, sub).mean(axis=(1, 3))
        for band in BANDS:
            images[band][r0:r1, c0:c1] += fluxes[band] * profile

    def _add_point(self, images: dict[str, np.ndarray], source: _Source, wide: bool) -> None:
        """Add a compact source, already PSF-convolved: Moffat of the band PSF widened by its intrinsic size."""
        col, row = self.to_native(source.u, source.v)
        for band in BANDS:
            psf = self.psf[band].widened(source.intrinsic_fwhm)
            half = math.ceil((10.0 if wide else 4.0) * psf.fwhm)
            c0, c1 = max(int(col) - half, 0), min(int(col) + half + 1, self.size)
            r0, r1 = max(int(row) - half, 0), min(int(row) + half + 1, self.size)
            if c0 >= c1 or r0 >= r1:
                continue
            dx = np.arange(c0, c1, dtype=float)[None, :] - col
            dy = np.arange(r0, r1, dtype=float)[:, None] - row
            images[band][r0:r1, c0:c1] += source.fluxes[band] * _moffat_stamp(psf, dx, dy)

    # -- labelled and unlabelled sources
    def _visibility_floor(self, u: float, v: float, intrinsic_fwhm: float) -> tuple[float, float, float, float]:
        """(flux needed for MIN_CONTRAST, flux needed for MIN_SNR, local light, noise) in g+r+i at (u, v)."""
        col, row = self.to_native(u, v)
        local = sum(_bilinear(self.convolved[b], row, col) for b in BANDS)
        noise = math.sqrt(sum(self._pixel_variance(b, _bilinear(self.convolved[b], row, col)) for b in BANDS))
        psf = self.psf["r"].widened(intrinsic_fwhm)
        return MIN_CONTRAST * max(local, 0.0) / psf.peak(), MIN_SNR * noise * math.sqrt(psf.nea()), local, noise

    def _measure(self, source: _Source) -> None:
        _, _, local, noise = self._visibility_floor(source.u, source.v, source.intrinsic_fwhm)
        psf = self.psf["r"].widened(source.intrinsic_fwhm)
        total = sum(source.fluxes.values())
        source.contrast = total * psf.peak() / local if local > 0 else float("inf")
        source.snr = total / (noise * math.sqrt(psf.nea()))

    def _pixel_variance(self, band: str, signal: float) -> float:
        """Variance (nanomaggy^2) of one native pixel holding ``signal`` nanomaggies above the sky."""
        gain = ELECTRONS_PER_NMGY[band]
        sky = _mag_to_flux(self.sky_mag[band]) * SDSS_PIXEL**2
        return (sky + max(signal, 0.0)) / gain + (READ_NOISE_E / gain) ** 2

    def _in_frame(self, u: float, v: float, margin: float) -> bool:
        x, y = self.to_png(u, v)
        return margin <= x <= FRAME - margin and margin <= y <= FRAME - margin

    def _far_from(self, u: float, v: float, placed: Sequence[_Source], min_sep_px: float) -> bool:
        for other in placed:
            if math.hypot(u - other.u, v - other.v) / self.scale < min_sep_px:
                return False
        return True

    def _place_labelled(self, kind: str, placed: list[_Source]) -> _Source | None:
        """Draw a visible source of ``kind`` (position, colour, flux above both visibility floors with a margin);
        positions that break a rule (frame, separation, nucleus, invisible disk, flux cap) are redrawn."""
        rng = self.rng
        side = self.box_side
        for _ in range(80):
            if kind == "star":
                # anywhere over the visible disk: uniform in the projected ellipse out to 3.3 scale lengths
                radius = 3.3 * self.rd * math.sqrt(rng.random())
                u, v = self.disk_point(radius, float(rng.uniform(0, 2 * math.pi)))
                intrinsic = 0.0
                g_r, r_i = _star_colours(rng)
                margin = LABEL_MARGIN * math.exp(abs(rng.normal(0.0, 1.3)))
                margin = min(margin, 40.0)
            else:
                radius = self.rd * float(rng.gamma(6.0, 0.3))
                if kind == "sf_clump" and self.arm_amp > 0 and rng.random() < 0.6:
                    phi = self.arm_phi(radius) + float(rng.normal(0.0, 0.25))
                else:
                    phi = float(rng.uniform(0, 2 * math.pi))
                u, v = self.disk_point(radius, phi)
                if kind == "sf_clump":
                    intrinsic = float(rng.uniform(0.0, 0.7)) * self.psf["r"].fwhm
                    g_r = float(min(np.clip(rng.normal(0.1, 0.12), -0.3, 0.3), self.disk_gr - 0.15))
                    r_i = float(np.clip(rng.normal(0.05, 0.12), -0.25, 0.3))
                    margin = LABEL_MARGIN * math.exp(abs(rng.normal(0.0, 0.7)))
                else:  # red_compact
                    intrinsic = float(rng.uniform(0.3, 0.9)) * self.psf["r"].fwhm
                    g_r = float(rng.uniform(0.9, 1.3))
                    r_i = float(rng.uniform(0.35, 0.55))
                    margin = LABEL_MARGIN * math.exp(abs(rng.normal(0.0, 0.6)))
            min_sep = side * (1.6 if kind == "star" else 1.1)
            if not self._in_frame(u, v, side / 2) or not self._far_from(u, v, placed, min_sep):
                continue
            if kind != "star" and math.hypot(u, v) / self.scale < 1.5 * side:
                continue  # the nucleus is never a clump
            f_contrast, f_snr, local, noise = self._visibility_floor(u, v, intrinsic)
            if kind != "star" and local < DISK_MIN_SNR * noise:
                continue  # clumps sit where the disk itself is visible, as volunteers saw them
            total = max(f_contrast, f_snr) * margin
            fluxes = _colour_fluxes(total, g_r, r_i)
            if kind == "sf_clump" and fluxes["g"] > 0.2 * self.galaxy_flux["g"]:
                continue
            if kind == "red_compact" and fluxes["r"] > 0.2 * self.galaxy_flux["r"]:
                continue
            source = _Source(kind, 1 if kind == "sf_clump" else 2, u, v, fluxes, intrinsic)
            self._measure(source)
            return source
        return None

    def _faint_knot(self) -> _Source | None:
        """An unlabelled star-forming knot below FAINT_MAX_FRACTION of a visibility floor: texture, not a clump."""
        rng = self.rng
        radius = self.rd * float(rng.gamma(3.0, 0.6))
        u, v = self.disk_point(radius, float(rng.uniform(0, 2 * math.pi)))
        if not self._in_frame(u, v, 0.0):
            return None
        intrinsic = float(rng.uniform(0.0, 0.7)) * self.psf["r"].fwhm
        f_contrast, f_snr, _, _ = self._visibility_floor(u, v, intrinsic)
        total = min(f_contrast, f_snr) * float(rng.uniform(0.1, FAINT_MAX_FRACTION))
        g_r = float(np.clip(rng.normal(0.2, 0.15), -0.3, 0.5))
        return _Source("faint_knot", 0, u, v, _colour_fluxes(total, g_r, float(rng.normal(0.05, 0.1))), intrinsic)

    def _background(self, images: dict[str, np.ndarray]) -> tuple[int, bool]:
        """Unlabelled extended galaxies away from the disk, an occasional companion; returns (count, companion)."""
        rng = self.rng
        fov_arcmin2 = (FRAME * self.scale / 60.0) ** 2
        count = int(rng.poisson(1.0 + 4.0 * fov_arcmin2))
        added = 0
        for _ in range(count):
            x, y = rng.uniform(0, FRAME, size=2)
            u, v = (x - FRAME / 2) * self.scale, (FRAME / 2 - y) * self.scale
            if _ellipse_radius(np.array(u), np.array(v), self.q, self.theta) < 5.0 * self.rd:
                continue
            re = max(float(rng.uniform(0.8, 2.5)), 1.3 * self.fwhm_r)
            red = rng.random() < 0.4
            flux_r = _mag_to_flux(float(rng.uniform(18.5, 21.5)))
            fluxes = _colour_fluxes_r(flux_r, 0.95, 0.42) if red else _colour_fluxes_r(flux_r, 0.45, 0.25)
            shape = (re, 4.0 if red else 1.0, float(rng.uniform(0.35, 1.0)), float(rng.uniform(0, math.pi)))
            self._add_extended(images, u, v, fluxes, shape)
            added += 1
        companion = bool(rng.random() < 0.2)
        if companion:
            dist = self.rd * float(rng.uniform(5.0, 8.0))
            ang = float(rng.uniform(0, 2 * math.pi))
            dm = float(rng.uniform(0.5, 2.5))
            fluxes = {b: self.galaxy_flux[b] * 10 ** (-0.4 * dm) for b in BANDS}
            re = 1.68 * self.rd * 10 ** (-0.2 * dm) * float(rng.uniform(0.7, 1.3))
            shape = (re, float(rng.uniform(1.0, 4.0)), float(rng.uniform(0.4, 1.0)), float(rng.uniform(0, math.pi)))
            self._add_extended(images, dist * math.cos(ang), dist * math.sin(ang), fluxes, shape)
        return added, companion

    def _field_stars(self) -> list[_Source]:
        """Unlabelled stars, only outside the central training crop (there every visible star is labelled)."""
        rng = self.rng
        fov_arcmin2 = (FRAME * self.scale / 60.0) ** 2
        stars = []
        keep_out = CROP_SIDE / 2 + self.box_side
        for _ in range(int(rng.poisson(0.5 + 1.5 * fov_arcmin2))):
            x, y = rng.uniform(0, FRAME, size=2)
            mag = float(rng.uniform(16.0, 22.0))
            g_r, r_i = _star_colours(rng)
            if abs(x - FRAME / 2) < keep_out and abs(y - FRAME / 2) < keep_out:
                continue
            u, v = (x - FRAME / 2) * self.scale, (FRAME / 2 - y) * self.scale
            stars.append(_Source("field_star", 0, u, v, _colour_fluxes_r(_mag_to_flux(mag), g_r, r_i), 0.0))
        return stars

    # -- everything
    def render(self) -> tuple[dict[str, np.ndarray], list[_Source], dict[str, Any]]:
        """Native noisy g, r, i images, labelled sources (in label order) and the galaxy's catalogue row."""
        images = self._smooth_model()
        n_background, companion = self._background(images)
        self.convolved = {b: fftconvolve(images[b], _psf_kernel(self.psf[b]), mode="same") for b in BANDS}
        labelled: list[_Source] = []
        kinds = ["sf_clump"] * self.n_clumps
        kinds += ["star" if self.rng.random() < 0.55 else "red_compact" for _ in range(self.n_odd)]
        for kind in kinds:
            source = self._place_labelled(kind, labelled)
            if source is not None:
                labelled.append(source)
        faint = [s for s in (self._faint_knot() for _ in range(int(self.rng.poisson(2.0)))) if s is not None]
        model = {b: self.convolved[b].copy() for b in BANDS}
        for source in labelled + faint:
            self._add_point(model, source, wide=source.kind == "star")
        for source in self._field_stars():
            self._add_point(model, source, wide=True)
        noisy = {}
        for band in BANDS:
            gain = ELECTRONS_PER_NMGY[band]
            sky = _mag_to_flux(self.sky_mag[band]) * SDSS_PIXEL**2
            variance = (sky + np.maximum(model[band], 0.0)) / gain + (READ_NOISE_E / gain) ** 2
            noise = self.rng.standard_normal(model[band].shape)
            noisy[band] = (model[band] + noise * np.sqrt(variance)).astype(np.float32)
        row = self._galaxy_row(labelled, len(faint), n_background, companion)
        return noisy, labelled, row

    def _galaxy_row(self, labelled: list[_Source], n_faint: int, n_background: int, companion: bool) -> dict[str, Any]:
        return {
            "local_ids": self.local_id,
            "image_id": self.image_id,
            "filename": f"images/{self.local_id}.png",
            "ra": self.ra,
            "dec": self.dec,
            "pixel_scale": self.scale,
            "psf_fwhm_arcsec": self.fwhm_r,
            "psf_fwhm_px": self.fwhm_r / self.scale,
            "psf_beta": self.beta,
            "box_side_px": self.box_side,
            "n_boxes": len(labelled),
            "n_clumps": sum(s.label == 1 for s in labelled),
            "n_odd": sum(s.label == 2 for s in labelled),
            "n_faint_knots": n_faint,
            "n_background": n_background,
            "has_companion": int(companion),
            "mag_g": _flux_to_mag(self.galaxy_flux["g"]),
            "mag_r": _flux_to_mag(self.galaxy_flux["r"]),
            "mag_i": _flux_to_mag(self.galaxy_flux["i"]),
            "disk_scale_px": self.disk_scale_px,
            "disk_mu0_r": self.mu0_r,
            "axis_ratio": self.q,
            "position_angle_deg": math.degrees(self.theta),
            "disk_g_r": self.disk_gr,
            "disk_r_i": self.disk_ri,
            "bulge_fraction_r": self.bt,
            "bulge_sersic_n": self.sersic_n,
            "arm_amplitude": self.arm_amp,
            "fits_x": self.cx,
            "fits_y": self.cy,
            "fits_size": self.size,
        }


def _star_colours(rng: np.random.Generator) -> tuple[float, float]:
    """(g-r, r-i) on the SDSS stellar locus: F-K stars along r-i ~ 0.3 (g-r), M dwarfs at g-r ~ 1.4 with red r-i."""
    if rng.random() < 0.25:
        return float(rng.uniform(1.3, 1.5)), float(rng.uniform(0.5, 1.6))
    g_r = float(rng.uniform(0.35, 1.3))
    return g_r, float(0.3 * g_r - 0.02 + rng.normal(0.0, 0.04))


def _colour_fluxes_r(flux_r: float, g_r: float, r_i: float) -> dict[str, float]:
    """Band fluxes for an r-band flux and colours."""
    return {"g": flux_r * 10.0 ** (-0.4 * g_r), "r": flux_r, "i": flux_r * 10.0 ** (0.4 * r_i)}


# ------------------------------------------------------------------------------------------------- writing


def _png_image(galaxy: _Galaxy, noisy: dict[str, np.ndarray]) -> np.ndarray:
    """Resample the native data onto the 400x400 cutout (north up) and colour it like an SDSS cutout."""
    centres = np.arange(FRAME, dtype=float) + 0.5 - FRAME / 2
    cols = galaxy.cx + centres * galaxy.scale / SDSS_PIXEL
    rows = galaxy.cy - centres * galaxy.scale / SDSS_PIXEL  # PNG row 0 = north = highest native row
    to_sb = np.float32(1.0 / SDSS_PIXEL**2)  # nanomaggies per native pixel -> per arcsec^2
    sb = {b: _resample(noisy[b] * to_sb, rows, cols) for b in BANDS}
    return lupton_rgb(sb["g"], sb["r"], sb["i"])


def _write_fits(galaxy: _Galaxy, noisy: dict[str, np.ndarray], fits_dir: Path) -> None:
    wcs = celestial_wcs(galaxy.ra, galaxy.dec, SDSS_PIXEL, (galaxy.size, galaxy.size), (galaxy.cx + 1, galaxy.cy + 1))
    common = fits_header(
        wcs,
        {
            "BUNIT": ("nanomaggy", "per pixel; 22.5 mag = 1 nanomaggy (SDSS)"),
            "OBJECT": (str(galaxy.local_id), "astrodet simulated galaxy local id"),
            "ORIGIN": ("astrodet simulate", "simulated, not observed"),
            "PIXSCALE": (SDSS_PIXEL, "arcsec per pixel"),
            "PSFBETA": (round(galaxy.beta, 6), "Moffat beta"),
            "RDNOISE": (READ_NOISE_E, "read noise (electrons)"),
            "PNGSCALE": (round(galaxy.scale, 9), "arcsec/px of the 400x400 PNG cutout"),
        },
    )
    for band in BANDS:
        header = common.copy()
        header["FILTER"] = (band, "SDSS band")
        header["PSFFWHM"] = (round(galaxy.psf[band].fwhm * SDSS_PIXEL, 6), "PSF FWHM (arcsec), Moffat")
        header["SKYMAG"] = (round(galaxy.sky_mag[band], 6), "subtracted sky (mag/arcsec2)")
        header["GAIN"] = (ELECTRONS_PER_NMGY[band], "electrons per nanomaggy")
        write_fits_image(fits_dir / f"{galaxy.local_id}_{band}.fits", noisy[band], header=header)


def _source_rows(galaxy: _Galaxy, labelled: list[_Source], row: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    wcs = celestial_wcs(galaxy.ra, galaxy.dec, SDSS_PIXEL, (galaxy.size, galaxy.size), (galaxy.cx + 1, galaxy.cy + 1))
    boxes, clumps = [], []
    half = galaxy.box_side / 2
    for k, source in enumerate(labelled):
        x, y = galaxy.to_png(source.u, source.v)
        col, nrow = galaxy.to_native(source.u, source.v)
        ra, dec = wcs.pixel_to_world_values(col, nrow)
        boxes.append({
            "image_id": galaxy.image_id,
            "local_ids": galaxy.local_id,
            "filename": row["filename"],
            "label": source.label,
            "label_text": LABEL_TEXT[source.label],
            "x1": x - half - CROP_OFFSET,
            "x2": x + half - CROP_OFFSET,
            "y1": y - half - CROP_OFFSET,
            "y2": y + half - CROP_OFFSET,
        })  # fmt: skip
        clumps.append({
            "local_ids": galaxy.local_id,
            "image_id": galaxy.image_id,
            "clump_index": k,
            "label": source.label,
            "kind": source.kind,
            "ra": float(ra),
            "dec": float(dec),
            "x": x,
            "y": y,
            "flux_g": source.fluxes["g"],
            "flux_r": source.fluxes["r"],
            "flux_i": source.fluxes["i"],
            "flux_ratio_g": source.fluxes["g"] / galaxy.galaxy_flux["g"],
            "flux_ratio_r": source.fluxes["r"] / galaxy.galaxy_flux["r"],
            "mag_r": _flux_to_mag(source.fluxes["r"]),
            "contrast": source.contrast,
            "snr": source.snr,
        })  # fmt: skip
    return boxes, clumps


def simulate_galaxy(seed: int, index: int, negative_fraction: float = NEGATIVE_FRACTION) -> dict[str, Any]:
    """Render galaxy ``index`` of dataset ``seed`` in memory (no files): native ``images`` per band, ``png`` array,
    and its ``galaxy`` / ``boxes`` / ``clumps`` rows. For inspection, tests and custom writers."""
    galaxy = _Galaxy(seed, index, negative_fraction)
    noisy, labelled, row = galaxy.render()
    boxes, clumps = _source_rows(galaxy, labelled, row)
    return {"images": noisy, "png": _png_image(galaxy, noisy), "galaxy": row, "boxes": boxes, "clumps": clumps}


def _simulate_chunk(task: tuple[int, Sequence[int], str, bool, float]) -> list[tuple[dict, list[dict], list[dict]]]:
    """Worker: simulate and write the galaxies of one chunk; return their table rows."""
    seed, indices, out_dir, write_fits, negative_fraction = task
    out = Path(out_dir)
    results = []
    for index in indices:
        galaxy = _Galaxy(seed, index, negative_fraction)
        noisy, labelled, row = galaxy.render()
        write_png(out / row["filename"], _png_image(galaxy, noisy))
        if write_fits:
            _write_fits(galaxy, noisy, out / "fits")
        boxes, clumps = _source_rows(galaxy, labelled, row)
        results.append((row, boxes, clumps))
    return results


def _format(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


def _csv_text(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_format(row[c]) for c in columns])
    return buffer.getvalue()


def _chunks(n: int, size: int) -> Iterator[list[int]]:
    for start in range(0, n, size):
        yield list(range(start, min(start + size, n)))


_OUR_IMAGE = re.compile(r"^\d{12}\.png$")
_OUR_FITS = re.compile(r"^\d{12}_[gri]\.fits$")


def _remove_stale(folder: Path, pattern: re.Pattern[str], keep: set[str]) -> None:
    """Delete outputs of an earlier run that this run did not write (so a rerun leaves a clean dataset)."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.is_file() and pattern.match(entry.name) and entry.name not in keep:
            entry.unlink()


def _check_arguments(out_dir: Path, n: int, seed: int, workers: int | None, negative_fraction: float) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_GALAXIES:
        raise AstrodetInputError(f"--n: expected an integer number of galaxies from 1 to {MAX_GALAXIES}, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise AstrodetInputError(f"--seed: expected a non-negative integer, got {seed!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1):
        raise AstrodetInputError(f"--workers: expected a positive integer (processes), got {workers!r}")
    if not 0.0 <= negative_fraction < 1.0:
        raise AstrodetInputError(f"negative_fraction: expected a fraction in [0, 1), got {negative_fraction!r}")
    if out_dir.exists() and not out_dir.is_dir():
        raise AstrodetInputError(f"--out {out_dir}: expected a directory (created if missing), found an existing file")
    for sub in ("images", "fits"):
        if (out_dir / sub).exists() and not (out_dir / sub).is_dir():
            raise AstrodetInputError(f"--out {out_dir}: expected {sub}/ to be a directory, found a file")


def simulate_dataset(
    out_dir: str | os.PathLike[str],
    n: int,
    seed: int,
    workers: int | None = None,
    progress: bool = True,
    write_fits: bool = True,
    negative_fraction: float = NEGATIVE_FRACTION,
) -> SimulationSummary:
    """Write ``n`` simulated clumpy galaxies (PNG, FITS, boxes/clumps/galaxies CSV) into ``out_dir``.

    This is the one entry point for code that needs astrodet's embedded training data: output depends only on
    ``(n, seed, write_fits, negative_fraction)``, not on ``workers`` (default: all CPU cores), so a dataset can be
    rebuilt byte for byte anywhere. Rerunning into the same folder overwrites it cleanly (stale images of a larger
    earlier run are removed). Raises :class:`AstrodetInputError` on bad arguments.
    """
    out = Path(out_dir)
    _check_arguments(out, n, seed, workers, negative_fraction)
    n, seed = int(n), int(seed)
    n_workers = int(workers) if workers is not None else max(1, os.cpu_count() or 1)
    n_workers = min(n_workers, n)
    (out / "images").mkdir(parents=True, exist_ok=True)
    if write_fits:
        (out / "fits").mkdir(parents=True, exist_ok=True)
    chunk = max(1, min(16, n // (n_workers * 4) or 1))
    tasks = [(seed, idx, str(out), write_fits, float(negative_fraction)) for idx in _chunks(n, chunk)]
    from tqdm import tqdm

    start = time.perf_counter()
    results: list[tuple[dict, list[dict], list[dict]]] = []
    with tqdm(total=n, disable=not progress, unit="galaxy", desc="simulate") as bar:
        if n_workers == 1:
            for task in tasks:
                results.extend(_simulate_chunk(task))
                bar.update(len(task[1]))
        else:
            with ProcessPoolExecutor(max_workers=n_workers) as pool:
                for task, done in zip(tasks, pool.map(_simulate_chunk, tasks), strict=True):
                    results.extend(done)
                    bar.update(len(task[1]))
    galaxies = [r[0] for r in results]
    boxes = [b for r in results for b in r[1]]
    clumps = [c for r in results for c in r[2]]
    files = {
        "boxes": str(out / "boxes.csv"),
        "clumps": str(out / "clumps.csv"),
        "galaxies": str(out / "galaxies.csv"),
        "config": str(out / "simulation.json"),
    }
    atomic_write_text(files["boxes"], _csv_text(BOXES_COLUMNS, boxes))
    atomic_write_text(files["clumps"], _csv_text(CLUMP_COLUMNS, clumps))
    atomic_write_text(files["galaxies"], _csv_text(GALAXY_COLUMNS, galaxies))
    atomic_write_json(files["config"], _config(n, seed, write_fits, negative_fraction), indent=2)
    keep_png = {f"{g['local_ids']}.png" for g in galaxies}
    keep_fits = {f"{g['local_ids']}_{b}.fits" for g in galaxies for b in BANDS} if write_fits else set()
    _remove_stale(out / "images", _OUR_IMAGE, keep_png)
    _remove_stale(out / "fits", _OUR_FITS, keep_fits)
    seconds = time.perf_counter() - start
    return SimulationSummary(
        out_dir=str(out),
        n_galaxies=n,
        n_boxes=len(boxes),
        n_clumps=sum(b["label"] == 1 for b in boxes),
        n_odd=sum(b["label"] == 2 for b in boxes),
        n_without_clumps=sum(g["n_boxes"] == 0 for g in galaxies),
        seconds=seconds,
        galaxies_per_minute=60.0 * n / seconds if seconds > 0 else float("inf"),
        files=files,
    )


def _config(n: int, seed: int, write_fits: bool, negative_fraction: float) -> dict[str, Any]:
    from astrodet import __version__

    return {
        "generator": "astrodet.data.simulate",
        "astrodet_version": __version__,
        "n": n,
        "seed": seed,
        "write_fits": write_fits,
        "negative_fraction": negative_fraction,
        "frame_px": FRAME,
        "crop_offset_px": CROP_OFFSET,
        "bands": list(BANDS),
        "native_pixel_arcsec": SDSS_PIXEL,
        "min_contrast": MIN_CONTRAST,
        "min_snr": MIN_SNR,
        "disk_min_snr": DISK_MIN_SNR,
        "label_margin": LABEL_MARGIN,
        "faint_max_fraction": FAINT_MAX_FRACTION,
        "box_side_per_fwhm": BOX_SIDE_PER_FWHM,
        "units": {"fits": "nanomaggy per 0.396 arcsec pixel", "png": "Lupton asinh of nanomaggy/arcsec^2 (i,r,g)"},
        "calibration": "clump counts and box sides from Galaxy Zoo: Clump Scout boxes (Popp et al. 2024), train split",
    }


# ------------------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="dataset folder (created; rerunning overwrites it cleanly)")
    parser.add_argument("--n", type=int, required=True, help="number of galaxies")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed -> identical files)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: all CPU cores)")
    parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    parser.add_argument("--no-fits", action="store_true", help="write PNGs and tables only (no per-band FITS)")


def run(args: argparse.Namespace) -> int:
    summary = simulate_dataset(
        args.out, args.n, args.seed, workers=args.workers, progress=not args.no_progress, write_fits=not args.no_fits
    )
    print(
        f"simulated {summary.n_galaxies} galaxies into {summary.out_dir}: {summary.n_boxes} boxes "
        f"({summary.n_clumps} clumps, {summary.n_odd} odd), {summary.n_without_clumps} galaxies without clumps; "
        f"{summary.galaxies_per_minute:.0f} galaxies/min"
    )
    return 0


__all__ = ["SimulationSummary", "add_arguments", "run", "simulate_dataset", "simulate_galaxy"]
