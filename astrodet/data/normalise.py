"""Survey pixels as model input: multi-band FITS/NumPy images read as ``(C, H, W)`` float32 and normalised.

Why one module: a detector only works on pixels made the way its training pixels were, so the Detectron2 mapper,
the mmdet loading transform and ``astrodet predict`` all call :func:`prepare` here (the recipe says how), and the
readers here (:func:`read_bands`) are the only place that turns a COCO image record into bands. Arrays stay in the
frame of the data as stored (row 0 = the first FITS row, no flip: docs/fits.md), so COCO boxes of FITS datasets are
in that frame too.

Normalisations (``recipe.stretch``; ``recipe.params`` hold what reproduces them, with the defaults below):

- ``asinh``: per band and per image, ``softening * asinh((x - sky) / (softening * sigma))`` where ``sky`` and
  ``sigma`` are the sigma-clipped median and MAD-based standard deviation of the band (astropy
  ``sigma_clipped_stats``). Sky noise comes out with standard deviation ~1 (the stretch is linear below
  ``softening`` sigma), bright sources are compressed logarithmically above it. Unit-free; the default.
- ``lupton``: Lupton et al. (2004) colour-preserving asinh generalised to N bands: intensity ``I`` = mean over bands
  of ``x - minimum``, every band multiplied by ``f(I) / I`` (astropy's ``LuptonAsinhStretch``), clipped at 0, and a
  pixel whose brightest band exceeds 1 scaled down as a whole; output in [0, 1]. For 3 bands it equals astropy's
  ``make_lupton_rgb`` in float. Depends on the data's unit (``params["unit"]``).
- ``zscale``: per band, IRAF's z-scale limits (astropy ``ZScaleInterval``) mapped to [0, 1], clipped by default.
- ``standardise``: ``(x - mean) / std`` per band with statistics stored in the recipe (computed once over the
  training set: :func:`coco_band_statistics`).
- ``none``: the data as stored (in ``params["unit"]`` when given).

Non-finite pixels (masked, off the detector) are ignored by every statistic and set to 0 after normalisation: the
sky level for ``asinh``, the training mean for ``standardise``, black for ``lupton``/``zscale``/``none``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.io import fits
from astropy.stats import sigma_clipped_stats
from astropy.visualization import LuptonAsinhStretch, ZScaleInterval
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_area

from astrodet.data.imaging import FITS_SUFFIXES, UnreadableImage, read_fits_image
from astrodet.errors import AstrodetInputError

if TYPE_CHECKING:
    from astrodet.inference.model import ImageRecipe

FLOAT_STRETCHES = ("asinh", "lupton", "zscale", "standardise", "none")
# Parameters of each float normalisation and their defaults; REQUIRED ones have no default.
REQUIRED = object()
STRETCH_PARAMS: dict[str, dict[str, Any]] = {
    "asinh": {"softening": 5.0, "sigma_clip": 3.0, "clip": None, "unit": None},
    "lupton": {"stretch": 5.0, "Q": 8.0, "minimum": 0.0, "unit": None},
    "zscale": {"contrast": 0.25, "clip": True, "unit": None},
    "standardise": {"mean": REQUIRED, "std": REQUIRED, "clip": None, "unit": None},
    "none": {"clip": None, "unit": None},
}
SURFACE_UNIT = "nanomaggy/arcsec2"  # the one unit conversion predict and training can make (the simulator's unit)
NANOMAGGY_ZEROPOINT = 22.5  # AB mag of 1 nanomaggy (SDSS)
NJY_ZEROPOINT = 31.4  # AB mag of 1 nJy
_ZEROPOINT_KEYS = ("MAGZP", "MAGZERO", "ZEROPT", "PHOTZP", "ZP", "MAGZPT")
_UNIT_ZEROPOINTS = {"nanomaggy": NANOMAGGY_ZEROPOINT, "nanomaggies": NANOMAGGY_ZEROPOINT, "nmgy": NANOMAGGY_ZEROPOINT,
                    "njy": NJY_ZEROPOINT}  # fmt: skip
_SURFACE_MARKERS = ("/arcsec2", "/arcsec**2", "/arcsec^2", "arcsec-2", "/sq.arcsec")


class MissingBands(AstrodetInputError):
    """The file(s) do not hold (or do not name) every band the recipe needs; ``available`` lists what they name."""

    def __init__(self, message: str, available: Sequence[str]) -> None:
        super().__init__(message)
        self.available = tuple(available)


class BandShapeMismatch(AstrodetInputError):
    """Per-band files whose (H, W) planes differ."""


@dataclass
class BandCube:
    """Bands of one image in channel order: ``data`` (C, H, W) float32 as stored; one header per band (None for
    ``.npy``), for units and the WCS."""

    data: np.ndarray
    bands: tuple[str, ...]
    headers: tuple[fits.Header | None, ...]
    source: str


# ------------------------------------------------------------------------------------------------- params


def stretch_params(stretch: str, params: Mapping[str, Any], channels: int) -> dict[str, Any]:
    """``params`` completed with the defaults of ``stretch``; unknown or missing keys and per-band lists of the
    wrong length are one-line errors naming them."""
    if stretch not in STRETCH_PARAMS:
        raise AstrodetInputError(f"image recipe: float stretch {stretch!r} is not one of {FLOAT_STRETCHES}")
    known = STRETCH_PARAMS[stretch]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise AstrodetInputError(f"image recipe: {stretch} takes params {sorted(known)}, not {unknown}")
    full = {key: params.get(key, default) for key, default in known.items()}
    missing = sorted(key for key, value in full.items() if value is REQUIRED)
    if missing:
        raise AstrodetInputError(
            f"image recipe: {stretch} needs params {missing} (per-band training-set statistics: coco_band_statistics)"
        )
    for key in ("mean", "std", "minimum"):
        value = full.get(key)
        if isinstance(value, (list, tuple)) and len(value) != channels:
            raise AstrodetInputError(f"image recipe: {stretch} {key} has {len(value)} values for {channels} bands")
    if stretch == "standardise" and not all(float(s) > 0 for s in full["std"]):
        raise AstrodetInputError(f"image recipe: standardise std must be > 0 per band, got {list(full['std'])}")
    clip = full.get("clip")
    if isinstance(clip, (list, tuple)) and (len(clip) != 2 or not float(clip[0]) < float(clip[1])):
        raise AstrodetInputError(f"image recipe: clip must be [low, high] with low < high, got {list(clip)}")
    if full["unit"] not in (None, SURFACE_UNIT):
        raise AstrodetInputError(f"image recipe: unit {full['unit']!r}: only {SURFACE_UNIT!r} (or none) is known")
    return full


# ------------------------------------------------------------------------------------------------- reading


def cube_band_names(header: fits.Header, count: int) -> list[str]:
    """Band names of a cube's planes from ``BAND1..BANDn`` (or ``FILTER1..n``); empty when the header lacks them."""
    for prefix in ("BAND", "FILTER"):
        names = [str(header.get(f"{prefix}{k}", "")).strip() for k in range(1, count + 1)]
        if all(names):
            return names
    return []


