"""One simulated galaxy: its drawn parameters, the smooth bulge + disk (+ arms) light, and the noisy native data.

Why a module of its own: a galaxy is the unit of determinism. Every draw comes from
``numpy.random.default_rng([seed, index])`` in a fixed order, so a galaxy depends only on the dataset seed and its
index, never on the number of worker processes. The optional u and z bands draw from streams of their own
(``[seed, index, U_Z_STREAM]`` for their colours and sky, plus the band's index for its noise), so asking for them
changes no g, r, i pixel, box or table value: the 3-band and 5-band datasets of one seed hold the same galaxies.
This module owns those generators, the galaxy's geometry (sky offsets, PNG frame, native pixels, disk plane) and
its rendering; the sources placed on it are drawn by :mod:`astrodet.data.simulation.sources` and the files written
by :mod:`astrodet.data.simulation.writers`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.signal import fftconvolve

from astrodet.data.simulation.optics import (
    BANDS,
    ELECTRONS_PER_NMGY,
    EXTRA_BANDS,
    FRAME,
    READ_NOISE_E,
    SDSS_BANDS,
    SDSS_PIXEL,
    SEEING_RATIO,
    SKY_MAG,
    Psf,
    colour_fluxes_r,
    ellipse_radius,
    flux_to_mag,
    mag_to_flux,
    moffat_stamp,
    psf_kernel,
    sersic_b,
    sersic_total_per_ie,
    with_u_z,
)
from astrodet.data.simulation.population import DEFAULT_POPULATION, POPULATION_STREAM, Population, population
from astrodet.data.simulation.sources import (
    Source,
    add_background,
    faint_knot,
    field_stars,
    nucleus,
    place_labelled,
    u_z_colours,
)

IMAGE_ID_BASE = 50_000_000
BOX_SIDE_PER_FWHM = 1.5  # box side = 1.5 r-band PSF FWHM (volunteer boxes are one size per galaxy)
NEGATIVE_FRACTION = 0.1  # galaxies drawn with no clumps at all
U_Z_STREAM = int.from_bytes(b"uz", "big")  # third seed word of the u/z random streams
ARM_COLOUR = {"u": 1.6, "g": 1.25, "r": 1.0, "i": 0.85, "z": 0.78}  # arms are bluer than the mean disk

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


class Galaxy:
    """One simulated galaxy: draws its parameters, renders the native data of ``bands`` (g, r, i and optionally u,
    z, in wavelength order) and its labelled sources."""

    def __init__(
        self,
        seed: int,
        index: int,
        negative_fraction: float,
        bands: tuple[str, ...] = BANDS,
        source_population: str | Population = DEFAULT_POPULATION,
    ) -> None:
        self.seed = seed
        self.index = index
        self.bands = bands
        self.extra_bands = tuple(b for b in bands if b in EXTRA_BANDS)
        self.rng = np.random.default_rng([seed, index])
        self.u_z_rng = np.random.default_rng([seed, index, U_Z_STREAM])
        self.population = population(source_population)
        # the default population draws nothing extra (its datasets keep their bytes); others from their own stream
        self.population_rng = (
            None if self.population.is_default else np.random.default_rng([seed, index, POPULATION_STREAM])
        )
        self.stretch = self._draw_stretch()
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
        self.psf = {b: Psf(self.fwhm_r * SEEING_RATIO[b] / SDSS_PIXEL, self.beta) for b in BANDS}
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
        disk_r = 2.0 * math.pi * self.rd**2 * mag_to_flux(self.mu0_r)
        bulge_r = disk_r * self.bt / (1.0 - self.bt)
        self.disk_flux = colour_fluxes_r(disk_r, self.disk_gr, self.disk_ri)
        self.bulge_flux = colour_fluxes_r(bulge_r, self.bulge_gr, self.bulge_ri)
        self.galaxy_flux = {b: self.disk_flux[b] + self.bulge_flux[b] for b in BANDS}
        # native grid: the 400 px frame plus a margin for the interpolation and PSF wings
        half = math.ceil(FRAME / 2 * self.scale / SDSS_PIXEL) + 10
        self.size = 2 * half + 1
        self.cx = half + float(rng.uniform(-0.5, 0.5))
        self.cy = half + float(rng.uniform(-0.5, 0.5))
        if self.extra_bands:
            self._draw_u_z()

    def _draw_stretch(self) -> float:
        """The colour image's Lupton stretch: the population's only value, or log-uniform in its range."""
        low, high = self.population.stretch
        if self.population_rng is None or low == high:
            return low
        return math.exp(float(self.population_rng.uniform(math.log(low), math.log(high))))

    def _draw_u_z(self) -> None:
        """Sky, PSF and colours of the u and z bands, from the u/z stream only (always both, so u is the same with
        or without z); the g, r, i values drawn before are untouched."""
        for band in EXTRA_BANDS:
            self.sky_mag[band] = SKY_MAG[band] + float(self.u_z_rng.normal(0.0, 0.15))
        self.psf.update({b: Psf(self.fwhm_r * SEEING_RATIO[b] / SDSS_PIXEL, self.beta) for b in self.extra_bands})
        self.disk_flux = self.extend_bands(self.disk_flux, "galaxy")
        self.bulge_flux = self.extend_bands(self.bulge_flux, "galaxy")
        self.galaxy_flux = {b: self.disk_flux[b] + self.bulge_flux[b] for b in self.bands}

    def extend_bands(self, fluxes: dict[str, float], kind: str) -> dict[str, float]:
        """``fluxes`` in g, r, i, plus u and z (those simulated) for a source of ``kind`` (colours drawn from the
        u/z stream); unchanged when only g, r, i are simulated."""
        if not self.extra_bands:
            return fluxes
        full = with_u_z(fluxes, *u_z_colours(self.u_z_rng, kind, fluxes))
        return {b: full[b] for b in self.bands}

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
        r_disk = ellipse_radius(uu, vv, self.q, self.theta)
        base = np.exp(-r_disk / self.rd)
        arms = np.zeros_like(base)
        if self.arm_amp > 0:
            c, s = math.cos(self.theta), math.sin(self.theta)
            phi = np.arctan2((-uu * s + vv * c) / self.q, uu * c + vv * s)
            wind = np.log(np.maximum(r_disk, 1e-3) / self.rd) / math.tan(self.arm_pitch)
            crest = ((1.0 + np.cos(self.arm_m * (phi - wind - self.arm_phase))) / 2.0) ** 3 / (5.0 / 16.0) - 1.0
            arms = crest * (1.0 - np.exp(-((r_disk / (0.8 * self.rd)) ** 2)))
        r_bulge = ellipse_radius(uu, vv, self.q_bulge, self.theta)
        bulge = np.exp(-sersic_b(self.sersic_n) * ((r_bulge / self.re_bulge) ** (1.0 / self.sersic_n) - 1.0))
        disk_norm = SDSS_PIXEL**2 / (2.0 * math.pi * self.rd**2 * self.q)
        bulge_norm = SDSS_PIXEL**2 / sersic_total_per_ie(self.sersic_n, self.re_bulge, self.q_bulge)
        return {
            band: self.disk_flux[band] * disk_norm * base * (1.0 + self.arm_amp * ARM_COLOUR[band] * arms)
            + self.bulge_flux[band] * bulge_norm * bulge
            for band in self.bands
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
        for band in self.bands:
            out[band][r0 : r0 + n, c0 : c0 + n] = fine[band].reshape(n, sub, n, sub).mean(axis=(1, 3))
        return out

    def add_extended(
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
        radius = ellipse_radius(uu, vv, q, theta)
        b = sersic_b(n)
        profile = np.exp(-b * ((radius / re) ** (1.0 / n) - 1.0)) / sersic_total_per_ie(n, re, q) * SDSS_PIXEL**2
        profile = profile.reshape(r1 - r0, sub, c1 - c0, sub).mean(axis=(1, 3))
        for band in self.bands:
            images[band][r0:r1, c0:c1] += fluxes[band] * profile

    def add_point(self, images: dict[str, np.ndarray], source: Source, wide: bool) -> None:
        """Add a compact source, already PSF-convolved: Moffat of the band PSF widened by its intrinsic size."""
        col, row = self.to_native(source.u, source.v)
        for band in self.bands:
            psf = self.psf[band].widened(source.intrinsic_fwhm)
            half = math.ceil((10.0 if wide else 4.0) * psf.fwhm)
            c0, c1 = max(int(col) - half, 0), min(int(col) + half + 1, self.size)
            r0, r1 = max(int(row) - half, 0), min(int(row) + half + 1, self.size)
            if c0 >= c1 or r0 >= r1:
                continue
            dx = np.arange(c0, c1, dtype=float)[None, :] - col
            dy = np.arange(r0, r1, dtype=float)[:, None] - row
            images[band][r0:r1, c0:c1] += source.fluxes[band] * moffat_stamp(psf, dx, dy)

    def pixel_variance(self, band: str, signal: float) -> float:
        """Variance (nanomaggy^2) of one native pixel holding ``signal`` nanomaggies above the sky."""
        gain = ELECTRONS_PER_NMGY[band]
        sky = mag_to_flux(self.sky_mag[band]) * SDSS_PIXEL**2
        return (sky + max(signal, 0.0)) / gain + (READ_NOISE_E / gain) ** 2

    def _observe(self, band: str, model: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``model`` (nanomaggies per native pixel) with the photon noise of sky and source and the read noise."""
        gain = ELECTRONS_PER_NMGY[band]
        sky = mag_to_flux(self.sky_mag[band]) * SDSS_PIXEL**2
        variance = (sky + np.maximum(model, 0.0)) / gain + (READ_NOISE_E / gain) ** 2
        noise = rng.standard_normal(model.shape)
        return (model + noise * np.sqrt(variance)).astype(np.float32)

    # -- everything
    def render(self) -> tuple[dict[str, np.ndarray], list[Source], dict[str, Any]]:
        """Native noisy images per band (wavelength order), labelled sources (in label order) and the catalogue row."""
        images = self._smooth_model()
        n_background, companion = add_background(self, images)
        self.convolved = {b: fftconvolve(images[b], psf_kernel(self.psf[b]), mode="same") for b in self.bands}
        labelled: list[Source] = []
        kinds = ["sf_clump"] * self.n_clumps
        kinds += ["star" if self.rng.random() < 0.55 else "red_compact" for _ in range(self.n_odd)]
        for kind in kinds:
            source = place_labelled(self, kind, labelled)
            if source is not None:
                labelled.append(source)
        faint = [s for s in (faint_knot(self) for _ in range(int(self.rng.poisson(2.0)))) if s is not None]
        core = nucleus(self)
        model = {b: self.convolved[b].copy() for b in self.bands}
        for source in labelled + faint + ([core] if core is not None else []):
            self.add_point(model, source, wide=source.kind == "star")
        for source in field_stars(self):
            self.add_point(model, source, wide=True)
        noisy = {band: self._observe(band, model[band], self.rng) for band in BANDS}  # g, r, i noise: the main stream
        for band in self.extra_bands:
            stream = np.random.default_rng([self.seed, self.index, U_Z_STREAM, SDSS_BANDS.index(band)])
            noisy[band] = self._observe(band, model[band], stream)
        row = self._galaxy_row(labelled, len(faint), n_background, companion)
        return {b: noisy[b] for b in self.bands}, labelled, row

    def _galaxy_row(self, labelled: list[Source], n_faint: int, n_background: int, companion: bool) -> dict[str, Any]:
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
            "mag_g": flux_to_mag(self.galaxy_flux["g"]),
            "mag_r": flux_to_mag(self.galaxy_flux["r"]),
            "mag_i": flux_to_mag(self.galaxy_flux["i"]),
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
            **{f"mag_{b}": flux_to_mag(self.galaxy_flux[b]) for b in self.extra_bands},
        }
