"""Catalogue readers for the classification converters: any astropy table, and the Perseus Cluster Catalogue text.

Why one shape: the converters walk rows of plain Python values (float, int, str or None), so every reader (astropy's
CSV/FITS/VOTable/ECSV/ASCII readers and the headerless PCC export, which astropy cannot split because its class
text contains spaces) produces a :class:`Catalog`, with each row's number in the source file for the rejects report
and the row's text for file-name patterns. Row numbers: line numbers for headerless text; data row + 1 (the header
is row 1) for text tables; the 1-based row index for FITS and VOTable tables.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from astrodet.data.cuts import as_float
from astrodet.data.rejects import RejectsLedger
from astrodet.data.toolkit import read_text
from astrodet.errors import AstrodetInputError

PCC_NUMERIC = 15

# One PCC line: 'N/A', PCC id, RA, Dec, 15 numbers or N/A, class text [+ 2+ spaces + nucleation note], stamp URL.
_PCC_RE = re.compile(
    r"^\s*(?P<flag>\S+)\s+(?P<pcc_id>PCC-\d+)\s+(?P<ra>\S+)\s+(?P<dec>\S+)\s+"
    rf"(?P<nums>(?:\S+\s+){{{PCC_NUMERIC - 1}}}\S+)\s+(?P<tail>.*?)(?:\s+(?P<url>https?://\S+))?\s*$"
)


@dataclass
class Catalog:
    """A catalogue as rows of plain values (float, int, str or None), with each row's number in the source file."""

    path: Path
    columns: list[str]
    rows: list[dict[str, Any]]
    numbers: list[int]
    raw: list[dict[str, str]]  # the text of each value, as a name pattern sees it
    rows_in: int  # rows read, including those the reader rejected
    ledger: RejectsLedger = field(default_factory=RejectsLedger)


def _is_missing_token(text: str) -> bool:
    return text.strip().upper() in ("N/A", "NA", "NAN", "NULL", "--", "")


def read_pcc(path: Path, numeric_columns: Sequence[str] | None = None) -> Catalog:
    """Parse the Perseus Cluster Catalogue text export line by line; unparseable lines become rejects."""
    names = list(numeric_columns or [f"pcc_c{i + 1}" for i in range(PCC_NUMERIC)])
    if len(names) != PCC_NUMERIC:
        raise AstrodetInputError(f"pcc format: numeric_columns must name {PCC_NUMERIC} columns, got {len(names)}")
    columns = ["flag", "pcc_id", "ra", "dec", *names, "pcc_class", "pcc_note", "url"]
    lines = read_text(path, "catalogue").splitlines()
    cat = Catalog(path, columns, [], [], [], 0)
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cat.rows_in += 1
        match = _PCC_RE.match(line)
        problem = "" if match else "expected: N/A, PCC id, RA, Dec, 15 numbers or N/A, class text, stamp URL"
        values: dict[str, Any] = {}
        raw: dict[str, str] = {}
        if match:
            raw = {"flag": match["flag"], "pcc_id": match["pcc_id"], "ra": match["ra"], "dec": match["dec"]}
            raw.update(zip(names, match["nums"].split(), strict=True))
            parts = [p for p in re.split(r"\s{2,}", match["tail"].strip()) if p]
            raw["pcc_class"] = parts[0] if parts else ""
            raw["pcc_note"] = " ".join(parts[1:])
            raw["url"] = match["url"] or ""
            for key in ("ra", "dec", *names):
                text = raw[key]
                if _is_missing_token(text):
                    values[key] = None
                    continue
                parsed = as_float(text)
                if parsed is None:
                    problem = f"{key}: {text!r} is neither a number nor N/A"
                    break
                values[key] = parsed
            if not raw["pcc_class"]:
                problem = "no class text before the URL"
        if problem:
            cat.ledger.add(path, number, "malformed_line", problem, {"line": line.strip()})
            continue
        for key in ("flag", "pcc_id", "pcc_class", "pcc_note", "url"):
            values[key] = raw[key] or None
        cat.rows.append(values)
        cat.raw.append(raw)
        cat.numbers.append(number)
    return cat


def _plain(value: Any) -> Any:
    """A table cell as a JSON-able Python value; masked / non-finite -> None."""
    if value is None or np.ma.is_masked(value):
        return None
    if isinstance(value, bytes | np.bytes_):
        value = value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return value.strip() or None
    return value


def _astropy_format(path: Path, fmt: str | None) -> str:
    if fmt:
        return fmt
    name = path.name.lower()
    for suffixes, guess in (
        ((".csv",), "ascii.csv"),
        ((".ecsv",), "ascii.ecsv"),
        ((".fits", ".fit", ".fits.gz"), "fits"),
        ((".vot", ".xml", ".votable"), "votable"),
    ):
        if name.endswith(suffixes):
            return guess
    return "ascii"  # astropy guesses among its ASCII readers (whitespace, fixed-width, SExtractor, ...)


def read_table(path: Path, fmt: str | None = None, numeric_columns: Sequence[str] | None = None) -> Catalog:
    """Read any catalogue astrodet accepts; ``fmt='pcc'`` selects the Perseus text parser."""
    if fmt == "pcc":
        return read_pcc(path, numeric_columns)
    from astropy.table import Table

    resolved = _astropy_format(path, fmt)
    binary = resolved in ("fits", "votable")
    if binary:
        if path.is_dir():
            raise AstrodetInputError(f"{path}: is a folder, expected a catalogue")
        if not path.is_file():
            raise AstrodetInputError(f"{path}: no such catalogue")
    else:
        read_text(path, "catalogue")  # a missing file, a folder or non-UTF-8 text: named by line, not byte offset
    try:
        table = Table.read(path, format=resolved)
    except Exception as err:  # astropy raises many types for unreadable input; all mean "not this format"
        detail = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        raise AstrodetInputError(f"{path}: astropy cannot read it as a table ({detail}); pass --format") from None
    cat = Catalog(path, list(table.colnames), [], [], [], len(table))
    for i, row in enumerate(table):
        values = {name: _plain(row[name]) for name in table.colnames}
        cat.rows.append(values)
        cat.raw.append({k: "" if v is None else str(v) for k, v in values.items()})
        cat.numbers.append(i + 1 if binary else i + 2)
    return cat