def frame_band_name(header: fits.Header) -> str:
    """The band of a single 2-D frame (header ``BAND`` or ``FILTER``; empty when neither is set)."""
    return str(header.get("BAND", header.get("FILTER", ""))).strip()


def _read_array(path: Path) -> tuple[np.ndarray, fits.Header | None]:
    if path.name.lower().endswith(FITS_SUFFIXES):
        data, header = read_fits_image(path)
    elif path.suffix.lower() == ".npy":
        try:
            data, header = np.load(path, allow_pickle=False), None
        except FileNotFoundError:
            raise UnreadableImage(path, "no such file") from None
        except (OSError, ValueError) as err:
            raise UnreadableImage(path, f"not a readable .npy array ({str(err).splitlines()[0][:200]})") from None
    else:
        raise UnreadableImage(path, "expected a FITS file (.fits, .fit, .fits.gz, .fts) or a .npy array")
    if not np.issubdtype(data.dtype, np.number) or np.issubdtype(data.dtype, np.complexfloating):
        raise UnreadableImage(path, f"pixel data of type {data.dtype} is not real numbers")
    return np.asarray(data, dtype=np.float32), header


def _planes_of_file(path: Path, names: Sequence[str] | None) -> tuple[dict[str, np.ndarray], fits.Header | None]:
    """{band: (H, W) plane} of one file: a cube (C, H, W), a 2-D frame or a .npy array."""
    data, header = _read_array(path)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise UnreadableImage(path, f"data of shape {data.shape}: expected a 2-D frame or a (C, H, W) cube")
    count = data.shape[0]
    if names:
        named = [str(n) for n in names]
    elif header is None:
        named = []
    elif count == 1:
        named = [frame_band_name(header)] if frame_band_name(header) else cube_band_names(header, 1)
    else:
        named = cube_band_names(header, count)
    if not named:
        raise MissingBands(
            f"{path}: its {count} plane(s) carry no band names: give the COCO image record's 'bands', or header "
            "BAND1..BANDn (a cube) / BAND or FILTER (a frame)",
            (),
        )
    if len(named) != count:
        raise MissingBands(f"{path}: {count} plane(s) but {len(named)} band names {named}", named)
    return dict(zip(named, data, strict=True)), header


