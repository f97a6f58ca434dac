"""Inputs to model pixels, by the model's :class:`~astrodet.inference.model.ImageRecipe`, or a rejection saying why not.

Why here and strict: a detector only works on pixels made the way its training pixels were. A PNG/JPEG must
already be what the recipe makes (8-bit, the right number of channels); a FITS input is rendered exactly as the
simulator rendered its PNGs (for the ``lupton`` recipe: surface brightness in nanomaggies per arcsec^2, the
recipe's band weights, stretch, Q and black point, through :func:`astrodet.data.imaging.lupton_rgb`), and anything
that cannot be (missing bands, unknown units, no WCS) is refused with a reason instead of being guessed.

FITS units: ``BUNIT`` ``nanomaggy`` (per pixel, SDSS frames) or ``nanomaggy/arcsec2`` (surface brightness, the
simulator's cutout FITS); any other unit needs a zero point (header ``MAGZP``/``ZEROPT``/``PHOTZP``/... or
``--zeropoint``), which converts data to nanomaggies (22.5 mag = 1 nanomaggy).

``float`` recipes (multi-band FITS models, docs/fits.md): the bands go through
:func:`astrodet.data.normalise.prepare`, the function the training data loaders of both frameworks call, and stay
in the frame of the data as stored (no flip: such models were trained on the FITS array frame).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from astropy.io import fits
from PIL import Image, UnidentifiedImageError

from astrodet.data.imaging import UnreadableImage, lupton_rgb, read_fits_image
from astrodet.data.normalise import (
    BandCube,
    cube_band_names,
    header_zeropoint,
    is_surface_brightness,
    prepare,
    to_unit,
)
from astrodet.errors import AstrodetInputError
from astrodet.inference.model import ImageRecipe
from astrodet.inference.rejects import (
    ALL_NAN,
    BAND_MISMATCH,
    NO_CELESTIAL_WCS,
    RECIPE_MISMATCH,
    UNREADABLE_IMAGE,
    WRONG_BAND_COUNT,
    InputRejected,
)
from astrodet.inference.sky import SkyFrame, celestial_wcs_of
from astrodet.inference.sources import InputUnit


@dataclass
class BandImage:
    """One band of a FITS input, for photometry: data as flux per pixel with row 0 at the BOTTOM of the picture the
    model saw (the FITS data as stored when the picture was rendered north-up; rows reversed for ``float`` models,
    whose picture is the array as stored), so that photometry maps picture positions to it one way."""

    flux: np.ndarray
    zeropoint: float | None
    gain: float | None  # electrons per data unit, for the Poisson part of the error


@dataclass
class LoadedImage:
    """An input ready for the model: ``pixels`` (H, W, C), uint8 row 0 at the top (``rgb8``) or float32 in the
    array frame (``float``); sky geometry; FITS bands."""

    pixels: np.ndarray
    sky: SkyFrame | None
    bands: dict[str, BandImage] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------- pictures


def load_picture(unit: InputUnit, recipe: ImageRecipe) -> LoadedImage:
    """A PNG/JPEG as the model input, refused unless it is 8-bit with the recipe's number of channels."""
    if recipe.kind != "rgb8":
        raise InputRejected(RECIPE_MISMATCH, f"the model takes {recipe.kind} input; a PNG/JPEG holds 8-bit pixels")
    try:
        with Image.open(unit.path) as image:
            image.load()
            mode = image.mode
            if mode in ("RGB", "RGBA", "P", "CMYK", "YCbCr") and recipe.channels == 3:
                pixels = np.asarray(image.convert("RGB"))
            elif mode == "L" and recipe.channels == 1:
                pixels = np.asarray(image)[:, :, None]
            else:
                wanted = "RGB" if recipe.channels == 3 else "greyscale (L)"
                raise InputRejected(
                    RECIPE_MISMATCH,
                    f"image mode {mode} ({_mode_words(mode)}); the model was trained on 8-bit {wanted} images",
                )
    except InputRejected:
        raise
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as err:
        raise InputRejected(UNREADABLE_IMAGE, f"cannot decode the image ({_first_line(err)})") from None
    sky = SkyFrame.from_hint(unit.sky, pixels.shape[1], pixels.shape[0]) if unit.sky else None
    return LoadedImage(np.ascontiguousarray(pixels), sky)


