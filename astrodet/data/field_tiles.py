"""The image side of ``astrodet convert field``: FITS frames in, regions and overlapping tiles, tile files out.

Why apart from :mod:`astrodet.data.field` (the source rows): the geometry (regions, SAHI tiles, the edge rule) and
the pixels (FITS tiles with their own WCS, 8-bit PNG renderings) can be read and tested without a catalogue.

Conventions (``/tmp``-free restatement of the FITS dataset contract):

- Box coordinates are in the ARRAY frame of the FITS data: x = column, y = row, row 0 = the first row of the data
  as numpy reads it; FITS pixel (1, 1) covers [0, 1] x [0, 1], so a WCS ``world_to_pixel`` centre p (0-based) is at
  p + 0.5. A PNG tile shows the same pixels with the rows flipped (row 0 at the top, as ``astrodet predict`` renders
  FITS), so its boxes have ``y_png = height - y_array - box_height``.
- A FITS tile is the frame's pixels (2-D, or a cube (C, H, W) with BAND1..BANDC), float32, with the frame's WCS
  sliced by astropy (``wcs[y0:y1, x0:x1]``) and the frame's photometric cards (BUNIT, zero point, gain, bands).
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from astrodet.data.imaging import UnreadableImage, fits_header, lupton_rgb, png_bytes, read_fits_image
from astrodet.data.normalise import SURFACE_UNIT, cube_band_names, frame_band_name, to_unit
from astrodet.errors import AstrodetInputError

PNG_MODES = ("none", "lupton", "asinh")
# Cards copied from the frame into every tile: what later readers need to interpret the pixels.
_KEPT_CARDS = ("BUNIT", "FILTER", "BAND", "GAIN", "MAGZP", "MAGZERO", "ZEROPT", "PHOTZP", "ZP", "MAGZPT", "EXPTIME")
LUPTON_BANDS = ("g", "r", "i")  # what the simulator's (and predict's) Lupton recipe colours: i -> R, r -> G, g -> B


@dataclass
class FieldFrame:
    """One FITS frame: pixels as (C, H, W) float32, its celestial WCS (or None) and band names (may be empty)."""

    path: Path
    index: int
    data: np.ndarray
    header: fits.Header
    wcs: Any
    bands: list[str]
    cube: bool

    @property
    def height(self) -> int:
        return int(self.data.shape[1])

    @property
    def width(self) -> int:
        return int(self.data.shape[2])

    @property
    def pixel_scale(self) -> float | None:
        """arcsec per pixel at the reference point (the same number ``astrodet predict`` uses), or None."""
        if self.wcs is None:
            return None
        from astrodet.inference.sky import SkyFrame

        return SkyFrame(self.wcs, self.height).pixel_scale


def load_frame(path: Path, index: int, hdu: int | None = None) -> FieldFrame:
    """A 2-D frame or a (C, H, W) cube with its celestial WCS; a problem is one line naming the file."""
    from astrodet.inference.sky import celestial_wcs_of

    try:
        data, header = read_fits_image(path, hdu)
    except UnreadableImage as err:
        raise AstrodetInputError(f"--fits {path}: {err.problem}") from None
    if data.ndim not in (2, 3) or not np.issubdtype(data.dtype, np.number):
        raise AstrodetInputError(f"--fits {path}: expected a numeric 2-D frame or (C, H, W) cube, got {data.shape}")
    cube = data.ndim == 3
    planes = np.asarray(data if cube else data[None], dtype=np.float32)
    if not np.isfinite(planes).any():
        raise AstrodetInputError(f"--fits {path}: no finite pixel")
    bands = cube_band_names(header, len(planes)) if cube else [b for b in [frame_band_name(header)] if b]
    return FieldFrame(path, index, planes, header, celestial_wcs_of(header), bands, cube)


# --- geometry ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A pixel window ``[x0, x1) x [y0, y1)`` of a frame (array frame)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


def regions(width: int, height: int, region_size: int | None) -> list[Window]:
    """Disjoint regions covering the frame, each about ``region_size`` px (None: the whole frame as one region).

    Why: every region goes wholly to one split and tiles are cut inside it, so overlapping tiles never share
    pixels across train and test.
    """
    if region_size is None:
        return [Window(0, 0, width, height)]
    nx, ny = max(1, round(width / region_size)), max(1, round(height / region_size))
    xs = [round(k * width / nx) for k in range(nx + 1)]
    ys = [round(k * height / ny) for k in range(ny + 1)]
    return [Window(xs[i], ys[j], xs[i + 1], ys[j + 1]) for j in range(ny) for i in range(nx)]


def tiles_of(region: Window, tile_size: int, overlap: float) -> list[Window]:
    """SAHI's overlapping tiles of one region (as ``astrodet predict`` cuts a frame), in frame coordinates."""
    from astrodet.inference.tiling import make_tiles

    cut = make_tiles(region.height, region.width, tile_size, overlap)
    return [Window(region.x0 + t.x0, region.y0 + t.y0, region.x0 + t.x1, region.y0 + t.y1) for t in cut]


def clip_box(box: tuple[float, float, float, float], window: Window) -> tuple[float, float, float, float] | None:
    """``box`` (x0, y0, x1, y1) clipped to ``window``; None when they do not overlap with a positive area."""
    x0, y0 = max(box[0], window.x0), max(box[1], window.y0)
    x1, y1 = min(box[2], window.x1), min(box[3], window.y1)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def area(box: tuple[float, float, float, float]) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


# --- tile files --------------------------------------------------------------------------------------------------


