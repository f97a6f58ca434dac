"""Sky positions -> COCO boxes: the WCS of a cutout given by its centre and pixel scale, RA/Dec -> pixel centres,
square boxes sized in PSF FWHMs, and the checks a placed box must pass (inside the image, not on masked pixels).

Why one module: every converter that starts from a sky catalogue (``astrodet convert clumps``, ``astrodet convert
field``) must place boxes by the same rule and in the same pixel convention, or the same source would get different
boxes from two commands. Conventions (those of :mod:`astrodet.data.coco` and the FITS contract of issue 13):

- Boxes are in the ARRAY frame of the image as read (numpy / astropy for FITS, Pillow for PNG/JPEG): x = column,
  y = row, row 0 = the first row of the data; COCO [0, 1] x [0, 1] covers the first pixel. A WCS ``world_to_pixel``
  result p (0-based pixel centre) is COCO centre p + 0.5. Nothing is flipped: a FITS file read by astropy has its
  row 0 where FITS puts it (usually south), a PNG has row 0 at the top.
- The default box is a square of :data:`BOX_SIDE_PER_FWHM` (the simulator's rule, 1.5) times the r-band PSF FWHM,
  centred on the source: the size Clump Scout volunteers' boxes have relative to the PSF in the real tables, and
  how the simulated ``boxes.csv`` is drawn, so boxes made from RA/Dec match boxes made by ``convert clumpscout``.
"""

from __future__ import annotations

import math
import re

import numpy as np
from astropy.coordinates import Angle
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from astrodet.data.imaging import celestial_wcs

# The simulator's rule (astrodet.data.simulation.galaxy.BOX_SIDE_PER_FWHM, checked equal by the tests), not
# imported from there: the simulator pulls in scipy.signal, seconds on every `astrodet convert` start.
BOX_SIDE_PER_FWHM = 1.5
NORTH = ("up", "down")  # where north is in a cutout shown row 0 at the top
EAST = ("left", "right")

__all__ = [
    "BOX_SIDE_PER_FWHM",
    "EAST",
    "NORTH",
    "boxes_inside",
    "centre_pixels_masked",
    "cutout_wcs",
    "parse_angle",
    "pixel_scale_arcsec",
    "sky_to_coco",
    "square_boxes",
]


def cutout_wcs(
    ra_deg: float, dec_deg: float, pixel_scale: float, shape: tuple[int, int], north: str = "up", east: str = "left"
) -> WCS:
    """The TAN WCS of a cutout's ARRAY (row 0 = the first row of the PNG/JPEG, as Pillow reads it), centred on
    (ra, dec) at ``pixel_scale`` arcsec/px; ``north``/``east`` say where they are when row 0 is shown at the top.

    SDSS and Galaxy Zoo cutouts are north up, east left (the default): RA grows to the left, Dec upwards, i.e.
    towards row 0. :func:`astrodet.data.imaging.celestial_wcs` is the same sky in FITS row order (row 0 = south).
    """
    if north not in NORTH or east not in EAST:
        raise ValueError(f"north must be one of {NORTH} and east one of {EAST}, got {north!r}, {east!r}")
    wcs = celestial_wcs(ra_deg, dec_deg, pixel_scale, shape)
    scale = pixel_scale / 3600.0
    wcs.wcs.cd = [[-scale if east == "left" else scale, 0.0], [0.0, -scale if north == "up" else scale]]
    return wcs


def pixel_scale_arcsec(wcs: WCS) -> float:
    """The mean pixel side of a celestial WCS in arcsec (geometric mean of the two axes)."""
    scales = proj_plane_pixel_scales(wcs.celestial) * 3600.0
    return float(math.sqrt(abs(scales[0] * scales[1])))


def sky_to_coco(wcs: WCS, ra_deg: np.ndarray, dec_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COCO-frame centres (x, y) of sky positions: the WCS's 0-based pixel centre + 0.5 (see the module doc)."""
    col, row = wcs.celestial.world_to_pixel_values(np.asarray(ra_deg, float), np.asarray(dec_deg, float))
    return np.asarray(col, float) + 0.5, np.asarray(row, float) + 0.5


def square_boxes(x: np.ndarray, y: np.ndarray, side: np.ndarray) -> np.ndarray:
    """``(n, 4)`` COCO boxes ``[x, y, w, h]`` of squares of ``side`` px centred on (x, y)."""
    x, y, side = (np.asarray(v, float) for v in (x, y, side))
    return np.stack([x - side / 2, y - side / 2, side, side], axis=-1).reshape(-1, 4)


def boxes_inside(boxes: np.ndarray, width: int, height: int, tolerance: float = 1e-3) -> np.ndarray:
    """Which ``[x, y, w, h]`` boxes lie inside a ``width`` x ``height`` image (to ``tolerance`` px, as COCO checks)."""
    x, y, w, h = (boxes[:, k] for k in range(4))
    with np.errstate(invalid="ignore"):
        return (x >= -tolerance) & (y >= -tolerance) & (x + w <= width + tolerance) & (y + h <= height + tolerance)


def centre_pixels_masked(data: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Which COCO centres (x, y) fall on a pixel that is not finite (NaN/inf: masked, off the survey) in any band
    of ``data`` ((H, W) or (C, H, W)); centres off the array count as masked."""
    cube = data if data.ndim == 3 else data[None]
    height, width = cube.shape[-2:]
    col = np.floor(np.asarray(x, float))
    row = np.floor(np.asarray(y, float))
    on = np.isfinite(col) & np.isfinite(row) & (col >= 0) & (row >= 0) & (col < width) & (row < height)
    masked = ~on
    idx = np.flatnonzero(on)
    values = cube[:, row[idx].astype(int), col[idx].astype(int)]
    masked[idx] = ~np.all(np.isfinite(values), axis=0)
    return masked


def parse_angle(value: object, kind: str) -> float | None:
    """Degrees from a number or text (``'150.1'``, ``'10:00:24.5'``, ``'10h00m24.5s'``, ``'-2d30m'``); None when it
    does not parse or is out of range (RA in [0, 360], Dec in [-90, 90]). Sexagesimal RA is in hours, Dec degrees."""
    if value is None or isinstance(value, bool):
        return None
    degrees: float | None
    if isinstance(value, int | float | np.number):
        degrees = float(value)
    else:
        text = str(value).strip()
        try:
            degrees = float(text)
        except ValueError:
            degrees = None
            if text and re.fullmatch(r"[+\-]?[\d.:\shmsd'\"]+", text):
                sexagesimal = ":" in text or " " in text
                unit = "hourangle" if kind == "ra" and (sexagesimal or "h" in text) else "deg"
                try:
                    degrees = float(Angle(text, unit=unit).deg)
                except (ValueError, TypeError):
                    degrees = None
    if degrees is None or not math.isfinite(degrees):
        return None
    low, high = (0.0, 360.0) if kind == "ra" else (-90.0, 90.0)
    return degrees if low <= degrees <= high else None