def _mode_words(mode: str) -> str:
    return {"L": "8-bit greyscale", "LA": "greyscale + alpha", "I;16": "16-bit", "I": "32-bit integer",
            "F": "32-bit float", "1": "1-bit"}.get(mode, "colour")  # fmt: skip


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else type(error).__name__


# ------------------------------------------------------------------------------------------------- FITS


@dataclass
class _Plane:
    data: np.ndarray  # 2-D, FITS orientation
    header: fits.Header
    source: str


def load_fits(
    unit: InputUnit,
    recipe: ImageRecipe,
    bands: Sequence[str],
    cube_bands: Sequence[str] | None = None,
    zeropoint: float | None = None,
) -> LoadedImage:
    """A FITS input (per-band group, single frame or cube) rendered by ``recipe``; every band kept for photometry."""
    planes = _group_planes(unit) if unit.band_files else _file_planes(unit, cube_bands, len(recipe.bands))
    needed = list(recipe.bands)
    missing = [b for b in needed if b not in planes]
    if missing:
        have = ", ".join(planes) or "none named"
        reason = WRONG_BAND_COUNT if len(planes) != len(needed) else RECIPE_MISMATCH
        raise InputRejected(
            reason,
            f"bands {have}; the model renders {', '.join(needed)} (missing {', '.join(missing)}): pass per-band "
            "files <id>_<band>.fits, a {band} pattern, or a cube with BAND1..BANDn / --cube-bands",
        )
    shapes = {b: p.data.shape for b, p in planes.items()}
    if len(set(shapes.values())) > 1:
        raise InputRejected(BAND_MISMATCH, f"bands differ in shape: {shapes}")
    first = planes[needed[0]]
    wcs = celestial_wcs_of(first.header)
    if wcs is None:
        raise InputRejected(NO_CELESTIAL_WCS, f"{first.source}: no celestial WCS (RA---/DEC-- axes) in the header")
    for band, plane in planes.items():
        if not np.isfinite(plane.data).any():
            raise InputRejected(ALL_NAN, f"{plane.source}: band {band} has no finite pixel")
    native = recipe.kind == "float"  # FITS-native models see the array as stored: no flip
    sky = SkyFrame.from_header_wcs(wcs, first.data.shape[0], rows_flipped=not native)
    area = sky.pixel_scale**2
    kept = set(bands) | set(needed)
    band_images = {b: _band_image(p, area, zeropoint, native) for b, p in planes.items() if b in kept}
    if native:
        pixels = _float_input(recipe, [planes[b] for b in needed], area, zeropoint)
    else:
        pixels = render(recipe, {b: planes[b] for b in needed}, area, zeropoint)
    return LoadedImage(pixels, sky, band_images)


def _float_input(recipe: ImageRecipe, planes: Sequence[_Plane], area: float, zeropoint: float | None) -> np.ndarray:
    """The bands through the training loaders' own :func:`astrodet.data.normalise.prepare`."""
    cube = BandCube(
        np.stack([p.data.astype(np.float32) for p in planes]),
        recipe.bands,
        tuple(p.header for p in planes),
        planes[0].source,
    )
    try:
        return prepare(cube, recipe, zeropoint, area)
    except AstrodetInputError as err:
        raise InputRejected(RECIPE_MISMATCH, str(err)) from None


def _read(path: str) -> tuple[np.ndarray, fits.Header]:
    try:
        data, header = read_fits_image(path)
    except UnreadableImage as err:
        raise InputRejected(UNREADABLE_IMAGE, str(err)) from None
    if not np.issubdtype(data.dtype, np.number):
        raise InputRejected(UNREADABLE_IMAGE, f"{path}: image data of type {data.dtype} is not numeric")
    return np.asarray(data, dtype=np.float64), header


def _group_planes(unit: InputUnit) -> dict[str, _Plane]:
    planes = {}
    for band, path in unit.band_files:
        data, header = _read(path)
        if data.ndim != 2:
            raise InputRejected(WRONG_BAND_COUNT, f"{path}: band {band} holds shape {data.shape}, expected a 2-D image")
        planes[band] = _Plane(data, header, path)
    return planes


