"""Pixels to the sky: RA/Dec (ICRS, degrees) and sizes in arcsec for positions in an image as the model saw it.

Why one class for both sources of sky information: a FITS input carries a WCS; a PNG cutout carries only its
centre and pixel scale (``--meta``, a COCO file), which is a north-up, east-left TAN projection about the centre
(the Clump Scout and simulator convention, :func:`astrodet.data.imaging.celestial_wcs`). Both become a WCS of the
FITS array, and positions are given in the displayed frame (COCO convention: origin at the top-left corner, y down;
for FITS rendered as pictures, row 0 at the top is the *last* FITS row), converted with
:func:`astrodet.data.imaging.png_to_fits_pixel`. Models trained on FITS arrays as stored (``float`` recipes) see
the array unflipped: their frame has ``rows_flipped=False`` and a COCO position p is the 0-based pixel p - 0.5.
All projections go through astropy.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_area

from astrodet.data.imaging import celestial_wcs, png_to_fits_pixel
from astrodet.inference.sources import SkyHint


class SkyFrame:
    """The sky geometry of one displayed image of ``height`` rows; ``wcs`` describes its FITS array, shown with
    rows reversed (``rows_flipped``, north up) or as stored."""

    def __init__(self, wcs: WCS, height: int, rows_flipped: bool = True) -> None:
        self.wcs = wcs
        self.height = int(height)
        self.rows_flipped = rows_flipped
        area_deg2 = float(proj_plane_pixel_area(wcs))
        self.pixel_scale = math.sqrt(abs(area_deg2)) * 3600.0  # arcsec per pixel at the reference point

    @classmethod
    def from_hint(cls, hint: SkyHint, width: int, height: int) -> SkyFrame | None:
        """A cutout centred on ``hint`` (RA/Dec at the image centre); None without a pixel scale."""
        if hint.pixel_scale is None:
            return None
        return cls(celestial_wcs(hint.ra, hint.dec, hint.pixel_scale, (height, width)), height)

    @classmethod
    def from_header_wcs(cls, wcs: WCS, height: int, rows_flipped: bool = True) -> SkyFrame:
        return cls(wcs.celestial, height, rows_flipped)

    def world(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """RA, Dec (degrees, RA in [0, 360)) of displayed-frame positions ``x``, ``y``."""
        if self.rows_flipped:
            col, row = png_to_fits_pixel(x, y, self.height)
        else:
            col, row = np.asarray(x, dtype=float) - 0.5, np.asarray(y, dtype=float) - 0.5
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            ra, dec = self.wcs.pixel_to_world_values(col, row)
        return np.mod(np.asarray(ra, dtype=float), 360.0), np.asarray(dec, dtype=float)


def celestial_wcs_of(header: object) -> WCS | None:
    """The celestial part of a FITS header's WCS, or None when it has no RA/Dec axes (or cannot be parsed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FITSFixedWarning and friends: astropy repairs what it can
        try:
            wcs = WCS(header)
        except Exception:  # astropy raises several types for malformed WCS keywords; all mean "no usable WCS"
            return None
    if not wcs.has_celestial:
        return None
    celestial = wcs.celestial
    if celestial.naxis != 2:
        return None
    return celestial


def box_size_arcsec(boxes: np.ndarray, pixel_scale: float | None) -> np.ndarray:
    """sqrt(box width * box height) in arcsec; NaN without a pixel scale."""
    width = boxes[:, 2] - boxes[:, 0]
    height = boxes[:, 3] - boxes[:, 1]
    side = np.sqrt(np.clip(width, 0, None) * np.clip(height, 0, None))
    return side * (pixel_scale if pixel_scale is not None else np.nan)
