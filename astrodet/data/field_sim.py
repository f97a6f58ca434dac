"""A labelled wide field from simulated galaxies: the training data of a galaxy detector (``astrodet convert field``).

Why from a simulated dataset rather than a new simulator: the simulator already draws SDSS-like galaxies with
their noise, PSF and neighbours, and writes each one's native g, r, i data (0.396 arcsec/px, nanomaggies per
pixel) with a TAN WCS (``fits/<local_id>_<band>.fits``; ``astrodet simulate`` without ``--no-fits``). A field is
those stamps placed, without overlapping, on one north-up, east-left TAN grid at the same pixel scale, over sky
noise of the stamps' own measured level; so every galaxy keeps its true pixels and its truth row.

Outputs in ``out_dir``: ``field.fits`` (a (3, H, W) float32 cube, BAND1..3 = g, r, i, ``BUNIT = 'nanomaggy'`` per
pixel, the field's WCS) and ``sources.csv`` (one row per placed galaxy: ``id`` (the simulator's local id), ``ra``,
``dec`` (ICRS degrees, through the field's WCS), ``x``, ``y`` (1-based FITS pixels), ``a_arcsec``, ``b_arcsec``,
``theta_deg`` (the galaxy's extent ellipse: ``EXTENT_SCALE_LENGTHS`` disk scale lengths along the major axis,
axis ratio times that along the minor one, angle counter-clockwise from the field's +x axis), ``mag_r``,
``n_clumps``). Labels are the galaxies the simulator drew; the faint background galaxies and companions inside a
stamp stay unlabelled, as they are in the clump dataset.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from astrodet.data.imaging import celestial_wcs, fits_header, read_fits_image
from astrodet.errors import AstrodetInputError
from astrodet.io import atomic_open, atomic_write_text

FIELD_BANDS = ("g", "r", "i")
NATIVE_PIXEL = 0.396  # arcsec/px of the simulator's native FITS (SDSS)
EXTENT_SCALE_LENGTHS = 2.5  # semi-major axis of the labelled ellipse, in disk scale lengths (~71% of the disk light)
CROP_SCALE_LENGTHS = 4.5  # stamps are cropped this far out (~26 mag/arcsec^2 in r: below the noise, no seam)
SOURCE_COLUMNS = ("id", "ra", "dec", "x", "y", "a_arcsec", "b_arcsec", "theta_deg", "mag_r", "n_clumps")


@dataclass(frozen=True)
class SimulatedField:
    """What :func:`simulate_field` wrote: the frame, the source list and how many galaxies did not fit."""

    frame: Path
    sources: Path
    placed: int
    skipped: int


def _stamp(dataset: Path, row: dict[str, str]) -> tuple[np.ndarray, float, float, float, float, float]:
    """A galaxy's g, r, i native data cropped around it: (planes, centre x, y in the crop, a, b (px), theta)."""
    rd = float(row["disk_scale_px"]) * float(row["pixel_scale"]) / NATIVE_PIXEL  # disk scale length, native px
    a = EXTENT_SCALE_LENGTHS * rd
    b = a * float(row["axis_ratio"])
    theta = float(row["position_angle_deg"])
    c2, s2 = math.cos(math.radians(theta)) ** 2, math.sin(math.radians(theta)) ** 2
    grow = CROP_SCALE_LENGTHS / EXTENT_SCALE_LENGTHS
    half_w = math.ceil(grow * math.sqrt(a * a * c2 + b * b * s2))
    half_h = math.ceil(grow * math.sqrt(a * a * s2 + b * b * c2))
    planes = []
    for band in FIELD_BANDS:
        path = dataset / "fits" / f"{row['local_ids']}_{band}.fits"
        if not path.is_file():
            raise AstrodetInputError(f"{path}: missing; simulate the dataset with its FITS (no --no-fits)")
        planes.append(read_fits_image(path)[0].astype(np.float32))
    cx, cy = float(row["fits_x"]), float(row["fits_y"])
    x0, y0 = max(0, round(cx) - half_w), max(0, round(cy) - half_h)
    x1, y1 = min(planes[0].shape[1], round(cx) + half_w + 1), min(planes[0].shape[0], round(cy) + half_h + 1)
    return np.stack([p[y0:y1, x0:x1] for p in planes]), cx - x0, cy - y0, a, b, theta


