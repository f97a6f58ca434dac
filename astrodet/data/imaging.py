"""Framework-free imaging helpers: celestial WCS, deterministic FITS and PNG output, SDSS-style gri colour images.

Why here: the simulator and every catalogue converter need the same three things (a TAN WCS for a cutout, a FITS
file that another astronomy tool can open, and an RGB PNG that looks like an SDSS/Galaxy Zoo cutout), and all
outputs must be byte-identical for identical inputs so datasets are reproducible. All FITS, WCS and RGB work goes
through astropy; nothing writes FITS by hand.

Pixel conventions (shared with :mod:`astrodet.data.coco`):

- *PNG frame*: continuous coordinates ``(x, y)`` with the origin at the top-left corner of the top-left pixel,
  ``x`` to the right, ``y`` down; pixel ``(col, row)`` covers ``[col, col + 1) x [row, row + 1)``. Images are shown
  north up, east left, as SDSS and Galaxy Zoo cutouts are.
- *FITS array*: ``data[row, col]`` with row 0 at the bottom when displayed (FITS convention), so north is towards
  increasing row. WCS pixel coordinates in astropy's ``*_values`` calls are 0-based pixel centres.
  :func:`png_to_fits_pixel` converts between the two for an image of the same grid.
"""

from __future__ import annotations

import inspect
import io
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning
from astropy.visualization import make_lupton_rgb
from astropy.wcs import WCS
from PIL import Image

from astrodet.errors import AstrodetInputError
from astrodet.io import atomic_open

FITS_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fts")

# Lupton et al. (2004) gri -> RGB as SDSS SkyServer colour images do: i -> R, r -> G, g -> B, each band multiplied
# by a weight before the joint asinh stretch. The weights were tuned on the real SDSS cutouts in shared/data
# (Galaxy Zoo 2 Kaggle images): sky noise about equally strong in R, G and B (B a little weaker), bulge centres
# at R/G ~ 1.1-1.2 and B/G ~ 0.75 (yellow), star-forming disks and clumps blue-white.
SDSS_RGB_WEIGHTS: Mapping[str, float] = {"g": 1.38, "r": 1.0, "i": 0.87}
# Stretch and Q for inputs in nanomaggies per square arcsec (surface brightness, independent of pixel scale):
# ``stretch`` is the linear range before the asinh softens, ``Q`` the asinh softening, and the black point sits
# DEFAULT_BLACK below zero. Tuned so that SDSS-depth sky reads as mean ~5, std ~4.5 (of 255) per channel, with ~6%
# pure-black pixels, and bulge centres ~(200, 165, 127), as measured on the Galaxy Zoo 2 cutouts (sky mean ~5,
# std ~4.5, 5.5% black; centres ~(192, 158, 122)).
DEFAULT_STRETCH = 7.0
DEFAULT_Q = 3.5
DEFAULT_BLACK = 0.12
PNG_COMPRESS_LEVEL = 1  # zlib level 1 with the Huffman-only strategy: ~5x faster than Pillow's default
PNG_COMPRESS_TYPE = 2  # zlib Z_HUFFMAN_ONLY: noisy sky barely LZ-compresses; Huffman alone is faster and smaller here

# Header keywords astropy's WCS may emit that carry dates; dropped so files hold no date or time.
_DATE_KEYS = ("DATEREF", "MJDREFI", "MJDREFF", "MJDREF", "DATE-OBS", "MJD-OBS", "DATE")


def celestial_wcs(
    ra_deg: float,
    dec_deg: float,
    pixel_scale_arcsec: float,
    shape: tuple[int, int],
    crpix: tuple[float, float] | None = None,
) -> WCS:
    """A north-up, east-left gnomonic (TAN) WCS for a ``shape = (ny, nx)`` FITS array.

    ``crpix`` is the 1-based FITS pixel of ``(ra, dec)``; by default the array centre (``(n + 1) / 2``), so the
    sky position sits exactly in the middle of the image, as on a cutout centred on a catalogue position.
    """
    if not pixel_scale_arcsec > 0:
        raise ValueError(f"pixel_scale_arcsec must be > 0, got {pixel_scale_arcsec}")
    ny, nx = int(shape[0]), int(shape[1])
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.crval = [float(ra_deg) % 360.0, float(dec_deg)]
    wcs.wcs.crpix = list(crpix) if crpix is not None else [(nx + 1) / 2.0, (ny + 1) / 2.0]
    scale_deg = float(pixel_scale_arcsec) / 3600.0
    wcs.wcs.cd = [[-scale_deg, 0.0], [0.0, scale_deg]]
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.equinox = 2000.0
    wcs.pixel_shape = (nx, ny)
    return wcs


def png_to_fits_pixel(x: np.ndarray | float, y: np.ndarray | float, height: int) -> tuple[Any, Any]:
    """PNG-frame continuous ``(x, y)`` -> 0-based FITS pixel-centre coordinates of the same grid (rows flipped)."""
    return np.asarray(x, dtype=float) - 0.5, height - np.asarray(y, dtype=float) - 0.5


