"""How SDSS sees a galaxy: observing constants, the Moffat PSF, Sersic profiles, magnitudes and resampling.

Why a module of its own: these are the instrument and profile maths, with no randomness and no knowledge of
galaxies or labels, so the galaxy model, the source placement and the writers all share one definition of the
PSF, of a nanomaggy and of the Keys kernel that turns native SDSS pixels into a Clump Scout cutout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.special import gamma as gamma_fn

BANDS = ("g", "r", "i")  # always simulated: the PNG is coloured from them and the labelling rule sums them
SDSS_BANDS = ("u", "g", "r", "i", "z")  # what ``bands`` may hold, in wavelength order
EXTRA_BANDS = ("u", "z")  # optional; drawn from their own random streams, so g, r, i never change with them
FRAME = 400  # Clump Scout PNG cutout side (px)
CROP_OFFSET = 100  # boxes are in the central 200x200 crop: crop = PNG - 100 (Popp et al. 2024)
CROP_SIDE = 200
SDSS_PIXEL = 0.396  # arcsec per native SDSS pixel
ZEROPOINT = 22.5  # mag of 1 nanomaggy

# Observing conditions (SDSS DR7-like): sky surface brightness (mag arcsec^-2), electrons per nanomaggy
# (gain / nanomaggies-per-count), read noise (electrons), seeing ratio to r (FWHM ~ wavelength^-0.2).
# u and z, from the SDSS documentation (Stoughton et al. 2002, AJ 123, 485; DR7 "Imaging" and "Photometric
# calibration" pages): dark-sky brightness ~22.1 (u) and ~19.0 (z) mag arcsec^-2; camera gains ~1.6 (u) and
# ~4.8 (z) e-/DN with ~0.0097 (u) and ~0.032 (z) nanomaggies per DN, i.e. ~165 and ~150 e- per nanomaggy against
# ~765-1000 in g, r, i; dark variance x gain^2 gives read noises of ~4-6 e- in u and z, so the common 5.5 e- is kept.
# With these, the 5-sigma point-source depth is ~1.3 mag shallower in u than in g and ~2 mag shallower in z than
# in r, as SDSS's 95%-completeness limits (u 22.0, g 22.2, r 22.2, i 21.3, z 20.5) are relative to its g and r.
# Seeing ratios are (lambda / lambda_r)^-0.2 at the effective wavelengths of Fukugita et al. 1996 (u 3551, g 4686,
# r 6166, i 7480, z 8932 Angstrom): u broadest, z narrowest.
SKY_MAG = {"u": 22.1, "g": 22.0, "r": 21.1, "i": 20.4, "z": 19.0}
ELECTRONS_PER_NMGY = {"u": 165.0, "g": 1000.0, "r": 870.0, "i": 765.0, "z": 150.0}
READ_NOISE_E = 5.5
SEEING_RATIO = {"u": 1.117, "g": 1.055, "r": 1.0, "i": 0.96, "z": 0.929}


@dataclass
class Psf:
    """Moffat PSF of one band: FWHM in native pixels and the wing exponent beta."""

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

    def widened(self, intrinsic_fwhm: float) -> Psf:
        """The image of a source of ``intrinsic_fwhm`` (native pixels): FWHMs add in quadrature."""
        return Psf(math.hypot(self.fwhm, intrinsic_fwhm), self.beta)


def mag_to_flux(mag: float) -> float:
    return 10.0 ** ((ZEROPOINT - mag) / 2.5)


def flux_to_mag(flux: float) -> float:
    return ZEROPOINT - 2.5 * math.log10(max(flux, 1e-12))


def colour_fluxes(total: float, g_r: float, r_i: float) -> dict[str, float]:
    """Split a g+r+i total flux into bands for the given colours."""
    weights = {"g": 10.0 ** (-0.4 * g_r), "r": 1.0, "i": 10.0 ** (0.4 * r_i)}
    norm = sum(weights.values())
    return {b: total * w / norm for b, w in weights.items()}


def colour_fluxes_r(flux_r: float, g_r: float, r_i: float) -> dict[str, float]:
    """Band fluxes for an r-band flux and colours."""
    return {"g": flux_r * 10.0 ** (-0.4 * g_r), "r": flux_r, "i": flux_r * 10.0 ** (0.4 * r_i)}


def with_u_z(fluxes: dict[str, float], u_g: float, i_z: float) -> dict[str, float]:
    """``fluxes`` (g, r, i) plus u and z for the colours u-g and i-z."""
    return {"u": fluxes["g"] * 10.0 ** (-0.4 * u_g), **fluxes, "z": fluxes["i"] * 10.0 ** (0.4 * i_z)}


def sersic_b(n: float) -> float:
    """b_n of a Sersic profile of index ``n`` (Ciotti & Bertin 1999 expansion): half the light inside r_e."""
    return 2.0 * n - 1.0 / 3.0 + 4.0 / (405.0 * n) + 46.0 / (25515.0 * n * n)


def sersic_total_per_ie(n: float, re: float, q: float) -> float:
    """Total flux of a Sersic profile per unit surface brightness at r_e (to normalise profiles to a flux)."""
    b = sersic_b(n)
    return 2.0 * math.pi * n * q * re * re * math.exp(b) * b ** (-2.0 * n) * gamma_fn(2.0 * n)


def ellipse_radius(u: np.ndarray, v: np.ndarray, q: float, theta: float) -> np.ndarray:
    """Elliptical radius (major-axis units) of offsets (u, v) for axis ratio ``q`` and position angle ``theta``."""
    c, s = math.cos(theta), math.sin(theta)
    x = u * c + v * s
    y = (-u * s + v * c) / q
    return np.hypot(x, y)


def moffat_stamp(psf: Psf, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Moffat profile (unit flux) integrated over native pixels by 3x3 sub-sampling; dx, dy are pixel offsets."""
    alpha2 = psf.alpha**2
    norm = (psf.beta - 1.0) / (math.pi * alpha2)
    total = np.zeros(np.broadcast(dx, dy).shape)
    for ox in (-1.0 / 3.0, 0.0, 1.0 / 3.0):
        for oy in (-1.0 / 3.0, 0.0, 1.0 / 3.0):
            total += (1.0 + ((dx + ox) ** 2 + (dy + oy) ** 2) / alpha2) ** (-psf.beta)
    return total * (norm / 9.0)


def psf_kernel(psf: Psf) -> np.ndarray:
    """Normalised PSF image out to 3.5 FWHM, to convolve the smooth galaxy with."""
    radius = math.ceil(3.5 * psf.fwhm)
    grid = np.arange(-radius, radius + 1, dtype=float)
    kernel = moffat_stamp(psf, grid[None, :], grid[:, None])
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


def resample(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Separable bicubic resampling of ``image`` at the grid ``rows`` x ``cols``, in the image's float dtype (sparse
    products: fast and exactly reproducible, no BLAS threads)."""
    row_matrix = _interpolation_matrix(rows, image.shape[0]).astype(image.dtype)
    col_matrix = _interpolation_matrix(cols, image.shape[1]).astype(image.dtype)
    return row_matrix @ (col_matrix @ image.T).T


def bilinear(image: np.ndarray, row: float, col: float) -> float:
    """Value of ``image`` at a fractional (row, col), clamped to the grid: the local light under a source."""
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
