"""What ``astrodet predict`` reads: the command line's inputs turned into an ordered list of images to predict on.

Why a module of its own: inputs come mixed (folders, globs, PNG/JPEG cutouts, COCO files, FITS frames, per-band
FITS files and cubes) and the order must be the same on every run, so that a resumed run's chunks and
``image_index`` mean the same images. Problems the user must fix before anything runs (a path that does not exist, a
glob that matches nothing, an unreadable ``--meta`` table) are :class:`AstrodetInputError`; problems of one image
are found later and go to the rejects table.

Per-band FITS files are grouped into one input: ``<stem>_<band>.fits`` files (the simulator's naming) by their stem,
or a path with a ``{band}`` placeholder (globs allowed elsewhere in it: ``fields/*_{band}.fits``). A group's
``file`` in the catalogue is its pattern, e.g. ``fits/100030000000_{band}.fits``.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from astrodet.data.coco import load_coco, resolve_image_path
from astrodet.data.imaging import FITS_SUFFIXES
from astrodet.data.tables import read_table
from astrodet.errors import AstrodetInputError

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg")
BAND_FIELD = "{band}"
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class SkyHint:
    """Where an image's centre is on the sky, its pixel scale and PSF FWHM (arcsec, for ``--match-psf``), from
    ``--meta`` or a COCO file."""

    ra: float
    dec: float
    pixel_scale: float | None
    psf_fwhm: float | None = None


@dataclass(frozen=True)
class InputUnit:
    """One image to predict on: a picture, a single FITS file (frame or cube), or a group of per-band FITS files."""

    file: str  # as the catalogue names it: the path as given, or the group's {band} pattern
    kind: str  # "picture" | "fits"
    band_files: tuple[tuple[str, str], ...] = ()  # per-band group: (band, path); empty for one file
    sky: SkyHint | None = None
    path: str = ""  # the file to open (pictures, single FITS)

    def describe(self) -> dict[str, object]:
        """What identifies this input in the resume manifest."""
        sky = [self.sky.ra, self.sky.dec, self.sky.pixel_scale] if self.sky else None
        return {"file": self.file, "kind": self.kind, "bands": [b for b, _ in self.band_files], "sky": sky}


@dataclass
class MetaTable:
    """``--meta``: each file's centre RA/Dec and pixel scale (columns filename, ra, dec, pixel_scale)."""

    path: Path
    by_path: dict[str, SkyHint] = field(default_factory=dict)
    by_name: dict[str, SkyHint | None] = field(default_factory=dict)  # None: the base name is ambiguous

    def lookup(self, file: str) -> SkyHint | None:
        resolved = os.path.realpath(file)
        if resolved in self.by_path:
            return self.by_path[resolved]
        return self.by_name.get(os.path.basename(file))


_META_ALIASES = {
    "filename": ("filename", "file_name", "file", "path"),
    "ra": ("ra", "ra_deg", "raj2000", "ra_icrs"),
    "dec": ("dec", "dec_deg", "dej2000", "dec_icrs"),
    "pixel_scale": ("pixel_scale", "pixel_scale_arcsec", "pixscale", "arcsec_per_pixel"),
    "psf_fwhm": ("psf_fwhm", "psf_fwhm_arcsec", "seeing"),
}


def read_meta(path: str | os.PathLike[str]) -> MetaTable:
    """Read ``--meta``; a missing column or a bad value is a one-line error naming the table, row and column."""
    table_path = Path(path)
    catalog = read_table(table_path)
    lower = {c.lower(): c for c in catalog.columns}
    columns: dict[str, str | None] = {}
    for name, aliases in _META_ALIASES.items():
        columns[name] = next((lower[a] for a in aliases if a in lower), None)
    missing = [n for n in ("filename", "ra", "dec") if columns[n] is None]
    if missing:
        raise AstrodetInputError(
            f"--meta {table_path}: no column for {', '.join(missing)} (expected filename, ra, dec[, pixel_scale]; "
            f"found {', '.join(catalog.columns)})"
        )
    meta = MetaTable(table_path)
    for row, number in zip(catalog.rows, catalog.numbers, strict=True):
        name = row[columns["filename"]]
        if name is None:
            continue
        hint = SkyHint(
            _meta_number(row, columns["ra"], table_path, number, 0.0, 360.0),
            _meta_number(row, columns["dec"], table_path, number, -90.0, 90.0),
            _meta_scale(row, columns["pixel_scale"], table_path, number),
            _meta_scale(row, columns["psf_fwhm"], table_path, number, "PSF FWHM"),
        )
        meta.by_path[os.path.realpath(table_path.parent / str(name))] = hint
        base = os.path.basename(str(name))
        meta.by_name[base] = hint if base not in meta.by_name or meta.by_name[base] == hint else None
    return meta