def fits_pixel_to_png(col: np.ndarray | float, row: np.ndarray | float, height: int) -> tuple[Any, Any]:
    """Inverse of :func:`png_to_fits_pixel`."""
    return np.asarray(col, dtype=float) + 0.5, height - np.asarray(row, dtype=float) - 0.5


def _clean_wcs_header(wcs: WCS) -> fits.Header:
    header = wcs.to_header()
    for key in _DATE_KEYS:
        header.remove(key, ignore_missing=True, remove_all=True)
    return header


def fits_header(wcs: WCS | None = None, cards: Mapping[str, Any] | None = None) -> fits.Header:
    """Header cards for an image: the WCS (date keywords dropped) then ``cards`` (``value`` or ``(value, comment)``).

    Build it once and pass it to :func:`write_fits_image` (``header.copy()`` per file) when writing many images
    with one WCS: astropy's header construction costs more than writing a small image.
    """
    header = _clean_wcs_header(wcs) if wcs is not None else fits.Header()
    for key, value in (cards or {}).items():
        header[key] = value
    return header


def write_fits_image(
    path: str | os.PathLike[str],
    data: np.ndarray,
    wcs: WCS | None = None,
    cards: Mapping[str, Any] | None = None,
    header: fits.Header | None = None,
) -> None:
    """Write a 2-D image as a single-HDU FITS file, atomically (whole file or nothing) and deterministically.

    The header is ``header`` (if given) followed by the ``wcs`` and ``cards``; no dates, no checksums, so identical
    inputs give byte-identical files.
    """
    array = np.asarray(data)
    if array.ndim != 2:
        raise ValueError(f"FITS image data must be 2-D, got shape {array.shape}")
    full = header.copy() if header is not None else fits.Header()
    if wcs is not None or cards:
        full.update(fits_header(wcs, cards))
    hdulist = fits.HDUList([fits.PrimaryHDU(data=array, header=full)])
    with atomic_open(path, "wb") as handle:
        hdulist.writeto(handle, output_verify="exception")


_LUPTON_HAS_INTERVAL = "interval" in inspect.signature(make_lupton_rgb).parameters


def lupton_rgb(
    g: np.ndarray,
    r: np.ndarray,
    i: np.ndarray,
    stretch: float = DEFAULT_STRETCH,
    q: float = DEFAULT_Q,
    weights: Mapping[str, float] = SDSS_RGB_WEIGHTS,
    black: float = DEFAULT_BLACK,
) -> np.ndarray:
    """SDSS-style colour image (``uint8``, shape ``(ny, nx, 3)``) from g, r, i arrays via astropy's Lupton asinh.

    i -> red, r -> green, g -> blue after multiplying by ``weights``; the black point is ``-black`` (weighted input
    units), slightly below the sky level of sky-subtracted data so that sky noise shows as the faint grey-brown
    texture of SDSS cutouts instead of half-black pixels. Inputs
    should be surface brightness (e.g. nanomaggies per arcsec^2) so that the look does not depend on pixel scale;
    the defaults of ``stretch`` and ``q`` are tuned for that unit. Rows are used as given: pass arrays whose row 0 is
    the top of the picture (flip FITS arrays with ``[::-1]``).
    """
    # float32: astropy's mapping runs ~7x faster than in float64, and 8-bit output does not need more precision
    bands = [np.asarray(a, dtype=np.float32) * np.float32(weights[b]) for a, b in ((i, "i"), (r, "r"), (g, "g"))]
    # astropy divides f(I) by I before masking I <= 0, which warns where I is exactly 0; the output is still right
    with np.errstate(invalid="ignore", divide="ignore"):
        if _LUPTON_HAS_INTERVAL:
            from astropy.visualization import ManualInterval

            interval = ManualInterval(vmin=-black, vmax=None)
            return make_lupton_rgb(*bands, interval=interval, stretch=stretch, Q=q)
        return make_lupton_rgb(*bands, minimum=-black, stretch=stretch, Q=q)  # astropy < 7


def png_bytes(
    rgb: np.ndarray, compress_level: int = PNG_COMPRESS_LEVEL, compress_type: int = PNG_COMPRESS_TYPE
) -> bytes:
    """Encode a ``uint8`` RGB (or greyscale) array as PNG without metadata chunks, so bytes depend only on pixels."""
    array = np.ascontiguousarray(rgb)
    if array.dtype != np.uint8:
        raise ValueError(f"PNG data must be uint8, got {array.dtype}")
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ValueError(f"PNG data must be (H, W), (H, W, 3) or (H, W, 4), got shape {array.shape}")
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=compress_level, compress_type=compress_type)
    return buffer.getvalue()


def write_png(
    path: str | os.PathLike[str],
    rgb: np.ndarray,
    compress_level: int = PNG_COMPRESS_LEVEL,
    compress_type: int = PNG_COMPRESS_TYPE,
) -> None:
    """Write a PNG atomically and deterministically (no timestamps, no text chunks)."""
    data = png_bytes(rgb, compress_level, compress_type)
    with atomic_open(path, "wb") as handle:
        handle.write(data)


