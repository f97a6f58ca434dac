"""The tables of ``astrodet convert clumps``: reading the clump catalogue and the galaxies table, picking their
columns, and parsing a row's galaxy id, position, class and size.

Why apart from the conversion: the same catalogue arrives as CSV from one team and as a FITS table from another
(Adams et al. 2022 publish FITS); both become rows of plain values with the row number a user sees, and every
value a row needs is parsed here into a number or a one-line reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astrodet.data.cuts import Cut, as_float
from astrodet.data.rejects import RejectsLedger
from astrodet.data.skyboxes import parse_angle
from astrodet.data.tables import read_table
from astrodet.data.toolkit import basename, cell_value, pick_column, read_csv
from astrodet.errors import AstrodetInputError

# accepted column names (lower case), first present wins; an explicit --*-col names the column exactly
ID_ALIASES = ("local_ids", "local_id", "galaxy_id", "id", "objid", "obj_id", "dr7objid", "galaxy")
RA_ALIASES = ("clump_ra", "ra", "ra_deg", "raj2000", "ra_icrs")
DEC_ALIASES = ("clump_dec", "dec", "dec_deg", "dej2000", "decj2000", "dec_icrs")
LABEL_ALIASES = ("label", "category", "class")
ODD_ALIASES = ("unusual", "odd", "is_odd", "odd_flag", "unusual_flag")
FWHM_ALIASES = ("psf_fwhm_arcsec", "psf_fwhm_r_arcsec", "psf_fwhm", "fwhm_arcsec", "seeing_arcsec")
SCALE_ALIASES = ("pixel_scale", "pixel_scale_arcsec", "pixscale", "pix_scale", "arcsec_per_pixel", "scale")
FWHM_PX_ALIASES = ("psf_fwhm_px",)
FILE_ALIASES = ("filename", "file_name", "file", "png", "image_file")

CLUMP, ODD = 1, 2
_LABEL_TEXT = {"1": CLUMP, "clump": CLUMP, "clumpy": CLUMP, "2": ODD, "odd": ODD, "odd_clump": ODD, "clumpy, odd": ODD}
_TRUE = ("1", "true", "t", "yes", "y")
_FALSE = ("0", "false", "f", "no", "n")


@dataclass
class Rows:
    """A table as rows of plain values (None: a malformed line), with each row's number and text for the report."""

    path: Path
    columns: list[str]
    rows: list[dict[str, Any] | None]
    numbers: list[int]
    texts: list[dict[str, str]]
    widths: list[int]  # fields on each line (a malformed line has more or fewer than columns)

    def column(self, aliases: Sequence[str], given: str | None, what: str, required: bool = False) -> str | None:
        """The name of a column: ``given`` exactly (an error if absent), else the first alias present."""
        index = pick_column(self.columns, aliases, given, where=str(self.path))
        if index is None and required:
            raise AstrodetInputError(
                f"{self.path}: no {what} column (tried {', '.join(aliases)}); name it with the option, "
                f"columns: {', '.join(self.columns)}"
            )
        return self.columns[index] if index is not None else None


def read_rows(path: Path) -> Rows:
    """CSV through :func:`astrodet.data.toolkit.read_csv` (a line with the wrong field count is one malformed
    row, not a failed file); FITS, VOTable, ECSV and text tables through :func:`astrodet.data.tables.read_table`."""
    if path.name.lower().endswith(".csv"):
        table = read_csv(path)
        rows: list[dict[str, Any] | None] = []
        for record in table.rows:
            ok = len(record) == len(table.header)
            rows.append({h: cell_value(v) for h, v in zip(table.header, record, strict=False)} if ok else None)
        texts = [table.values(i) for i in range(len(table.rows))]
        return Rows(path, table.header, rows, table.numbers, texts, [len(r) for r in table.rows])
    cat = read_table(path)
    return Rows(path, cat.columns, list(cat.rows), cat.numbers, cat.raw, [len(cat.columns)] * len(cat.rows))