def _meta_number(row: dict, column: str | None, path: Path, number: int, low: float, high: float) -> float:
    value = row.get(column) if column else None
    try:
        number_value = float(value)
    except (TypeError, ValueError):
        where = f"--meta {path}: row {number}, column {column}"
        raise AstrodetInputError(f"{where}: expected a number, got {value!r}") from None
    if not low <= number_value <= high:
        raise AstrodetInputError(f"--meta {path}: row {number}, column {column}: {number_value} not in [{low}, {high}]")
    return number_value


def _meta_scale(row: dict, column: str | None, path: Path, number: int, what: str = "pixel scale") -> float | None:
    if column is None or row.get(column) is None:
        return None
    value = _meta_number(row, column, path, number, 0.0, float("inf"))
    if value <= 0:
        raise AstrodetInputError(f"--meta {path}: row {number}, column {column}: {what} must be > 0")
    return value


def _is_fits(name: str) -> bool:
    return name.lower().endswith(FITS_SUFFIXES)


def _is_picture(name: str) -> bool:
    return name.lower().endswith(PICTURE_SUFFIXES)


def _folder_files(folder: str) -> list[str]:
    names = sorted(n for n in os.listdir(folder) if _is_fits(n) or _is_picture(n))
    return [os.path.join(folder, n) for n in names]


def _band_pattern_groups(pattern: str, bands: Sequence[str]) -> list[InputUnit]:
    """Groups for a ``{band}`` pattern: each distinct match of the rest of the pattern is one input."""
    head, _, tail = pattern.partition(BAND_FIELD)
    if BAND_FIELD in tail:
        raise AstrodetInputError(f"{pattern}: {BAND_FIELD} may appear only once in an input path")
    band_regex = "|".join(re.escape(b) for b in sorted(bands, key=len, reverse=True))
    regex = re.compile(
        _glob_regex(head) + f"(?P<band>{band_regex})" + _glob_regex(tail) + r"\Z",
    )
    groups: dict[str, dict[str, str]] = {}
    for path in sorted(glob.glob(pattern.replace(BAND_FIELD, "*"))):
        match = regex.match(path)
        if match is None:
            continue
        key = path[: match.start("band")] + BAND_FIELD + path[match.end("band") :]
        groups.setdefault(key, {})[match.group("band")] = path
    if not groups:
        raise AstrodetInputError(f"{pattern}: no files match for bands {', '.join(bands)}")
    return [_group_unit(key, members, bands) for key, members in groups.items()]


def _glob_regex(text: str) -> str:
    """A glob piece as a regex without anchors (``*`` and ``?`` never cross a folder separator)."""
    translated = fnmatch.translate(text)
    body = translated[4:-3] if translated.startswith("(?s:") else translated  # strip (?s: ... )\Z
    return body.replace(".*", "[^/]*").replace("(?s:.)", "[^/]")


def _group_unit(key: str, members: dict[str, str], bands: Sequence[str]) -> InputUnit:
    ordered = tuple((b, members[b]) for b in bands if b in members)
    return InputUnit(file=key, kind="fits", band_files=ordered)


_BAND_NAME = re.compile(r"^(?P<stem>.+)_(?P<band>[^_./]+)(?P<suffix>\.fits|\.fit|\.fts|\.fits\.gz)$", re.IGNORECASE)