def tile_fits_bytes(frame: FieldFrame, window: Window) -> bytes:
    """The tile as FITS: the frame's pixels (2-D or cube), its WCS sliced to the tile, its photometric cards."""
    pixels = frame.data[:, window.y0 : window.y1, window.x0 : window.x1]
    wcs = frame.wcs[window.y0 : window.y1, window.x0 : window.x1] if frame.wcs is not None else None
    cards: dict[str, Any] = {key: frame.header[key] for key in _KEPT_CARDS if key in frame.header}
    if frame.cube:
        cards.pop("FILTER", None)
        cards.pop("BAND", None)
        cards.update({f"BAND{k + 1}": name for k, name in enumerate(frame.bands)})
    cards["SRCFRAME"] = (frame.path.name[:50], "frame cut")
    cards["TILEX0"] = (window.x0, "frame column of the tile's pixel 0 (0-based)")
    cards["TILEY0"] = (window.y0, "frame row of the tile's pixel 0 (0-based)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy notes about non-standard WCS keywords it repairs
        header = fits_header(wcs, cards)
    array = np.ascontiguousarray(pixels if frame.cube else pixels[0], dtype=np.float32)
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(data=array, header=header)]).writeto(buffer, output_verify="exception")
    return buffer.getvalue()


class PngRenderer:
    """8-bit PNG renderings of tiles, one stretch for the whole frame (so every tile of it looks the same).

    ``lupton``: the g, r, i bands in nanomaggies (per pixel, per arcsec^2, or via a zero point) -> surface
    brightness -> :func:`astrodet.data.imaging.lupton_rgb` with its defaults: the simulator's recipe, which is how
    ``astrodet predict`` renders a FITS frame for models trained on PNGs, so a detector trained on these tiles can
    be run back over the whole frame. ``asinh``: per band, astropy's ``ZScaleInterval`` measured once on the whole
    frame, then ``AsinhStretch(a=0.1)``; one band -> grey in all three channels, three bands -> RGB with the last
    band red (give bands bluest first).
    """

    def __init__(self, frame: FieldFrame, mode: str) -> None:
        self.frame = frame
        self.mode = mode
        if mode == "lupton":
            self._planes = self._lupton_planes()
        elif mode == "asinh":
            if len(frame.data) not in (1, 3):
                raise AstrodetInputError(f"--png asinh: {frame.path} has {len(frame.data)} bands; it takes 1 or 3")
            from astropy.visualization import ZScaleInterval

            finite = [plane[np.isfinite(plane)] for plane in frame.data]
            self._limits = [ZScaleInterval().get_limits(values) for values in finite]

    def _lupton_planes(self) -> list[np.ndarray]:
        """g, r, i as surface brightness in nanomaggies per arcsec^2, by the unit conversion predict uses."""
        frame = self.frame
        missing = [b for b in LUPTON_BANDS if b not in frame.bands]
        if missing:
            raise AstrodetInputError(
                f"--png lupton: {frame.path} has bands {frame.bands or 'unnamed'}; it needs g, r and i "
                "(a cube with BAND1..BANDn headers)"
            )
        scale = frame.pixel_scale
        area = scale**2 if scale is not None else None
        planes = []
        for band in LUPTON_BANDS:
            data = np.asarray(frame.data[frame.bands.index(band)], dtype=np.float64)
            data = np.where(np.isfinite(data), data, 0.0)
            planes.append(to_unit(data, frame.header, SURFACE_UNIT, f"--png lupton: {frame.path}", None, area))
        return planes

    def png(self, window: Window) -> bytes:
        """The tile's PNG: rows flipped (row 0 = the last FITS row, at the top), as predict shows a frame."""
        rows, cols = slice(window.y0, window.y1), slice(window.x0, window.x1)
        if self.mode == "lupton":
            g, r, i = (plane[rows, cols][::-1] for plane in self._planes)
            return png_bytes(lupton_rgb(g, r, i))
        from astropy.visualization import AsinhStretch, ManualInterval

        channels = []
        for plane, (low, high) in zip(self.frame.data, self._limits, strict=True):
            values = np.where(np.isfinite(plane[rows, cols]), plane[rows, cols], low)[::-1]
            scaled = AsinhStretch(a=0.1)(ManualInterval(low, high)(values, clip=True))
            channels.append(np.round(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8))
        rgb = np.stack(channels[::-1] if len(channels) == 3 else channels * 3, axis=-1)
        return png_bytes(rgb)


def tile_centre_icrs(frame: FieldFrame, window: Window) -> tuple[float, float] | None:
    """ICRS RA, Dec (degrees) of the tile centre, or None without a celestial WCS."""
    if frame.wcs is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sky = frame.wcs.pixel_to_world((window.x0 + window.x1) / 2 - 0.5, (window.y0 + window.y1) / 2 - 0.5)
    icrs = sky.icrs
    ra, dec = float(icrs.ra.deg) % 360.0, float(icrs.dec.deg)
    return (ra, dec) if math.isfinite(ra) and math.isfinite(dec) else None


def finite_fraction(frame: FieldFrame, window: Window) -> float:
    pixels = frame.data[:, window.y0 : window.y1, window.x0 : window.x1]
    return float(np.isfinite(pixels).all(axis=0).mean())


def frame_stems(frames: Sequence[FieldFrame]) -> list[str]:
    """A file-name stem per frame: its own name, prefixed by its index when two frames share a name."""
    from astrodet.data.toolkit import safe_stem

    names = [safe_stem(f.path.name.split(".")[0]) for f in frames]
    return [f"f{k}_{n}" if names.count(n) > 1 else n for k, n in enumerate(names)]