def _sky_sigma(stamps: list[np.ndarray]) -> np.ndarray:
    """Per band, the median over stamps of the robust (MAD) pixel noise: the level of the field's own sky."""
    sigmas = [[1.4826 * np.median(np.abs(p - np.median(p))) for p in s] for s in stamps]
    return np.median(np.array(sigmas), axis=0)


def simulate_field(
    dataset: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    shape: tuple[int, int] = (768, 1024),
    seed: int = 0,
    centre: tuple[float, float] = (180.0, 10.0),
    max_tries: int = 200,
) -> SimulatedField:
    """Place the galaxies of a simulated dataset (its ``galaxies.csv`` order) into one (H, W) = ``shape`` field.

    Each galaxy's stamp goes to a random free spot (``seed``; up to ``max_tries`` draws, stamps never overlap, so
    no pixel is summed twice); galaxies that find no spot are skipped and counted. See the module doc for the files.
    """
    source, out = Path(dataset), Path(out_dir)
    table = source / "galaxies.csv"
    if not table.is_file():
        raise AstrodetInputError(f"{source}: no galaxies.csv; give a folder written by astrodet simulate")
    with open(table, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    height, width = int(shape[0]), int(shape[1])
    stamps = [_stamp(source, row) for row in rows]
    rng = np.random.default_rng(seed)
    sigma = _sky_sigma([s[0] for s in stamps])
    field = (rng.standard_normal((len(FIELD_BANDS), height, width)) * sigma[:, None, None]).astype(np.float32)
    free = np.ones((height, width), dtype=bool)
    wcs = celestial_wcs(centre[0], centre[1], NATIVE_PIXEL, (height, width))
    lines = []
    for row, (pixels, sx, sy, a, b, theta) in zip(rows, stamps, strict=True):
        h, w = pixels.shape[1:]
        for _ in range(max_tries if h <= height and w <= width else 0):
            x0, y0 = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            if free[y0 : y0 + h, x0 : x0 + w].all():
                break
        else:
            continue
        field[:, y0 : y0 + h, x0 : x0 + w] = pixels
        free[y0 : y0 + h, x0 : x0 + w] = False
        x, y = x0 + sx, y0 + sy  # 0-based pixel centre of the galaxy in the field
        ra, dec = (float(v) for v in wcs.pixel_to_world_values(x, y))
        scale = NATIVE_PIXEL
        values = (row["local_ids"], repr(ra % 360.0), repr(dec), repr(x + 1), repr(y + 1), repr(a * scale),
                  repr(b * scale), repr(theta), row["mag_r"], row["n_clumps"])  # fmt: skip
        lines.append(",".join(values))
    out.mkdir(parents=True, exist_ok=True)
    cards = {"BUNIT": ("nanomaggy", "per pixel; 22.5 mag = 1 nanomaggy (SDSS)"),
             "ORIGIN": ("astrodet simulate_field", "simulated, not observed"),
             **{f"BAND{k + 1}": band for k, band in enumerate(FIELD_BANDS)}}  # fmt: skip
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(data=field, header=fits_header(wcs, cards))]).writeto(buffer)
    with atomic_open(out / "field.fits", "wb") as handle:
        handle.write(buffer.getvalue())
    atomic_write_text(out / "sources.csv", "\n".join([",".join(SOURCE_COLUMNS), *lines]) + "\n")
    return SimulatedField(out / "field.fits", out / "sources.csv", len(lines), len(rows) - len(lines))
