"""The compact and extended sources around a simulated galaxy, and the rule that decides which are labelled.

Why a module of its own: the labels are only as good as this rule. A source is labelled exactly when a volunteer
would see it (peak contrast over the PSF-convolved galaxy and PSF-weighted S/N both above a floor); labelled
sources sit clearly above the floors and unlabelled knots clearly below, so no source is near the boundary. The
placement rules (frame, separation, nucleus, visible disk, flux caps) and the unlabelled content (knots,
background galaxies, a companion, field stars outside the training crop) live here, beside that rule. Every draw
comes from the galaxy's own generator in a fixed order, which keeps datasets byte-identical.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from astrodet.data.simulation.optics import (
    BANDS,
    CROP_SIDE,
    FRAME,
    bilinear,
    colour_fluxes,
    colour_fluxes_r,
    ellipse_radius,
    mag_to_flux,
)
from astrodet.data.simulation.population import DEFAULT_POPULATION, POPULATIONS

if TYPE_CHECKING:
    from astrodet.data.simulation.galaxy import Galaxy

# Labelling rule: a source is visible (and must be labelled) when, in g+r+i, its peak is >= MIN_CONTRAST times the
# local PSF-convolved galaxy light AND its PSF-weighted S/N is >= MIN_SNR (the default population's floors; another
# population, astrodet.data.simulation.population, sets its own). Labelled sources get a random margin above both;
# unlabelled knots stay below FAINT_MAX_FRACTION of both, so no source sits near the boundary.
MIN_CONTRAST = POPULATIONS[DEFAULT_POPULATION].min_contrast
MIN_SNR = POPULATIONS[DEFAULT_POPULATION].min_snr
LABEL_MARGIN = 1.3
FAINT_MAX_FRACTION = 0.3
DISK_MIN_SNR = 4.0  # clumps (not stars) only where the smooth galaxy is >= 4 sigma per native pixel


@dataclass
class Source:
    """A compact source: its kind, label (0 = unlabelled), sky offset, band fluxes and measured visibility."""

    kind: str
    label: int  # 0 = unlabelled
    u: float  # arcsec offsets from the galaxy centre: u to the right (west), v up (north)
    v: float
    fluxes: dict[str, float]
    intrinsic_fwhm: float  # native pixels
    contrast: float = 0.0
    snr: float = 0.0


def visibility_floor(galaxy: Galaxy, u: float, v: float, intrinsic_fwhm: float) -> tuple[float, float, float, float]:
    """(flux needed for the contrast floor, flux needed for the S/N floor, local light, noise) in g+r+i at (u, v)."""
    col, row = galaxy.to_native(u, v)
    local = sum(bilinear(galaxy.convolved[b], row, col) for b in BANDS)
    noise = math.sqrt(sum(galaxy.pixel_variance(b, bilinear(galaxy.convolved[b], row, col)) for b in BANDS))
    psf = galaxy.psf["r"].widened(intrinsic_fwhm)
    floors = galaxy.population
    f_contrast = floors.min_contrast * max(local, 0.0) / psf.peak()
    return f_contrast, floors.min_snr * noise * math.sqrt(psf.nea()), local, noise


def _measure(galaxy: Galaxy, source: Source) -> None:
    """Record the contrast and S/N the source actually has (written to clumps.csv)."""
    _, _, local, noise = visibility_floor(galaxy, source.u, source.v, source.intrinsic_fwhm)
    psf = galaxy.psf["r"].widened(source.intrinsic_fwhm)
    total = sum(source.fluxes[b] for b in BANDS)
    source.contrast = total * psf.peak() / local if local > 0 else float("inf")
    source.snr = total / (noise * math.sqrt(psf.nea()))


def _in_frame(galaxy: Galaxy, u: float, v: float, margin: float) -> bool:
    x, y = galaxy.to_png(u, v)
    return margin <= x <= FRAME - margin and margin <= y <= FRAME - margin


def _far_from(galaxy: Galaxy, u: float, v: float, placed: Sequence[Source], min_sep_px: float) -> bool:
    for other in placed:
        if math.hypot(u - other.u, v - other.v) / galaxy.scale < min_sep_px:
            return False
    return True


def _star_colours(rng: np.random.Generator) -> tuple[float, float]:
    """(g-r, r-i) on the SDSS stellar locus: F-K stars along r-i ~ 0.3 (g-r), M dwarfs at g-r ~ 1.4 with red r-i."""
    if rng.random() < 0.25:
        return float(rng.uniform(1.3, 1.5)), float(rng.uniform(0.5, 1.6))
    g_r = float(rng.uniform(0.35, 1.3))
    return g_r, float(0.3 * g_r - 0.02 + rng.normal(0.0, 0.04))


def u_z_colours(rng: np.random.Generator, kind: str, fluxes: dict[str, float]) -> tuple[float, float]:
    """(u-g, i-z) of light of ``kind`` with the given g, r, i ``fluxes``: what the optional u and z bands show.

    Star-forming clumps and knots are young and bright in u (Adams et al. 2022 select clumps by their u-band flux);
    stars follow the SDSS stellar locus (Covey et al. 2007: u-g rises with g-r from ~1.1 for F stars to ~2.6 for M
    dwarfs, i-z ~ half of r-i); red compact sources and nuclei are red throughout; galaxy light (disks, bulges,
    background galaxies) follows g-r from the blue cloud (u-g ~1.2, i-z ~0.2 at g-r 0.45) to the red sequence (u-g
    ~1.9 at 0.85).
    """
    g_r = -2.5 * math.log10(fluxes["g"] / fluxes["r"])
    r_i = -2.5 * math.log10(fluxes["r"] / fluxes["i"])
    if kind in ("sf_clump", "faint_knot"):
        return float(np.clip(rng.normal(0.75, 0.2), 0.3, 1.2)), float(np.clip(rng.normal(0.0, 0.1), -0.3, 0.25))
    if kind in ("star", "field_star"):
        return min(0.7 + 1.7 * g_r, 2.6) + float(rng.normal(0.0, 0.08)), 0.5 * r_i + float(rng.normal(0.0, 0.04))
    if kind in ("red_compact", "nucleus"):
        return float(rng.uniform(1.6, 2.2)), float(rng.uniform(0.25, 0.45))
    if kind == "galaxy":
        u_g = 1.2 + 1.7 * (g_r - 0.45) + float(rng.normal(0.0, 0.1))
        return u_g, 0.2 + 0.4 * (g_r - 0.45) + float(rng.normal(0.0, 0.03))
    raise ValueError(f"no u/z colours for sources of kind {kind!r}")


def place_labelled(galaxy: Galaxy, kind: str, placed: list[Source]) -> Source | None:
    """Draw a visible source of ``kind`` (position, colour, flux above both visibility floors with a margin);
    positions that break a rule (frame, separation, nucleus, invisible disk, flux cap) are redrawn."""
    rng = galaxy.rng
    side = galaxy.box_side
    for _ in range(80):
        if kind == "star":
            # anywhere over the visible disk: uniform in the projected ellipse out to 3.3 scale lengths
            radius = 3.3 * galaxy.rd * math.sqrt(rng.random())
            u, v = galaxy.disk_point(radius, float(rng.uniform(0, 2 * math.pi)))
            intrinsic = 0.0
            g_r, r_i = _star_colours(rng)
            margin = LABEL_MARGIN * math.exp(abs(rng.normal(0.0, 1.3)))
            margin = min(margin, 40.0)
        else:
            radius = galaxy.rd * float(rng.gamma(6.0, 0.3))
            if kind == "sf_clump" and galaxy.arm_amp > 0 and rng.random() < 0.6:
                phi = galaxy.arm_phi(radius) + float(rng.normal(0.0, 0.25))
            else:
                phi = float(rng.uniform(0, 2 * math.pi))
            u, v = galaxy.disk_point(radius, phi)
            if kind == "sf_clump":
                intrinsic = float(rng.uniform(*galaxy.population.clump_size)) * galaxy.psf["r"].fwhm
                g_r = float(min(np.clip(rng.normal(0.1, 0.12), -0.3, 0.3), galaxy.disk_gr - 0.15))
                r_i = float(np.clip(rng.normal(0.05, 0.12), -0.25, 0.3))
                margin = LABEL_MARGIN * math.exp(abs(rng.normal(0.0, 0.7)))
            else:  # red_compact
                intrinsic = float(rng.uniform(0.3, 0.9)) * galaxy.psf["r"].fwhm
                g_r = float(rng.uniform(0.9, 1.3))
                r_i = float(rng.uniform(0.35, 0.55))
                margin = LABEL_MARGIN * math.exp(abs(rng.normal(0.0, 0.6)))
        min_sep = side * (1.6 if kind == "star" else 1.1)
        if not _in_frame(galaxy, u, v, side / 2) or not _far_from(galaxy, u, v, placed, min_sep):
            continue
        if kind != "star" and math.hypot(u, v) / galaxy.scale < 1.5 * side:
            continue  # the nucleus is never a clump
        f_contrast, f_snr, local, noise = visibility_floor(galaxy, u, v, intrinsic)
        if kind != "star" and local < DISK_MIN_SNR * noise:
            continue  # clumps sit where the disk itself is visible, as volunteers saw them
        total = max(f_contrast, f_snr) * margin
        fluxes = colour_fluxes(total, g_r, r_i)
        if kind == "sf_clump" and fluxes["g"] > 0.2 * galaxy.galaxy_flux["g"]:
            continue
        if kind == "red_compact" and fluxes["r"] > 0.2 * galaxy.galaxy_flux["r"]:
            continue
        source = Source(kind, 1 if kind == "sf_clump" else 2, u, v, galaxy.extend_bands(fluxes, kind), intrinsic)
        _measure(galaxy, source)
        return source
    return None


def faint_knot(galaxy: Galaxy) -> Source | None:
    """An unlabelled star-forming knot below FAINT_MAX_FRACTION of a visibility floor: texture, not a clump."""
    rng = galaxy.rng
    radius = galaxy.rd * float(rng.gamma(3.0, 0.6))
    u, v = galaxy.disk_point(radius, float(rng.uniform(0, 2 * math.pi)))
    if not _in_frame(galaxy, u, v, 0.0):
        return None
    intrinsic = float(rng.uniform(*galaxy.population.clump_size)) * galaxy.psf["r"].fwhm
    f_contrast, f_snr, _, _ = visibility_floor(galaxy, u, v, intrinsic)
    total = min(f_contrast, f_snr) * float(rng.uniform(0.1, FAINT_MAX_FRACTION))
    g_r = float(np.clip(rng.normal(0.2, 0.15), -0.3, 0.5))
    fluxes = colour_fluxes(total, g_r, float(rng.normal(0.05, 0.1)))
    return Source("faint_knot", 0, u, v, galaxy.extend_bands(fluxes, "faint_knot"), intrinsic)


def nucleus(galaxy: Galaxy) -> Source | None:
    """An unlabelled compact nucleus at the centre (populations with ``nucleus_fraction``; their own stream):
    Clump Scout volunteers were asked not to mark the nucleus, and real galaxies have compact, bulge-coloured ones
    that a smooth Sersic bulge lacks, so the detector must learn that a central point source is not a clump."""
    rng, floors = galaxy.population_rng, galaxy.population
    if rng is None or rng.random() >= floors.nucleus_fraction:
        return None
    low, high = floors.nucleus_flux
    fraction = math.exp(float(rng.uniform(math.log(low), math.log(high))))
    total = fraction * sum(galaxy.bulge_flux[b] for b in BANDS)
    intrinsic = float(rng.uniform(0.0, 0.3)) * galaxy.psf["r"].fwhm
    fluxes = colour_fluxes(total, galaxy.bulge_gr, galaxy.bulge_ri)
    return Source("nucleus", 0, 0.0, 0.0, galaxy.extend_bands(fluxes, "nucleus"), intrinsic)


def add_background(galaxy: Galaxy, images: dict[str, np.ndarray]) -> tuple[int, bool]:
    """Unlabelled extended galaxies away from the disk, an occasional companion; returns (count, companion)."""
    rng = galaxy.rng
    fov_arcmin2 = (FRAME * galaxy.scale / 60.0) ** 2
    count = int(rng.poisson(1.0 + 4.0 * fov_arcmin2))
    added = 0
    for _ in range(count):
        x, y = rng.uniform(0, FRAME, size=2)
        u, v = (x - FRAME / 2) * galaxy.scale, (FRAME / 2 - y) * galaxy.scale
        if ellipse_radius(np.array(u), np.array(v), galaxy.q, galaxy.theta) < 5.0 * galaxy.rd:
            continue
        re = max(float(rng.uniform(0.8, 2.5)), 1.3 * galaxy.fwhm_r)
        red = rng.random() < 0.4
        flux_r = mag_to_flux(float(rng.uniform(18.5, 21.5)))
        fluxes = colour_fluxes_r(flux_r, 0.95, 0.42) if red else colour_fluxes_r(flux_r, 0.45, 0.25)
        fluxes = galaxy.extend_bands(fluxes, "galaxy")
        shape = (re, 4.0 if red else 1.0, float(rng.uniform(0.35, 1.0)), float(rng.uniform(0, math.pi)))
        galaxy.add_extended(images, u, v, fluxes, shape)
        added += 1
    companion = bool(rng.random() < 0.2)
    if companion:
        dist = galaxy.rd * float(rng.uniform(5.0, 8.0))
        ang = float(rng.uniform(0, 2 * math.pi))
        dm = float(rng.uniform(0.5, 2.5))
        fluxes = {b: galaxy.galaxy_flux[b] * 10 ** (-0.4 * dm) for b in galaxy.bands}
        re = 1.68 * galaxy.rd * 10 ** (-0.2 * dm) * float(rng.uniform(0.7, 1.3))
        shape = (re, float(rng.uniform(1.0, 4.0)), float(rng.uniform(0.4, 1.0)), float(rng.uniform(0, math.pi)))
        galaxy.add_extended(images, dist * math.cos(ang), dist * math.sin(ang), fluxes, shape)
    return added, companion


def field_stars(galaxy: Galaxy) -> list[Source]:
    """Unlabelled stars, only outside the central training crop (there every visible star is labelled)."""
    rng = galaxy.rng
    fov_arcmin2 = (FRAME * galaxy.scale / 60.0) ** 2
    stars = []
    keep_out = CROP_SIDE / 2 + galaxy.box_side
    for _ in range(int(rng.poisson(0.5 + 1.5 * fov_arcmin2))):
        x, y = rng.uniform(0, FRAME, size=2)
        mag = float(rng.uniform(16.0, 22.0))
        g_r, r_i = _star_colours(rng)
        if abs(x - FRAME / 2) < keep_out and abs(y - FRAME / 2) < keep_out:
            continue
        u, v = (x - FRAME / 2) * galaxy.scale, (FRAME / 2 - y) * galaxy.scale
        fluxes = galaxy.extend_bands(colour_fluxes_r(mag_to_flux(mag), g_r, r_i), "field_star")
        stars.append(Source("field_star", 0, u, v, fluxes, 0.0))
    return stars