def _group_fits(paths: Iterable[str], bands: Sequence[str]) -> list[InputUnit]:
    """``<stem>_<band>.fits`` files with a known band become one group per stem; other FITS files stay single."""
    units: list[InputUnit] = []
    groups: dict[str, dict[str, str]] = {}
    slots: dict[str, int] = {}
    for path in paths:
        match = _BAND_NAME.match(os.path.basename(path))
        if match and match.group("band") in bands:
            folder = os.path.dirname(path)
            key = os.path.join(folder, f"{match.group('stem')}_{BAND_FIELD}{match.group('suffix')}")
            if key not in groups:
                groups[key] = {}
                slots[key] = len(units)
                units.append(InputUnit(file=key, kind="fits"))  # replaced below, keeps the first file's place
            groups[key][match.group("band")] = path
        else:
            units.append(InputUnit(file=path, kind="fits", path=path))
    for key, members in groups.items():
        units[slots[key]] = _group_unit(key, members, bands)
    return units


def _coco_units(path: str, meta: MetaTable | None) -> list[InputUnit]:
    data = load_coco(path)
    units = []
    for record in data["images"]:
        image_path = resolve_image_path(path, record["file_name"], data.get("info"))
        file = str(image_path)
        sky = None
        if record.get("ra") is not None and record.get("dec") is not None:
            scale, psf = _positive(record.get("pixel_scale")), _positive(record.get("psf_fwhm"))
            sky = SkyHint(float(record["ra"]), float(record["dec"]), scale, psf)
        elif meta is not None:
            sky = meta.lookup(file)
        kind = "fits" if _is_fits(file) else "picture"
        units.append(InputUnit(file=file, kind=kind, path=file, sky=sky))
    return units


def _positive(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def check_paths(inputs: Sequence[str]) -> None:
    """Fail fast (before a model is loaded) on an INPUT that names nothing: a path that does not exist, a glob or
    ``{band}`` pattern that matches no file."""
    if not inputs:
        raise AstrodetInputError("no INPUT given: name image files, folders, globs, COCO files or FITS files")
    for given in inputs:
        if os.path.exists(given):
            continue
        pattern = given.replace(BAND_FIELD, "*")
        if _GLOB_CHARS.search(pattern):
            if not glob.glob(pattern):
                raise AstrodetInputError(f"{given}: no files match")
        else:
            raise AstrodetInputError(f"{given}: no such file or folder")


def discover(inputs: Sequence[str], bands: Sequence[str], meta: MetaTable | None = None) -> list[InputUnit]:
    """The inputs in command-line order (folders and globs sorted), duplicates dropped; pictures get ``--meta``."""
    check_paths(inputs)
    units: list[InputUnit] = []
    for given in inputs:
        if BAND_FIELD in given:
            units.extend(_band_pattern_groups(given, bands))
            continue
        if os.path.isdir(given):
            files = _folder_files(given)
            if not files:
                raise AstrodetInputError(f"{given}: the folder holds no PNG, JPEG or FITS files")
        elif _GLOB_CHARS.search(given) and not os.path.exists(given):
            files = sorted(glob.glob(given))
            if not files:
                raise AstrodetInputError(f"{given}: no files match")
        elif os.path.isfile(given):
            files = [given]
        else:
            raise AstrodetInputError(f"{given}: no such file or folder")
        units.extend(_file_units(given, files, bands, meta))
    return _without_duplicates(units)


def _file_units(given: str, files: list[str], bands: Sequence[str], meta: MetaTable | None) -> list[InputUnit]:
    units: list[InputUnit] = []
    fits_files = [f for f in files if _is_fits(f)]
    for file in files:
        if file.lower().endswith(".json"):
            units.extend(_coco_units(file, meta))
        elif _is_picture(file):
            units.append(InputUnit(file=file, kind="picture", path=file, sky=meta.lookup(file) if meta else None))
        elif not _is_fits(file):
            raise AstrodetInputError(
                f"{file}: not an input astrodet predicts on (PNG, JPEG, FITS, or a COCO .json file)"
            )
    if fits_files:
        units.extend(_group_fits(fits_files, bands))
    return units


def _without_duplicates(units: list[InputUnit]) -> list[InputUnit]:
    seen: set[tuple] = set()
    unique = []
    for unit in units:
        key = (unit.kind, os.path.realpath(unit.path) if unit.path else unit.file, unit.band_files)
        if key not in seen:
            seen.add(key)
            unique.append(unit)
    return unique
