"""Where classification cutouts come from: existing files (by name pattern or by the position in their names),
FITS frames (centred ``Cutout2D`` per band, then a display scaling), and columns measured on the images.

Kept apart from :mod:`astrodet.data.catalog_rows` (which walks catalogue rows through the checks) so each cutout
source can be read and tested on its own.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from astrodet.data.cuts import as_float
from astrodet.data.imaging import UnreadableImage, read_fits_image
from astrodet.data.toolkit import short_number
from astrodet.errors import AstrodetInputError

SCALES = ("lupton", "asinh", "minmax", "none")


def _pattern_regex(pattern: str) -> tuple[re.Pattern[str], list[str]]:
    """A regex matching file names of ``pattern``; each ``{column}`` captures a value."""
    fields = re.findall(r"\{(\w+)\}", pattern)
    parts = re.split(r"\{\w+\}", pattern)
    body = "".join(re.escape(p) + (f"(?P<f{i}>.+?)" if i < len(fields) else "") for i, p in enumerate(parts))
    return re.compile(f"^{body}$"), fields


class CutoutIndex:
    """The files of a cutout folder, findable by name pattern and by the sky position their names encode."""

    def __init__(self, folder: Path, pattern: str, ra_field: str | None, dec_field: str | None) -> None:
        if not folder.is_dir():
            raise AstrodetInputError(f"--cutouts {folder}: no such folder")
        self.folder = folder
        self.pattern = pattern
        self.files = sorted(p.name for p in folder.iterdir() if p.is_file())
        self._names = set(self.files)
        regex, fields = _pattern_regex(pattern)
        self.fields = fields
        self._coords: list[tuple[str, float, float]] = []
        if ra_field in fields and dec_field in fields:
            for name in self.files:
                m = regex.match(name)
                if m:
                    ra = as_float(m[f"f{fields.index(ra_field)}"])
                    dec = as_float(m[f"f{fields.index(dec_field)}"])
                    if ra is not None and dec is not None:
                        self._coords.append((name, ra, dec))
        self._sky = None

    @property
    def can_match_coords(self) -> bool:
        return bool(self._coords)

    def by_name(self, raw: Mapping[str, str]) -> str | None:
        try:
            name = self.pattern.format(**raw)
        except (KeyError, IndexError, ValueError):
            return None
        return name if name in self._names else None

    def by_coords(self, ra: float, dec: float, radius_arcsec: float) -> tuple[str | None, str]:
        """The nearest file within the radius; ``(None, why)`` if none or if two are within it (ambiguous)."""
        if not self._coords:
            return None, "no file name in the folder encodes a position"
        from astropy import units as u
        from astropy.coordinates import SkyCoord

        if self._sky is None:
            self._sky = SkyCoord([c[1] for c in self._coords] * u.deg, [c[2] for c in self._coords] * u.deg)
        sep = SkyCoord(ra * u.deg, dec * u.deg).separation(self._sky).arcsec
        close = np.flatnonzero(sep <= radius_arcsec)
        if close.size == 0:
            return None, f"no cutout within {radius_arcsec:g} arcsec (nearest {float(sep.min()):.2f} arcsec)"
        if close.size > 1:
            names = ", ".join(self._coords[i][0] for i in close[:3])
            return None, f"ambiguous: {close.size} cutouts within {radius_arcsec:g} arcsec ({names})"
        return self._coords[int(close[0])][0], ""


def red_percent(path: Path) -> float:
    """Percentage of strongly red pixels, the Perseus recipe's "remove red objects" mask (JPAstro brightPCC).

    OpenCV HSV thresholds of the recipe (H 0-10 or 160-179 of 180, S >= 80 or 100 of 255, V >= 20 of 255) in
    matplotlib's [0, 1] HSV: hue <= 20 deg or >= 320 deg.
    """
    from matplotlib.colors import rgb_to_hsv
    from PIL import Image

    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    hsv = rgb_to_hsv(rgb)
    h, s, v = hsv[..., 0] * 180.0, hsv[..., 1] * 255.0, hsv[..., 2] * 255.0
    low = (h <= 10.0) & (s >= 80) & (v >= 20)
    high = (h >= 160.0) & (h <= 179.5) & (s >= 100) & (v >= 20)
    return round(100.0 * float(np.count_nonzero(low | high)) / h.size, 4)


@dataclass
class Band:
    name: str
    path: Path
    data: np.ndarray
    wcs: Any  # astropy WCS (celestial) or None


def load_band(path: Path, name: str, hdu: int | None) -> Band:
    """One band's 2-D image (read in full: a file cut short is refused here) and its celestial WCS, if any."""
    from astropy.wcs import WCS, FITSFixedWarning

    try:
        data, header = read_fits_image(path, hdu)
    except UnreadableImage as err:
        raise AstrodetInputError(f"--fits {path}: {err.problem}") from None
    if data.ndim != 2:
        raise AstrodetInputError(f"--fits {path}: expected a 2-D image per band, got shape {data.shape}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header).celestial
        except Exception as err:  # astropy raises many types for a malformed WCS; all mean "no usable WCS"
            raise AstrodetInputError(f"--fits {path}: the header's WCS cannot be read ({err})") from None
    return Band(name, path, np.asarray(data, dtype=np.float32), wcs if wcs.has_celestial else None)


def scale_stack(stack: np.ndarray, scale: str, stretch: float, q: float) -> np.ndarray:
    """(H, W, B) float -> scaled array: uint8 for lupton, [0, 1] float for asinh/minmax, unchanged for none."""
    if scale == "none":
        return stack.astype(np.float32)
    if scale == "lupton":
        from astropy.visualization import make_lupton_rgb

        if stack.shape[2] != 3:
            raise AstrodetInputError(f"--scale lupton needs exactly 3 bands, got {stack.shape[2]}")
        # bands are given bluest first (g r i): the reddest becomes R, as in SDSS colour images
        return make_lupton_rgb(stack[..., 2], stack[..., 1], stack[..., 0], stretch=stretch, Q=q)
    out = np.empty_like(stack, dtype=np.float32)
    for b in range(stack.shape[2]):
        band = stack[..., b]
        if scale == "minmax":
            lo, hi = float(band.min()), float(band.max())
            out[..., b] = (band - lo) / (hi - lo) if hi > lo else 0.0
        else:
            from astropy.visualization import AsinhStretch, PercentileInterval

            out[..., b] = AsinhStretch(a=0.1)(PercentileInterval(99.5)(band))
    return np.clip(out, 0.0, 1.0)


def cut_bands(
    bands: Sequence[Band],
    size: int,
    *,
    sky: tuple[float, float] | None = None,
    pixel: tuple[float, float] | None = None,
    allow_partial: bool = False,
) -> tuple[np.ndarray | None, Any, str, str]:
    """Centred ``size`` x ``size`` cutouts of every band at ``sky`` (ICRS RA, Dec in degrees, through each band's
    WCS) or ``pixel`` (0-based x, y on a shared grid).

    Returns ``(stack, wcs, "", "")`` with ``stack`` (H, W, bands) in FITS row order (row 0 = south) and the first
    band's cutout WCS, or ``(None, None, reason, message)``: ``outside_image`` (no overlap, or the position does not
    project) or ``partial_cutout`` (pixels off the frame or NaN; zero-filled instead with ``allow_partial``).
    """
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from astropy.nddata import Cutout2D, NoOverlapError

    planes, wcs0 = [], None
    for band in bands:
        if pixel is not None:
            x, y = pixel
        else:
            assert sky is not None and band.wcs is not None
            x, y = (float(v) for v in band.wcs.world_to_pixel(SkyCoord(sky[0] * u.deg, sky[1] * u.deg)))
        if not (math.isfinite(x) and math.isfinite(y)):
            return None, None, "outside_image", f"position does not project onto {band.path.name}"
        height, width = band.data.shape
        if not (-size <= x <= width + size and -size <= y <= height + size):  # also keeps 1e308 from Cutout2D
            where = f"({short_number(x + 1, '.1f')}, {short_number(y + 1, '.1f')})"
            return None, None, "outside_image", f"{where} is off {band.path.name} ({width}x{height})"
        try:
            cut = Cutout2D(band.data, (x, y), (size, size), wcs=band.wcs, mode="partial", fill_value=np.nan, copy=True)
        except NoOverlapError:
            where = f"({short_number(x + 1, '.1f')}, {short_number(y + 1, '.1f')})"
            return None, None, "outside_image", f"{where} is off {band.path.name}"
        bad = int(np.count_nonzero(~np.isfinite(cut.data)))
        if bad and not allow_partial:
            message = f"{bad} of {size * size} pixels of the {band.name} cutout are off the image or NaN"
            return None, None, "partial_cutout", message
        planes.append(np.nan_to_num(cut.data, nan=0.0))
        if wcs0 is None:
            wcs0 = cut.wcs
    return np.stack(planes, axis=-1), wcs0, "", ""
