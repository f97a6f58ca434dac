"""The images of ``astrodet convert clumps``: a galaxy id -> its image, pixel grid and WCS.

Why a module of its own: the two kinds of input place clumps differently but must end in the same record. FITS
images carry their own celestial WCS (a cube, one 2-D frame, or one file per band); PNG/JPEG cutouts carry none, so
their WCS is built from the galaxies table's centre and pixel scale and the stated orientation
(:func:`astrodet.data.skyboxes.cutout_wcs`). Either way a :class:`GalaxyImage` is an image whose problems were found
when it was opened (every file decoded in full), never later in training.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from astrodet.data.imaging import UnreadableImage, decode_image, read_fits_image
from astrodet.data.skyboxes import cutout_wcs, pixel_scale_arcsec

BAND_ORDER = ("u", "g", "r", "i", "z", "y")  # survey bands bluest first; other names follow, sorted
FITS_PATTERNS = ("{id}.fits", "{id}.fits.gz", "{id}.fit", "{id}_{band}.fits", "{id}_{band}.fits.gz", "{id}_{band}.fit")
PICTURE_PATTERNS = ("{id}.png", "{id}.jpg", "{id}.jpeg")
WCS_AGREEMENT_PX = 1e-3  # per-band files must put the same sky on the same pixel to this precision
FWHM_BAND = "r"  # the PSF FWHM read from FITS headers (PSFFWHM, arcsec) is the r band's when there is one


class ImageProblem(Exception):
    """Why a galaxy has no usable image: a rejects reason code and a one-line message."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class GalaxyImage:
    """A galaxy's image: its file(s), array size, the WCS of its array frame, and what its headers say."""

    galaxy_id: str
    path: Path  # the file COCO's file_name names (the first band's file for per-band FITS)
    width: int
    height: int
    wcs: WCS
    bands: list[str] | None = None
    band_files: dict[str, Path] | None = None
    data: np.ndarray | None = None  # (C, H, W) float, FITS only: masked (non-finite) pixels are checked on it
    fwhm_arcsec: float | None = None  # PSFFWHM of the header, FITS only
    fields: dict[str, object] = field(init=False)  # ra, dec (image centre) and pixel_scale, from the WCS

    def __post_init__(self) -> None:
        ra, dec = self.wcs.celestial.pixel_to_world_values((self.width - 1) / 2, (self.height - 1) / 2)
        self.fields = {"ra": float(ra) % 360.0, "dec": float(dec), "pixel_scale": pixel_scale_arcsec(self.wcs)}


def band_sort_key(band: str) -> tuple[int, str]:
    return (BAND_ORDER.index(band), band) if band in BAND_ORDER else (len(BAND_ORDER), band)


_ID_FIELD = re.compile(r"\{id(?::([^{}]*))?\}")


def fill_id(pattern: str, galaxy_id: str) -> str:
    """``pattern`` with ``{id}`` (or ``{id:SPEC}``, a Python format spec applied to an all-digit id as an integer,
    e.g. ``{id:020d}`` for SDSS objIDs zero-padded to 20 digits) replaced by the galaxy id."""

    def one(match: re.Match[str]) -> str:
        spec = match.group(1)
        if not spec:
            return galaxy_id
        try:
            return format(int(galaxy_id) if galaxy_id.isdecimal() else galaxy_id, spec)
        except ValueError:
            return galaxy_id  # a spec that does not apply to this id: the id as written
    return _ID_FIELD.sub(one, pattern)


def _pattern_regex(pattern: str, galaxy_id: str) -> re.Pattern[str]:
    parts = re.split(r"(\{band\})", fill_id(pattern, galaxy_id))
    return re.compile("".join(r"(?P<band>[^/\\]+?)" if p == "{band}" else re.escape(p) for p in parts))


def _celestial(header: fits.Header, file: Path) -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header)
        except Exception as err:  # astropy raises many types for a broken WCS; all mean "no usable WCS"
            raise ImageProblem("no_wcs", f"{file.name}: its WCS cannot be read ({str(err).splitlines()[0]})") from None
    if not wcs.has_celestial:
        raise ImageProblem("no_wcs", f"{file.name} has no celestial WCS (CTYPE RA---/DEC--)")
    return wcs.celestial