# --- reading untrusted image files -------------------------------------------------------------------------------


class UnreadableImage(AstrodetInputError):
    """An image file that cannot be decoded; ``problem`` says why, without the path (callers add their framing)."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


def _refuse_cut_short(file: Path, hdul: fits.HDUList) -> None:
    """Compare the data each header announces with the bytes the file has (astropy's own error for a file cut
    inside its data is a reshape or buffer error naming neither)."""
    if file.name.lower().endswith((".gz", ".fz", ".bz2", ".zip")):
        return  # compressed: the sizes are of the decompressed stream; a cut stream fails in decompression
    size = file.stat().st_size
    for index, hdu in enumerate(hdul):
        header = hdu.header
        axes = [int(header.get(f"NAXIS{i}", 0)) for i in range(1, int(header.get("NAXIS", 0)) + 1)]
        if axes and axes[0] == 0 and header.get("GROUPS"):
            axes = axes[1:]  # random groups: NAXIS1 = 0 is a marker, not a dimension
        elements = int(np.prod(axes, dtype=np.int64)) if axes else 0
        groups = int(header.get("GCOUNT", 1))
        needed = abs(int(header.get("BITPIX", 8))) // 8 * groups * (int(header.get("PCOUNT", 0)) + elements)
        have = size - hdul.fileinfo(index)["datLoc"]
        if needed > have:
            raise UnreadableImage(
                file, f"the file ends inside the data of HDU {index}: {needed} bytes announced, {max(have, 0)} there"
            )


def _read_hdu(file: Path, hdu: int | None) -> tuple[np.ndarray, fits.Header, int]:
    with fits.open(file, memmap=False) as hdul:
        _refuse_cut_short(file, hdul)
        if hdu is None:
            index = next((i for i, h in enumerate(hdul) if h.data is not None), None)
            if index is None:
                raise UnreadableImage(file, "no HDU holds image data")
        elif not 0 <= hdu < len(hdul):
            raise UnreadableImage(file, f"no HDU {hdu} (the file has {len(hdul)})")
        else:
            index = hdu
        # a copy, read now: the file closes at the end of the block
        return np.array(hdul[index].data), hdul[index].header.copy(), index


def read_fits_image(path: str | os.PathLike[str], hdu: int | None = None) -> tuple[np.ndarray, fits.Header]:
    """The data (read in full, so a file cut short fails here and not later) and header of one FITS HDU: ``hdu``,
    or the first that holds data. Every problem is an :class:`UnreadableImage` naming the file."""
    file = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            warnings.simplefilter("ignore", AstropyUserWarning)  # "may have been truncated": refused below instead
            data, header, index = _read_hdu(file, hdu)
    except UnreadableImage:
        raise
    except FileNotFoundError:
        raise UnreadableImage(file, "no such file") from None
    except IsADirectoryError:
        raise UnreadableImage(file, "is a folder, expected a FITS file") from None
    except Exception as err:  # astropy raises many types for malformed files; all mean "not readable"
        raise UnreadableImage(file, f"not a readable FITS file ({_first_line(err)})") from None
    if data.ndim == 0 or data.size == 0:
        raise UnreadableImage(file, f"HDU {index} holds no image data")
    return data, header


def decode_image(path: str | os.PathLike[str]) -> tuple[tuple[int, int], str]:
    """``((width, height), format)`` of an image file after decoding it in full.

    Why in full: a PNG or JPEG cut short still has a header that parses, and fails only when its pixels are read,
    which would be in the middle of a conversion or of training. PNG/JPEG/... go through Pillow (``verify`` for the
    structure and checksums, then a reopen and ``load`` for the pixels), FITS through :func:`read_fits_image`
    (a 2-D image or a (C, H, W) cube), ``.npy`` through numpy ((H, W) or (H, W, C)). Raises :class:`UnreadableImage`.
    """
    file = Path(path)
    name = file.name.lower()
    if name.endswith(FITS_SUFFIXES):
        data, _ = read_fits_image(file)
        if data.ndim not in (2, 3):
            raise UnreadableImage(file, f"expected a 2-D image or (C, H, W) cube, got shape {data.shape}")
        return (int(data.shape[-1]), int(data.shape[-2])), "FITS"
    try:
        if name.endswith(".npy"):
            array = np.load(file, allow_pickle=False)
            if array.ndim not in (2, 3):
                raise UnreadableImage(file, f"expected an (H, W[, C]) array, got shape {array.shape}")
            return (int(array.shape[1]), int(array.shape[0])), "NPY"
        with Image.open(file) as image:
            image.verify()  # structure and checksums
        with Image.open(file) as image:  # verify() leaves the image unusable: reopen to decode the pixels
            image.load()
            return (int(image.size[0]), int(image.size[1])), image.format or ""
    except UnreadableImage:
        raise
    except FileNotFoundError:
        raise UnreadableImage(file, "no such file") from None
    except Exception as err:  # a decoder meeting a malformed file may raise any type; all mean "not readable"
        raise UnreadableImage(file, _first_line(err)) from None