def read_bands(
    path: str | os.PathLike[str],
    bands: Sequence[str],
    band_files: Mapping[str, str | os.PathLike[str]] | None = None,
    names: Sequence[str] | None = None,
) -> BandCube:
    """The ``bands`` (in that order) of one image as a :class:`BandCube`, read in full (a file cut short fails here).

    The image is ``band_files`` ({band: path} of 2-D frames; ``path`` is then only named in errors) or ``path``: a
    FITS cube (header BAND1..BANDn), a 2-D frame (header BAND or FILTER) or a ``.npy`` (C, H, W) array (loaded with
    ``allow_pickle=False``). ``names`` (a COCO record's ``bands``) names the planes of ``path`` in order when its
    header does not; unnamed planes are refused rather than guessed.
    """
    wanted = [str(b) for b in bands]
    planes: dict[str, np.ndarray] = {}
    headers: dict[str, fits.Header | None] = {}
    if band_files:
        for band in wanted:
            if band not in band_files:
                raise MissingBands(f"{path}: band_files name {sorted(band_files)}, not band {band}", list(band_files))
            file_planes, header = _planes_of_file(Path(band_files[band]), [band])
            planes[band], headers[band] = file_planes[band], header
    else:
        file_planes, header = _planes_of_file(Path(path), names)
        missing = [b for b in wanted if b not in file_planes]
        if missing:
            raise MissingBands(
                f"{path}: holds bands {list(file_planes)}; needed {wanted} (missing {missing})", list(file_planes)
            )
        planes = {b: file_planes[b] for b in wanted}
        headers = dict.fromkeys(wanted, header)
    shapes = {b: planes[b].shape for b in wanted}
    if len(set(shapes.values())) > 1:
        raise BandShapeMismatch(f"{path}: bands differ in shape: {shapes}")
    data = np.stack([planes[b] for b in wanted]) if wanted else np.zeros((0, 0, 0), np.float32)
    return BandCube(data, tuple(wanted), tuple(headers[b] for b in wanted), str(path))


# ------------------------------------------------------------------------------------------------- units


def _unit_text(header: fits.Header) -> str:
    return str(header.get("BUNIT", "")).strip().lower().replace(" ", "")


def is_surface_brightness(header: fits.Header) -> bool:
    """Whether BUNIT is per square arcsec (surface brightness) rather than per pixel."""
    return any(marker in _unit_text(header) for marker in _SURFACE_MARKERS)


def header_zeropoint(header: fits.Header, override: float | None = None) -> float | None:
    """AB zero point of the data (mag of 1 data unit): ``override``, a header keyword, or one implied by BUNIT."""
    if override is not None:
        return float(override)
    for key in _ZEROPOINT_KEYS:
        value = header.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return _UNIT_ZEROPOINTS.get(_unit_text(header).split("/")[0])


def pixel_area_arcsec2(header: fits.Header | None) -> float | None:
    """Area of one pixel in arcsec^2 from the header's celestial WCS; None without one."""
    if header is None:
        return None
    try:
        wcs = WCS(header, naxis=2)
    except Exception:  # astropy raises several types for malformed WCS keywords; all mean "no usable WCS"
        return None
    if not wcs.has_celestial:
        return None
    return abs(float(proj_plane_pixel_area(wcs.celestial))) * 3600.0**2


def to_unit(
    data: np.ndarray,
    header: fits.Header | None,
    unit: str | None,
    source: str,
    zeropoint: float | None = None,
    area_arcsec2: float | None = None,
) -> np.ndarray:
    """One band in ``unit`` (``None``: as stored; ``nanomaggy/arcsec2``: surface brightness in nanomaggies, from
    BUNIT, a zero point in the header or ``zeropoint``, and the pixel area of the WCS or ``area_arcsec2``)."""
    if unit is None:
        return data
    if unit != SURFACE_UNIT:
        raise AstrodetInputError(f"the model's recipe wants unit {unit!r}; only {SURFACE_UNIT!r} can be made")
    if header is None:
        raise AstrodetInputError(f"{source}: a .npy array carries no unit; the model was trained on {unit}")
    base = _unit_text(header).split("/")[0]
    if base in ("nanomaggy", "nanomaggies", "nmgy") and zeropoint is None:
        scale = 1.0
    else:
        zp = header_zeropoint(header, zeropoint)
        if zp is None:
            raise AstrodetInputError(
                f"{source}: BUNIT {header.get('BUNIT', '(none)')!r} with no zero point: the model was trained on "
                "nanomaggies; give MAGZP in the header or --zeropoint"
            )
        scale = 10.0 ** ((NANOMAGGY_ZEROPOINT - zp) / 2.5)
    data = data * scale if scale != 1.0 else data
    if is_surface_brightness(header):
        return data
    area = area_arcsec2 if area_arcsec2 is not None else pixel_area_arcsec2(header)
    if area is None:
        raise AstrodetInputError(f"{source}: per-pixel data and no celestial WCS to give the pixel area for {unit}")
    return data / area