def _read(file: Path) -> tuple[np.ndarray, fits.Header]:
    try:
        data, header = read_fits_image(file)
    except UnreadableImage as err:
        raise ImageProblem("unreadable_image", f"image {file.name} cannot be read: {err.problem}") from None
    if data.ndim not in (2, 3):
        raise ImageProblem("unreadable_image", f"image {file.name}: expected (H, W) or (C, H, W), got {data.shape}")
    return np.asarray(data, dtype=np.float32), header


def _header_fwhm(header: fits.Header, key: str = "PSFFWHM") -> float | None:
    value = header.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else None


def _cube_fwhm(header: fits.Header, bands: list[str]) -> float | None:
    """A cube's PSF FWHM: ``PSFFWHM<k>`` of the r channel (else the first), as the simulator's cubes carry it,
    else a single ``PSFFWHM``."""
    channel = bands.index(FWHM_BAND) + 1 if FWHM_BAND in bands else 1
    return _header_fwhm(header, f"PSFFWHM{channel}") or _header_fwhm(header)


class FitsImages:
    """FITS images of galaxies in one folder, found by file-name patterns (``{id}``, ``{band}``) in order:
    ``<id>.fits`` (a (C, H, W) cube with BAND1..BANDC, or one 2-D frame), then ``<id>_<band>.fits`` per band.

    ``bands`` picks and orders per-band files (default: every band found, ``u g r i z y`` first); every galaxy
    must end with the same band list as the first one opened (a dataset has one channel count).
    """

    def __init__(self, folder: Path, patterns: Sequence[str] = FITS_PATTERNS, bands: Sequence[str] = ()) -> None:
        self.folder = folder
        self.patterns = tuple(patterns)
        self.bands = list(bands)
        self.listing = sorted(os.listdir(folder))
        self.first_bands: tuple[str, list[str]] | None = None  # (galaxy id, bands) of the first image opened

    def open(self, galaxy_id: str) -> GalaxyImage:
        for pattern in self.patterns:
            regex = _pattern_regex(pattern, galaxy_id)
            found = {}
            for name in self.listing:
                match = regex.fullmatch(name)
                if match:
                    found[match.groupdict().get("band") or ""] = self.folder / name
            if found:
                image = self._open_bands(galaxy_id, found) if "{band}" in pattern else self._open_one(galaxy_id, found)
                self._check_same_bands(image)
                return image
        shown = " or ".join(fill_id(p, galaxy_id) for p in self.patterns)
        raise ImageProblem("missing_image", f"no image {shown} in {self.folder}")

    def _open_one(self, galaxy_id: str, found: dict[str, Path]) -> GalaxyImage:
        file = found[""]
        data, header = _read(file)
        cube = data if data.ndim == 3 else data[None]
        if data.ndim == 3:
            bands = [str(header.get(f"BAND{k + 1}", "")).strip() for k in range(cube.shape[0])]
        else:
            bands = [str(header.get("BAND", header.get("FILTER", ""))).strip()]
        if not all(bands):
            if len(self.bands) != cube.shape[0]:
                raise ImageProblem(
                    "mismatched_bands",
                    f"{file.name}: {cube.shape[0]} channel(s) without BAND/FILTER names; name them with --bands",
                )
            bands = list(self.bands)
        elif self.bands and bands != self.bands:
            raise ImageProblem("mismatched_bands", f"{file.name} holds bands {bands}, --bands asks for {self.bands}")
        wcs = _celestial(header, file)
        _, height, width = cube.shape
        return GalaxyImage(galaxy_id, file, width, height, wcs, bands, None, cube, _cube_fwhm(header, bands))

    def _open_bands(self, galaxy_id: str, found: dict[str, Path]) -> GalaxyImage:
        bands = self.bands or sorted(found, key=band_sort_key)
        missing = [b for b in bands if b not in found]
        if missing:
            names = ", ".join(f"{galaxy_id}_{b}" for b in missing)
            raise ImageProblem("missing_image", f"no file for band(s) {', '.join(missing)} ({names}) in {self.folder}")
        planes, fwhm = [], {}
        first_wcs: WCS | None = None
        for band in bands:
            data, header = _read(found[band])
            if data.ndim != 2:
                message = f"{found[band].name}: a per-band file must be 2-D, got {data.shape}"
                raise ImageProblem("mismatched_bands", message)
            wcs = _celestial(header, found[band])
            if planes and data.shape != planes[0].shape:
                first = found[bands[0]].name
                raise ImageProblem(
                    "mismatched_bands", f"{found[band].name} is {data.shape}, {first} is {planes[0].shape}"
                )
            if first_wcs is not None and not _same_grid(first_wcs, wcs, data.shape):
                first = found[bands[0]].name
                raise ImageProblem("mismatched_bands", f"{found[band].name} and {first} have different WCS")
            first_wcs = first_wcs or wcs
            planes.append(data)
            fwhm[band] = _header_fwhm(header)
        assert first_wcs is not None
        height, width = planes[0].shape
        chosen = fwhm.get(FWHM_BAND) or fwhm[bands[0]]
        band_files = {b: found[b] for b in bands}
        cube = np.stack(planes)
        return GalaxyImage(galaxy_id, found[bands[0]], width, height, first_wcs, bands, band_files, cube, chosen)

    def _check_same_bands(self, image: GalaxyImage) -> None:
        bands = image.bands or []
        if self.first_bands is None:
            self.first_bands = (image.galaxy_id, bands)
        elif bands != self.first_bands[1]:
            first_id, first = self.first_bands
            raise ImageProblem(
                "mismatched_bands", f"bands {bands} differ from galaxy {first_id}'s {first} (one channel count)"
            )


