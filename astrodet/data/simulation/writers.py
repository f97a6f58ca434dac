"""What a simulated galaxy becomes on disk: the PNG cutout, per-band FITS, and its rows of the three CSV tables.

Why a module of its own: these are the formats other tools read (Clump Scout's ``boxes.csv`` columns exactly, SDSS
frame units and a TAN WCS in the FITS, Lupton colours in the PNG), so their columns, headers and number formatting
are kept apart from the physics. Floats are written with ``repr`` so the tables are byte-identical across runs.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from astrodet.data.imaging import celestial_wcs, fits_header, lupton_rgb, write_fits_image
from astrodet.data.simulation.galaxy import Galaxy
from astrodet.data.simulation.optics import (
    CROP_OFFSET,
    CROP_SIDE,
    ELECTRONS_PER_NMGY,
    FRAME,
    READ_NOISE_E,
    SDSS_PIXEL,
    flux_to_mag,
    resample,
)
from astrodet.data.simulation.sources import Source
from astrodet.io import atomic_open

BOXES_COLUMNS = ("image_id", "local_ids", "filename", "label", "label_text", "x1", "x2", "y1", "y2")
LABEL_TEXT = {1: "clumpy", 2: "clumpy, odd"}
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
CUBE_BUNIT = "nanomaggy/arcsec2"


def table_columns(columns: Sequence[str], prefix: str, extra_bands: Sequence[str]) -> tuple[str, ...]:
    """A table's columns with the optional bands' ``<prefix><band>`` appended: g, r, i columns keep their places."""
    return (*columns, *(f"{prefix}{b}" for b in extra_bands))


def cutout_surface_brightness(galaxy: Galaxy, noisy: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The native data resampled onto the 400x400 cutout (row 0 = north), in nanomaggies per arcsec^2, per band."""
    centres = np.arange(FRAME, dtype=float) + 0.5 - FRAME / 2
    cols = galaxy.cx + centres * galaxy.scale / SDSS_PIXEL
    rows = galaxy.cy - centres * galaxy.scale / SDSS_PIXEL  # PNG row 0 = north = highest native row
    to_sb = np.float32(1.0 / SDSS_PIXEL**2)  # nanomaggies per native pixel -> per arcsec^2
    return {b: resample(noisy[b] * to_sb, rows, cols) for b in galaxy.bands}