# ------------------------------------------------------------------------------------------------- normalising


def _per_band(value: Any, channels: int) -> np.ndarray:
    """A scalar or a per-band list as a (C, 1, 1) array that broadcasts over (C, H, W)."""
    array = np.asarray(value, dtype=np.float64).reshape(-1)
    return np.broadcast_to(array, (channels,)).reshape(channels, 1, 1) if array.size == 1 else array.reshape(-1, 1, 1)


def sky_statistics(band: np.ndarray, sigma_clip: float = 3.0) -> tuple[float, float]:
    """(sky, sigma) of one band: sigma-clipped median and MAD-based standard deviation of its finite pixels."""
    finite = band[np.isfinite(band)]
    _, median, std = sigma_clipped_stats(finite, sigma=sigma_clip, maxiters=5, stdfunc="mad_std")
    return float(median), float(std)


def _asinh(data: np.ndarray, p: Mapping[str, Any]) -> np.ndarray:
    softening = float(p["softening"])
    out = np.empty_like(data, dtype=np.float64)
    for k, band in enumerate(data):
        sky, sigma = sky_statistics(band, float(p["sigma_clip"]))
        scale = softening * (sigma if sigma > 0 else 1.0)  # a constant band: 0 everywhere after the sky
        out[k] = softening * np.arcsinh((band - sky) / scale)
    return out


def lupton(data: np.ndarray, stretch: float, q: float, minimum: Any = 0.0) -> np.ndarray:
    """Lupton et al. (2004) colour-preserving asinh of any number of bands, in [0, 1] (see the module doc)."""
    shifted = data.astype(np.float64) - _per_band(minimum, len(data))
    intensity = shifted.mean(axis=0)
    stretched = LuptonAsinhStretch(stretch=stretch, Q=q)(intensity, clip=False)
    with np.errstate(invalid="ignore", divide="ignore"):  # non-finite pixels stay non-finite, set to 0 later
        ratio = np.where(intensity > 0, stretched / intensity, 0.0)
        out = np.clip(shifted * ratio, 0.0, None)
        brightest = out.max(axis=0)
        return np.where(brightest > 1.0, out / np.where(brightest > 1.0, brightest, 1.0), out)


def _zscale(data: np.ndarray, p: Mapping[str, Any]) -> np.ndarray:
    out = np.empty_like(data, dtype=np.float64)
    for k, band in enumerate(data):
        low, high = ZScaleInterval(contrast=float(p["contrast"])).get_limits(band[np.isfinite(band)])
        out[k] = (band - low) / (high - low) if high > low else np.zeros_like(band)
    return np.clip(out, 0.0, 1.0) if p["clip"] else out


def normalise(data: np.ndarray, stretch: str, params: Mapping[str, Any]) -> np.ndarray:
    """(C, H, W) data (in the recipe's unit) -> (C, H, W) float32 model input by ``stretch``; non-finite -> 0."""
    p = stretch_params(stretch, params, len(data))
    finite = np.isfinite(data)
    empty = np.flatnonzero(~finite.reshape(len(data), -1).any(axis=1))
    if empty.size:
        raise AstrodetInputError(f"band {empty[0] + 1} of {len(data)} has no finite pixel")
    if stretch == "asinh":
        out = _asinh(data, p)
    elif stretch == "lupton":
        out = lupton(data, float(p["stretch"]), float(p["Q"]), p["minimum"])
    elif stretch == "zscale":
        out = _zscale(data, p)
    elif stretch == "standardise":
        out = (data - _per_band(p["mean"], len(data))) / _per_band(p["std"], len(data))
    else:
        out = data.astype(np.float64)
    clip = p.get("clip")
    if isinstance(clip, (list, tuple)):
        out = np.clip(out, float(clip[0]), float(clip[1]))
    out[~np.isfinite(out) | ~finite] = 0.0
    return out.astype(np.float32)