def id_text(value: Any) -> str:
    """A galaxy id as the key both tables and file names share: integers without '.0', text stripped."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "" if value is None else str(value).strip()


def parse_label(value: Any, mode: str) -> int | None:
    """Category id (1 clump, 2 odd clump) from a label cell (``mode='label'``: 1/2, clump/odd_clump/odd, Clump
    Scout's clumpy / 'clumpy, odd') or an odd flag (``mode='odd'``: 1/0, true/false, yes/no); None: unknown."""
    text = str(value).strip().lower() if value is not None else ""
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    if mode == "label":
        return _LABEL_TEXT.get(text)
    if isinstance(value, bool):
        return ODD if value else CLUMP
    return ODD if text in _TRUE else CLUMP if text in _FALSE else None


def position(row: dict[str, Any], ra_col: str, dec_col: str) -> tuple[float, float] | tuple[str, str]:
    """(ra, dec) in degrees, or (reason, message) naming the field."""
    for name in (ra_col, dec_col):
        if row.get(name) is None or (isinstance(row[name], float) and math.isnan(row[name])):
            return "missing_value", f"{name} is empty"
    ra = parse_angle(row[ra_col], "ra")
    if ra is None:
        return "bad_coordinates", f"{ra_col} must be degrees in [0, 360] or hh:mm:ss, got {row[ra_col]!r}"
    dec = parse_angle(row[dec_col], "dec")
    if dec is None:
        return "bad_coordinates", f"{dec_col} must be degrees in [-90, 90] or dd:mm:ss, got {row[dec_col]!r}"
    return ra, dec


@dataclass
class Galaxy:
    """One usable row of the galaxies table."""

    galaxy_id: str
    number: int  # its row in the galaxies table
    file_name: str | None = None
    ra: float | None = None
    dec: float | None = None
    pixel_scale: float | None = None
    fwhm_arcsec: float | None = None


@dataclass
class GalaxyTable:
    """The galaxies table: usable galaxies by id, and why each other id was rejected (reason, message)."""

    path: Path
    galaxies: dict[str, Galaxy]
    rejected: dict[str, tuple[str, str]]
    rows_in: int


def read_galaxies(
    path: Path, id_col: str | None, scale_col: str | None, cuts: Sequence[Cut], ledger: RejectsLedger
) -> GalaxyTable:
    """Read the galaxies table: id, optional filename, centre RA/Dec, pixel scale (arcsec/px) and PSF FWHM
    (``psf_fwhm_arcsec``, or ``psf_fwhm_px`` times the table's pixel scale); rows failing ``cuts`` are rejected
    (e.g. ``alignment_z > 3``). Each bad row is recorded in ``ledger`` with its reason."""
    table = read_rows(path)
    col = {
        "id": table.column(ID_ALIASES, id_col, "galaxy id", required=True),
        "file": table.column(FILE_ALIASES, None, "file"),
        "ra": table.column(("ra", "ra_deg", "raj2000", "ra_icrs"), None, "RA"),
        "dec": table.column(("dec", "dec_deg", "dej2000", "decj2000", "dec_icrs"), None, "Dec"),
        "scale": table.column(SCALE_ALIASES, scale_col, "pixel scale"),
        "fwhm": table.column(FWHM_ALIASES, None, "PSF FWHM"),
        "fwhm_px": table.column(FWHM_PX_ALIASES, None, "PSF FWHM in px"),
    }
    for cut in cuts:
        table.column((), cut.column, "cut")
    result = GalaxyTable(path, {}, {}, len(table.rows))
    seen: dict[str, int] = {}
    for i, row in enumerate(table.rows):
        number, texts = table.numbers[i], table.texts[i]

        def reject(reason: str, message: str, galaxy: str = "", number: int = number, texts=texts) -> None:
            ledger.add(path, number, reason, message, texts)
            if galaxy and galaxy not in result.rejected:
                result.rejected[galaxy] = (reason, f"{path.name} row {number}: {message}")

        if row is None:
            reject("malformed_row", f"expected {len(table.columns)} fields, got {table.widths[i]}")
            continue
        galaxy = id_text(row[col["id"]])
        if not galaxy:
            reject("missing_value", f"{col['id']} is empty")
            continue
        if galaxy in seen:
            reject("duplicate", f"{col['id']} {galaxy} already in row {seen[galaxy]}")
            continue
        seen[galaxy] = number
        values, problem = _galaxy_values(row, col)
        if problem:
            reject("bad_value", problem, galaxy)
            continue
        failed = next(((cut, why) for cut in cuts if (why := cut.check(row.get(cut.column))) is not None), None)
        if failed is not None:
            reject(failed[0].reason, failed[1], galaxy)
            continue
        file_name = basename(str(row[col["file"]])) if col["file"] and row[col["file"]] is not None else None
        result.galaxies[galaxy] = Galaxy(galaxy, number, file_name, **values)
    return result


def _galaxy_values(row: dict[str, Any], col: dict[str, str | None]) -> tuple[dict[str, float | None], str]:
    """Centre, pixel scale and FWHM of a galaxies row (None where the table has no value), or a problem."""
    values: dict[str, float | None] = {"ra": None, "dec": None, "pixel_scale": None, "fwhm_arcsec": None}
    for key, name in (("ra", col["ra"]), ("dec", col["dec"])):
        if name is not None and row.get(name) is not None:
            values[key] = parse_angle(row[name], key)
            if values[key] is None:
                return values, f"{name} must be an angle in degrees ({key}), got {row[name]!r}"
    positive = (("pixel_scale", col["scale"], "arcsec/px"), ("fwhm_arcsec", col["fwhm"], "arcsec"))
    for key, name, unit in (*positive, ("fwhm_px", col["fwhm_px"], "px")):
        if name is None or row.get(name) is None:
            continue
        number = as_float(row[name])
        if number is None or number <= 0:
            return values, f"{name} must be a positive number of {unit}, got {row[name]!r}"
        if key == "fwhm_px":
            if values["fwhm_arcsec"] is None and values["pixel_scale"] is not None:
                values["fwhm_arcsec"] = number * values["pixel_scale"]
        else:
            values[key] = number
    return values, ""