def png_image(galaxy: Galaxy, noisy: dict[str, np.ndarray], sb: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Colour the 400x400 cutout (north up) like an SDSS cutout; ``sb``: its surface brightness if already made."""
    sb = sb if sb is not None else cutout_surface_brightness(galaxy, noisy)
    return lupton_rgb(sb["g"], sb["r"], sb["i"], stretch=galaxy.stretch, q=galaxy.population.display_q)


def write_cutout_fits(galaxy: Galaxy, sb: dict[str, np.ndarray], fits_dir: Path) -> None:
    """Write the PNG's own frame per band as ``<local_id>_<band>.fits``: 400x400 float32 surface brightness.

    Why: the exact pixels the PNG was coloured from (no resampling or unit change left to redo), with the TAN WCS
    of the cutout at the galaxy's pixel scale, so inference on FITS can be checked against the PNG pixel for pixel
    and RA/Dec against clumps.csv. Rows are flipped to the FITS convention (row 0 = south).
    """
    common = _cutout_header(galaxy, FRAME)
    for band in galaxy.bands:
        header = common.copy()
        header["FILTER"] = (band, "SDSS band")
        write_fits_image(fits_dir / f"{galaxy.local_id}_{band}.fits", sb[band][::-1], header=header)


def _cutout_header(galaxy: Galaxy, side: int) -> fits.Header:
    """WCS and cards of a ``side`` x ``side`` frame centred on the galaxy at the cutout's pixel scale."""
    return fits_header(
        celestial_wcs(galaxy.ra, galaxy.dec, galaxy.scale, (side, side)),
        {
            "BUNIT": (CUBE_BUNIT, "22.5 mag = 1 nanomaggy (SDSS)"),
            "OBJECT": (str(galaxy.local_id), "astrodet simulated galaxy local id"),
            "ORIGIN": ("astrodet simulate", "simulated, not observed"),
            "PIXSCALE": (round(galaxy.scale, 9), "arcsec per pixel (the PNG cutout's scale)"),
        },
    )


def write_crop_cube(galaxy: Galaxy, sb: dict[str, np.ndarray], path: Path) -> None:
    """Write the central 200x200 training crop of every band as one float32 cube ``(C, 200, 200)``.

    Why: the multi-band FITS form of the detection data (the same pixels the PNG crop is coloured from, all bands,
    one file per galaxy as multi-band readers expect). Header: ``BAND1..BANDC`` in channel order, ``BUNIT``, the
    crop's TAN WCS (galaxy at its centre) and each band's PSF FWHM; rows in FITS order (row 0 = south), so boxes in
    this frame are the PNG crop's flipped vertically.
    """
    header = _cutout_header(galaxy, CROP_SIDE)
    for channel, band in enumerate(galaxy.bands, start=1):
        header[f"BAND{channel}"] = (band, f"SDSS band of channel {channel}")
    for channel, band in enumerate(galaxy.bands, start=1):
        header[f"PSFFWHM{channel}"] = (round(galaxy.psf[band].fwhm * SDSS_PIXEL, 6), f"{band} PSF FWHM (arcsec)")
    crop = slice(CROP_OFFSET, CROP_OFFSET + CROP_SIDE)
    cube = np.stack([sb[band][crop, crop][::-1] for band in galaxy.bands]).astype(np.float32)
    hdulist = fits.HDUList([fits.PrimaryHDU(data=cube, header=header)])
    with atomic_open(path, "wb") as handle:
        hdulist.writeto(handle, output_verify="exception")


def _native_wcs(galaxy: Galaxy) -> WCS:
    """TAN WCS of the native grid, the galaxy at CRPIX = (fits_x + 1, fits_y + 1)."""
    return celestial_wcs(galaxy.ra, galaxy.dec, SDSS_PIXEL, (galaxy.size, galaxy.size), (galaxy.cx + 1, galaxy.cy + 1))


def write_band_fits(galaxy: Galaxy, noisy: dict[str, np.ndarray], fits_dir: Path) -> None:
    """Write each band's native data as ``<local_id>_<band>.fits`` in SDSS frame units, with WCS, PSF, sky, gain."""
    wcs = _native_wcs(galaxy)
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
    for band in galaxy.bands:
        header = common.copy()
        header["FILTER"] = (band, "SDSS band")
        header["PSFFWHM"] = (round(galaxy.psf[band].fwhm * SDSS_PIXEL, 6), "PSF FWHM (arcsec), Moffat")
        header["SKYMAG"] = (round(galaxy.sky_mag[band], 6), "subtracted sky (mag/arcsec2)")
        header["GAIN"] = (ELECTRONS_PER_NMGY[band], "electrons per nanomaggy")
        write_fits_image(fits_dir / f"{galaxy.local_id}_{band}.fits", noisy[band], header=header)


def source_rows(galaxy: Galaxy, labelled: list[Source], row: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """The galaxy's ``boxes.csv`` rows (crop pixels, one box side per galaxy) and matching ``clumps.csv`` rows."""
    wcs = _native_wcs(galaxy)
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
            **{f"flux_{b}": source.fluxes[b] for b in galaxy.extra_bands},
            "flux_ratio_g": source.fluxes["g"] / galaxy.galaxy_flux["g"],
            "flux_ratio_r": source.fluxes["r"] / galaxy.galaxy_flux["r"],
            "mag_r": flux_to_mag(source.fluxes["r"]),
            "contrast": source.contrast,
            "snr": source.snr,
        })  # fmt: skip
    return boxes, clumps


def _format(value: Any) -> str:
    """``repr`` for floats: the shortest text that reads back to the same number, so tables are exact."""
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


def csv_text(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    """One CSV table (header + rows, newline line ends) as text, for an atomic write."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_format(row[c]) for c in columns])
    return buffer.getvalue()