def prepare(
    cube: BandCube, recipe: ImageRecipe, zeropoint: float | None = None, area_arcsec2: float | None = None
) -> np.ndarray:
    """The model input of ``cube`` by a ``float`` recipe: (H, W, C) float32 in the data's array frame.

    Training (both frameworks) and ``astrodet predict`` call this one function, so their tensors are the same.
    """
    if tuple(cube.bands) != tuple(recipe.bands):
        raise AstrodetInputError(f"{cube.source}: bands {list(cube.bands)}, the recipe takes {list(recipe.bands)}")
    unit = recipe.params.get("unit")
    data = np.stack(
        [
            to_unit(band, header, unit, cube.source, zeropoint, area_arcsec2)
            for band, header in zip(cube.data, cube.headers, strict=True)
        ]
    )
    try:
        out = normalise(data, recipe.stretch, recipe.params)
    except AstrodetInputError as err:
        raise AstrodetInputError(f"{cube.source}: {err}") from None
    return np.ascontiguousarray(out.transpose(1, 2, 0))


def read_record(
    file_name: str | os.PathLike[str],
    recipe: ImageRecipe,
    band_files: Mapping[str, str | os.PathLike[str]] | None = None,
    record_bands: Sequence[str] | None = None,
) -> np.ndarray:
    """A COCO image record's pixels (``file_name`` and optional ``band_files`` / ``bands``, paths resolved) as the
    model input of ``recipe``: (H, W, C) float32. What the Detectron2 mapper and mmdet's LoadFitsImage call."""
    return prepare(read_bands(file_name, recipe.bands, band_files, record_bands), recipe)


# ------------------------------------------------------------------------------------------------- statistics


def band_statistics(cubes: Iterable[np.ndarray]) -> dict[str, list[float]]:
    """Per-band mean and standard deviation over the finite pixels of (C, H, W) arrays (one pass, float64 sums):
    the ``standardise`` recipe's ``mean`` and ``std``."""
    total = total_sq = count = None
    for data in cubes:
        values = np.asarray(data, dtype=np.float64).reshape(len(data), -1)
        finite = np.isfinite(values)
        clean = np.where(finite, values, 0.0)
        sums, squares, n = clean.sum(axis=1), (clean**2).sum(axis=1), finite.sum(axis=1)
        if total is None:
            total, total_sq, count = sums, squares, n
        elif len(sums) != len(total):
            raise AstrodetInputError(f"band_statistics: an image of {len(sums)} bands among {len(total)}-band ones")
        else:
            total, total_sq, count = total + sums, total_sq + squares, count + n
    if total is None or not (count > 0).all():
        raise AstrodetInputError("band_statistics: no finite pixel in some band (or no image at all)")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}


def coco_band_statistics(
    json_file: str | os.PathLike[str], bands: Sequence[str], unit: str | None = None
) -> dict[str, list[float]]:
    """``{"mean": [...], "std": [...]}`` per band over every image of a COCO file (a training split), in ``unit``:
    paste them into a ``standardise`` recipe's params."""
    from astrodet.data.coco import load_coco, resolve_image_path

    data = load_coco(json_file)

    def cubes() -> Iterable[np.ndarray]:
        for image in data["images"]:
            band_files = {b: resolve_image_path(json_file, p, data.get("info")) for b, p in
                          (image.get("band_files") or {}).items()}  # fmt: skip
            path = resolve_image_path(json_file, image["file_name"], data.get("info"))
            cube = read_bands(path, bands, band_files or None, image.get("bands"))
            yield np.stack([to_unit(b, h, unit, cube.source) for b, h in zip(cube.data, cube.headers, strict=True)])

    return band_statistics(cubes())


# ------------------------------------------------------------------------------------------------- previews


def preview_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """An 8-bit (H, W, 3) picture of a FITS/NumPy image for report grids, in the array frame of its boxes.

    Three of its C planes (reddest to bluest in channel order: C - 1 - (C - 1) // 4, (C - 1) // 2, (C - 1) // 4;
    i, r, g of ugriz) each through z-scale; one plane is shown grey. Only for looking at: models never see it.
    """
    data, _ = _read_array(Path(path))
    planes = data if data.ndim == 3 else data[None]
    last = len(planes) - 1
    chosen = [planes[last - last // 4], planes[last // 2], planes[last // 4]]
    scaled = np.stack([_zscale(plane[None], {"contrast": 0.25, "clip": True})[0] for plane in chosen], axis=-1)
    return np.nan_to_num(scaled * 255.0 + 0.5, nan=0.0).astype(np.uint8)
