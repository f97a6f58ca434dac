"""The catalogue ``astrodet predict`` writes and ``astrodet evaluate`` reads: columns, provenance, file formats.

One row per detection (detection models) or per input (classifiers), written by extension through astropy (FITS,
ECSV, CSV) or astropy + pyarrow (Parquet), atomically: a temporary file in the same folder renamed over the target,
so a reader never sees half a catalogue. Provenance (astrodet version, config, weights hash, framework, recipe,
date, post-processing settings, precision, engine, input counts) goes in the table's ``meta``: as it is in ECSV
and Parquet, as JSON strings in FITS header cards (upper-case keys), as ``# key: json`` comment lines at the top of
a CSV. :func:`read_catalogue` reads all four back with the meta as written.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from astrodet.errors import AstrodetInputError
from astrodet.io import atomic_path

FORMATS = {".fits": "fits", ".ecsv": "ascii.ecsv", ".csv": "ascii.csv", ".parquet": "parquet"}
_POSITION = ("x_min", "y_min", "x_max", "y_max", "x", "y")
DETECTION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("file", "str"),
    ("image_index", "int64"),
    ("object_index", "int64"),
    ("class_name", "str"),
    ("class_id", "int64"),
    ("score", "float64"),
    *((name, "float64") for name in _POSITION),
    ("ra", "float64"),
    ("dec", "float64"),
    ("size_arcsec", "float64"),
)
PHOTOMETRY_PREFIXES = ("flux_", "flux_err_", "mag_")


def catalogue_format(path: str | os.PathLike[str]) -> str:
    """The astropy format of a catalogue path, from its extension; a one-line error for any other."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise AstrodetInputError(
            f"--out {path}: unknown catalogue extension {suffix or '(none)'!r}; use .fits, .ecsv, .csv or .parquet"
        )
    return FORMATS[suffix]


def rejects_path(out: str | os.PathLike[str]) -> Path:
    """``<stem>_rejects.csv`` beside the catalogue."""
    path = Path(out)
    return path.with_name(f"{path.stem}_rejects.csv")


def detection_columns(photometry_bands: Sequence[str]) -> list[tuple[str, str]]:
    """The detection catalogue's columns and dtypes; photometry columns per band for runs with FITS inputs."""
    columns = list(DETECTION_COLUMNS)
    for band in photometry_bands:
        columns += [(f"{prefix}{band}", "float64") for prefix in PHOTOMETRY_PREFIXES]
    return columns


def classification_columns(classes: Sequence[str], vote_columns: Sequence[str] = ()) -> list[tuple[str, str]]:
    """One row per input: the argmax class, its probability, every class probability and vote fraction."""
    columns = [
        ("file", "str"),
        ("image_index", "int64"),
        ("class_name", "str"),
        ("class_id", "int64"),
        ("score", "float64"),
        ("ra", "float64"),
        ("dec", "float64"),
    ]
    columns += [(f"p_{name}", "float64") for name in classes]
    columns += [(f"vote_{name}", "float64") for name in vote_columns]
    return columns


def build_table(columns: Sequence[tuple[str, str]], data: Mapping[str, Sequence[Any]], meta: Mapping[str, Any]):
    """An astropy Table with the given column order and dtypes (also when it has no rows)."""
    from astropy.table import Table

    table = Table()
    for name, dtype in columns:
        values = data.get(name, [])
        table[name] = np.asarray(values, dtype=str) if dtype == "str" else np.asarray(values, dtype=dtype)
    table.meta.update(meta)
    return table


def _json_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, (str, int, float, bool)) else json.dumps(v) for k, v in meta.items()}


def write_catalogue(table, path: str | os.PathLike[str]) -> Path:
    """Write ``table`` by the extension of ``path``, atomically, with its meta in the form each format keeps."""
    target = Path(path)
    fmt = catalogue_format(target)
    out = table.copy(copy_data=False)
    with atomic_path(target) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FITS: HIERARCH cards for long keys, expected here
        if fmt == "fits":
            out.meta = _json_meta(table.meta)
            out.write(tmp, format="fits", overwrite=True)
        elif fmt == "ascii.csv":
            out.meta = {"comments": [f"{k}: {json.dumps(v)}" for k, v in table.meta.items()]}
            out.write(tmp, format="ascii.csv", overwrite=True, comment="# ")
        else:
            out.write(tmp, format=fmt, overwrite=True)
    return target


def _parse_json(value: Any) -> Any:
    """A meta value FITS stored as JSON text (dicts, lists, None) back as itself."""
    if value == "null":
        return None
    if isinstance(value, str) and value[:1] in "{[":
        with contextlib.suppress(ValueError):
            return json.loads(value)
    return value


def read_catalogue(path: str | os.PathLike[str]):
    """Read a catalogue written by :func:`write_catalogue` (any of the four formats), or a finished Parquet dataset
    folder (``--parquet-dataset``), meta keys lower-case."""
    from astropy.table import Table

    source = Path(path)
    fmt = catalogue_format(source)
    if fmt == "parquet" and source.is_dir():
        from astrodet.inference.parquet_dataset import read_dataset

        table = read_dataset(source)
    elif not source.is_file():
        raise AstrodetInputError(f"{source}: no such catalogue")
    elif fmt == "parquet":
        table = _read_parquet(source)
    elif fmt == "ascii.csv":
        table = Table.read(source, format="ascii.csv", comment="#")
        comments = table.meta.pop("comments", [])
        for line in comments:
            key, _, value = line.partition(": ")
            with contextlib.suppress(ValueError):
                table.meta[key.strip()] = json.loads(value)
    else:
        table = Table.read(source, format=fmt)
    table.meta = {str(k).lower(): _parse_json(v) for k, v in table.meta.items() if str(k).upper() != "EXTNAME"}
    return table


def parquet_meta(schema) -> dict[str, Any]:
    """The table meta astropy wrote into a Parquet schema (its ``table_meta_yaml``); empty when there is none."""
    from astropy.table.meta import get_header_from_yaml

    metadata = schema.metadata or {}
    if b"table_meta_yaml" not in metadata:
        return {}
    header = get_header_from_yaml(metadata[b"table_meta_yaml"].decode("utf-8").split("\n"))
    return dict(header.get("meta", {}))


def arrow_to_table(arrow, meta: Mapping[str, Any]):
    """An astropy Table of an Arrow table's columns (text as numpy str), with ``meta``."""
    from astropy.table import Table

    table = Table({name: np.asarray(arrow.column(name).to_numpy(zero_copy_only=False)) for name in arrow.column_names})
    for name in table.colnames:
        if table[name].dtype == object:
            table[name] = np.asarray(table[name], dtype=str)
    table.meta.update(meta)
    return table


def _read_parquet(path: Path):
    """Parquet through pyarrow (astropy's own reader needs pandas), with astropy's YAML meta decoded."""
    import pyarrow.parquet as pq

    arrow = pq.read_table(path)
    return arrow_to_table(arrow, parquet_meta(arrow.schema))