def _same_grid(a: WCS, b: WCS, shape: tuple[int, ...]) -> bool:
    """Whether two WCS put the image corners' sky on the same pixels (to :data:`WCS_AGREEMENT_PX`)."""
    height, width = shape[-2:]
    cols = np.array([0.0, width - 1.0, 0.0, width - 1.0])
    rows = np.array([0.0, 0.0, height - 1.0, height - 1.0])
    ra, dec = a.pixel_to_world_values(cols, rows)
    col_b, row_b = b.world_to_pixel_values(ra, dec)
    return bool(np.all(np.abs(col_b - cols) <= WCS_AGREEMENT_PX) and np.all(np.abs(row_b - rows) <= WCS_AGREEMENT_PX))


class PictureImages:
    """PNG/JPEG cutouts in one folder: the galaxies table names each file (or ``patterns`` with ``{id}``) and gives
    its centre and pixel scale; ``north``/``east`` state the orientation (SDSS cutouts: north up, east left)."""

    def __init__(self, folder: Path, patterns: Sequence[str] = PICTURE_PATTERNS, north: str = "up", east: str = "left"):
        self.folder = folder
        self.patterns = tuple(patterns)
        self.north, self.east = north, east
        self.listing = set(os.listdir(folder))

    def open(self, galaxy_id: str, file_name: str | None, ra: float, dec: float, pixel_scale: float) -> GalaxyImage:
        names = [file_name] if file_name else [fill_id(p, galaxy_id) for p in self.patterns]
        name = next((n for n in names if n in self.listing), None)
        if name is None:
            raise ImageProblem("missing_image", f"no image {' or '.join(names)} in {self.folder}")
        try:
            (width, height), _ = decode_image(self.folder / name)  # in full: a cut-short JPEG fails here
        except UnreadableImage as err:
            raise ImageProblem("unreadable_image", f"image {name} cannot be read: {err.problem}") from None
        wcs = cutout_wcs(ra, dec, pixel_scale, (height, width), self.north, self.east)
        return GalaxyImage(galaxy_id, self.folder / name, width, height, wcs)