def _file_planes(unit: InputUnit, cube_bands: Sequence[str] | None, n_needed: int) -> dict[str, _Plane]:
    data, header = _read(unit.path)
    if data.ndim == 2:
        band = str(header.get("FILTER", header.get("BAND", ""))).strip()
        if n_needed != 1:
            raise InputRejected(
                WRONG_BAND_COUNT,
                f"one band ({band or 'unnamed'}); the model renders {n_needed}: pass per-band files "
                "<id>_<band>.fits, a {band} pattern, or a cube",
            )
        return {band: _Plane(data, header, unit.path)}
    if data.ndim != 3:
        raise InputRejected(WRONG_BAND_COUNT, f"data of shape {data.shape}: expected a 2-D frame or a cube")
    names = list(cube_bands) if cube_bands else cube_band_names(header, data.shape[0])
    if not names:
        if data.shape[0] != n_needed:
            raise InputRejected(WRONG_BAND_COUNT, f"a cube of {data.shape[0]} planes; the model renders {n_needed}")
        raise InputRejected(
            RECIPE_MISMATCH, "the cube's planes carry no band names (BAND1..BANDn or FILTER1..n): pass --cube-bands"
        )
    if len(names) != data.shape[0]:
        raise InputRejected(WRONG_BAND_COUNT, f"a cube of {data.shape[0]} planes named {names}")
    return {name: _Plane(data[k], header, unit.path) for k, name in enumerate(names)}


def _band_image(plane: _Plane, area_arcsec2: float, zeropoint: float | None, native: bool) -> BandImage:
    data = plane.data[::-1] if native else plane.data  # row 0 at the bottom of the picture the model saw
    flux = data * area_arcsec2 if is_surface_brightness(plane.header) else data
    gain = plane.header.get("GAIN")
    gain_value = float(gain) if isinstance(gain, (int, float)) and gain > 0 else None
    if gain_value is not None and is_surface_brightness(plane.header):
        gain_value /= area_arcsec2  # electrons per (data unit x pixel area)
    return BandImage(flux, header_zeropoint(plane.header, zeropoint), gain_value)


def render(
    recipe: ImageRecipe, planes: Mapping[str, _Plane], area_arcsec2: float, zeropoint: float | None
) -> np.ndarray:
    """FITS bands -> the recipe's model input, rows flipped so row 0 is at the top (as the PNG cutouts are)."""
    if recipe.kind != "rgb8" or recipe.stretch != "lupton" or recipe.channels != 3 or len(recipe.bands) != 3:
        raise InputRejected(
            RECIPE_MISMATCH,
            f"the model's recipe ({recipe.kind}, stretch {recipe.stretch}, {recipe.channels} channels) gives no way "
            "to render FITS data as its training pixels were made",
        )
    params = recipe.params
    unit = params.get("unit")
    surface = {}
    for band, plane in planes.items():
        data = np.where(np.isfinite(plane.data), plane.data, 0.0)
        surface[band] = _to_unit(data, plane, unit, area_arcsec2, zeropoint)[::-1]
    red, green, blue = recipe.bands
    weights = params.get("weights", {})
    return lupton_rgb(
        surface[blue],
        surface[green],
        surface[red],
        stretch=float(params["stretch"]),
        q=float(params["Q"]),
        weights={"g": float(weights.get(blue, 1.0)), "r": float(weights.get(green, 1.0)),
                 "i": float(weights.get(red, 1.0))},
        black=float(params.get("black", 0.0)),
    )  # fmt: skip


def _to_unit(
    data: np.ndarray, plane: _Plane, unit: str | None, area_arcsec2: float, zeropoint: float | None
) -> np.ndarray:
    """Data in the recipe's unit (:func:`astrodet.data.normalise.to_unit`), or a recipe-mismatch rejection."""
    try:
        return to_unit(data, plane.header, unit, plane.source, zeropoint, area_arcsec2)
    except AstrodetInputError as err:
        raise InputRejected(RECIPE_MISMATCH, str(err)) from None
