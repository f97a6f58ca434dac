"""Galaxy Zoo 2 tables -> whole-image classification COCO (``astrodet convert galaxyzoo``).

Two input forms, told apart by the header:

- *Kaggle vote table* (the Galaxy Challenge's ``training_solutions_rev1.csv``): ``GalaxyID`` and the 37 columns
  ``Class1.1`` .. ``Class11.6`` of cumulative vote fractions (``astrodet/models/schemas/gz2_questions.json``). The
  class is the argmax over the columns a mapping file names (default: Kim's 6 classes,
  ``astrodet/data/schemas/gz2_kim6.json``; ties go to the earlier category). Images are
  ``<images>/<GalaxyID>.jpg`` (or .jpeg/.png). All 37 fractions are kept on the annotation as ``vote_fractions``
  (order in ``info.vote_columns``) for vote regression.
- *Labelled list* (e.g. shared/data/gz2_kaggle/labels.csv): columns ``label``, ``galaxy_id`` (optional: else the
  file's stem) and ``file``. ``file`` is relative to the table's folder, or looked up by its base name in
  ``--images`` when given. Categories come from the mapping's ``labels`` (raw label -> class, in ``categories``
  order) or, without one, are the sorted distinct labels.

``--centre-crop N`` writes the central N x N crop of each image as PNG into ``<out_stem>_images/`` (Kim used 180 on
the 424 x 424 Kaggle images); without it the COCO file points at the original images.

Every data row is converted or rejected with one reason, checked in this order: malformed_row, missing_value,
bad_vote_value, no_mapped_votes / low_confidence / unknown_label, duplicate_id, missing_image, unreadable_image,
image_too_small. Row numbers count the header as row 1 (:mod:`astrodet.data.toolkit` conventions).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from astrodet import __version__
from astrodet.data.rejects import ConversionSummary, RejectsLedger
from astrodet.data.toolkit import (
    SCHEMA_DIR,
    ConversionOutputs,
    ConverterOptions,
    CsvTable,
    build_options,
    id_value,
    optional_path,
    options_from_args,
    pick_column,
    read_csv,
    read_structured,
    relative_to_json,
    safe_stem,
)
from astrodet.data.wholeimage import Record, copy_image, finish, probe_image
from astrodet.errors import AstrodetInputError
from astrodet.models.schemas import load_question_schema, vote_columns

DEFAULT_MAPPING = SCHEMA_DIR / "gz2_kim6.json"
ID_ALIASES = ("galaxyid", "galaxy_id", "id", "objid", "object_id")
LABEL_ALIASES = ("label", "class", "category")
FILE_ALIASES = ("file", "filename", "file_name", "path", "image")
KAGGLE_SUFFIXES = (".jpg", ".jpeg", ".png")
FRACTION_TOLERANCE = 1e-6


@dataclass(kw_only=True)
class GalaxyZooOptions(ConverterOptions):
    """Options of ``astrodet convert galaxyzoo`` (field names = argparse dests)."""

    images_dir: Path | None = None  # vote tables: <GalaxyID>.jpg here; lists: files looked up here by base name
    mapping: Path | None = None  # class mapping file; vote tables default to Kim's 6 classes
    centre_crop: int | None = None  # write the central N x N crop of each image as PNG
    min_fraction: float = 0.0  # vote tables: reject rows whose winning mapped fraction is below this

    def __post_init__(self) -> None:
        super().__post_init__()
        self.images_dir = optional_path(self.images_dir)
        self.mapping = optional_path(self.mapping)
        if self.images_dir is not None and not self.images_dir.is_dir():
            raise AstrodetInputError(f"--images {self.images_dir}: no such folder")
        if self.centre_crop is not None and self.centre_crop <= 0:
            raise AstrodetInputError(f"--centre-crop must be a positive number of pixels, got {self.centre_crop}")
        if not 0 <= self.min_fraction <= 1:
            raise AstrodetInputError(f"--min-fraction must be in [0, 1], got {self.min_fraction}")


@dataclass(frozen=True)
class GalaxyZooMapping:
    """A Galaxy Zoo class mapping: vote columns -> classes (argmax) and/or raw labels -> classes."""

    name: str
    categories: tuple[str, ...]
    columns: dict[str, str]
    labels: dict[str, str]
    raw: dict[str, Any]


def load_mapping(path: str | os.PathLike[str] | None = None) -> GalaxyZooMapping:
    """Read a mapping file (JSON or YAML): ``categories`` (order = COCO ids 1..K), ``columns`` and/or ``labels``."""
    file = Path(path) if path is not None else DEFAULT_MAPPING
    data = read_structured(file, "mapping file")
    if not isinstance(data, dict):
        raise AstrodetInputError(f"{file}: expected a mapping of keys (categories, columns, labels)")
    categories = data.get("categories")
    names = isinstance(categories, list) and all(isinstance(c, str) and c for c in categories)
    if not names or not categories or len(set(categories)) != len(categories):
        raise AstrodetInputError(f"{file}: 'categories' must be a list of distinct class names")
    for key in ("columns", "labels"):
        if not isinstance(data.get(key) or {}, dict):
            raise AstrodetInputError(f"{file}: '{key}' must map names to class names, got {type(data[key]).__name__}")
    columns = {str(k): v for k, v in (data.get("columns") or {}).items()}
    labels = {str(k): v for k, v in (data.get("labels") or {}).items()}
    for where, values in (("columns", columns), ("labels", labels)):
        unknown = sorted({str(v) for v in values.values()} - set(categories))
        if unknown:
            raise AstrodetInputError(f"{file}: '{where}' maps to {unknown}, which are not in 'categories'")
    bad = sorted(set(columns) - set(vote_columns()))
    if bad:
        raise AstrodetInputError(f"{file}: 'columns' names {bad}, which are not Galaxy Zoo 2 vote columns")
    if not columns and not labels:
        raise AstrodetInputError(f"{file}: give 'columns' (vote table -> class) and/or 'labels' (label -> class)")
    return GalaxyZooMapping(str(data.get("name", file.stem)), tuple(categories), columns, labels, data)


class _Rows:
    """The table and its rejects ledger, shared by both table forms."""

    def __init__(self, table: CsvTable) -> None:
        self.table = table
        self.ledger = RejectsLedger()

    def reject(self, i: int, reason: str, message: str) -> None:
        self.ledger.add(self.table.path, self.table.numbers[i], reason, message, self.table.values(i))


@dataclass
class _Candidate:
    """A row that passed the table checks; its image is checked next."""

    index: int
    key: str
    category: str
    image: Path
    image_fields: dict[str, Any]
    annotation_fields: dict[str, Any]


def _kaggle_candidates(
    ctx: _Rows, mapping: GalaxyZooMapping, images_dir: Path, min_fraction: float
) -> list[_Candidate]:
    header = ctx.table.header
    columns = vote_columns()
    missing = [c for c in columns if c not in header]
    if missing:
        raise AstrodetInputError(
            f"{ctx.table.path}: a Galaxy Zoo 2 vote table needs GalaxyID and all 37 columns Class1.1..Class11.6; "
            f"missing {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}"
        )
    if not mapping.columns:
        raise AstrodetInputError(f"mapping {mapping.name!r} has no 'columns': it cannot label a vote table")
    id_col = pick_column(header, ID_ALIASES)
    assert id_col is not None
    vote_idx = [header.index(c) for c in columns]
    mapped = list(mapping.columns.items())
    order = {c: i for i, c in enumerate(mapping.categories)}
    mapped.sort(key=lambda kv: order[kv[1]])  # ties go to the earlier category
    mapped_idx = [columns.index(c) for c, _ in mapped]
    listing = {p.name.lower(): p for p in images_dir.iterdir()}
    out: list[_Candidate] = []
    for i, row in enumerate(ctx.table.rows):
        if len(row) != len(header):
            ctx.reject(i, "malformed_row", f"expected {len(header)} fields, got {len(row)}")
            continue
        galaxy = row[id_col].strip()
        if not galaxy:
            ctx.reject(i, "missing_value", f"{header[id_col]} is empty")
            continue
        fractions = np.empty(len(columns))
        problem = ""
        for k, (j, col) in enumerate(zip(vote_idx, columns, strict=True)):
            text = row[j].strip()
            try:
                value = float(text)
            except ValueError:
                value = float("nan")
            if not (np.isfinite(value) and -FRACTION_TOLERANCE <= value <= 1 + FRACTION_TOLERANCE):
                problem = f"{col} must be a vote fraction in [0, 1], got {text!r}"
                break
            fractions[k] = min(max(value, 0.0), 1.0)
        if problem:
            ctx.reject(i, "bad_vote_value", problem)
            continue
        scores = fractions[mapped_idx]
        best = int(np.argmax(scores))
        if scores[best] <= 0:
            names = ", ".join(c for c, _ in mapped)
            ctx.reject(i, "no_mapped_votes", f"every mapped column ({names}) is 0")
            continue
        if scores[best] < min_fraction:
            message = f"winning column {mapped[best][0]} = {scores[best]:.3f} < --min-fraction {min_fraction:g}"
            ctx.reject(i, "low_confidence", message)
            continue
        image = next(
            (listing[f"{galaxy}{s}".lower()] for s in KAGGLE_SUFFIXES if f"{galaxy}{s}".lower() in listing),
            images_dir / f"{galaxy}.jpg",
        )
        votes = {
            "vote_fractions": [round(float(v), 6) for v in fractions],
            "label_column": mapped[best][0],
            "label_fraction": round(float(scores[best]), 6),
        }
        out.append(_Candidate(i, galaxy, mapped[best][1], image, {"galaxy_id": id_value(galaxy)}, votes))
    return out


def _list_candidates(
    ctx: _Rows, mapping: GalaxyZooMapping | None, images_dir: Path | None
) -> tuple[list[_Candidate], tuple[str, ...]]:
    header = ctx.table.header
    label_col, file_col, id_col = (pick_column(header, a) for a in (LABEL_ALIASES, FILE_ALIASES, ID_ALIASES))
    if label_col is None or file_col is None:
        raise AstrodetInputError(
            f"{ctx.table.path}: expected a Galaxy Zoo 2 vote table (GalaxyID, Class1.1..Class11.6) or a labelled "
            f"list (label, file[, galaxy_id]); columns: {', '.join(header)}"
        )
    labels = mapping.labels if mapping is not None else {}
    out: list[_Candidate] = []
    for i, row in enumerate(ctx.table.rows):
        if len(row) != len(header):
            ctx.reject(i, "malformed_row", f"expected {len(header)} fields, got {len(row)}")
            continue
        label, file = row[label_col].strip(), row[file_col].strip()
        galaxy = row[id_col].strip() if id_col is not None else Path(file.replace("\\", "/")).stem
        empty = [header[j] for j, v in ((label_col, label), (file_col, file)) if not v]
        if id_col is not None and not galaxy:
            empty.append(header[id_col])
        if empty:
            ctx.reject(i, "missing_value", f"{', '.join(empty)} empty")
            continue
        if labels:
            if label not in labels:
                known = ", ".join(sorted(labels))
                ctx.reject(i, "unknown_label", f"label {label!r} is not in the mapping ({known})")
                continue
            category = labels[label]
        else:
            category = label
        base = file.replace("\\", "/")
        image = images_dir / base.rsplit("/", 1)[-1] if images_dir is not None else ctx.table.path.parent / base
        out.append(_Candidate(i, galaxy, category, image, {"galaxy_id": id_value(galaxy)}, {"label_text": label}))
    categories = mapping.categories if labels and mapping is not None else tuple(sorted({c.category for c in out}))
    return out, categories


def convert_galaxyzoo(
    table: str | os.PathLike[str],
    out_json: str | os.PathLike[str],
    options: GalaxyZooOptions | None = None,
    **fields: Any,
) -> ConversionSummary:
    """Convert a Galaxy Zoo 2 vote table or labelled list into whole-image classification COCO (see module doc).

    ``options`` is a :class:`GalaxyZooOptions`, or give its fields as keywords (``centre_crop=180``, ...).
    """
    opts = build_options(GalaxyZooOptions, options, fields, "convert_galaxyzoo")
    path = Path(table)
    outputs = ConversionOutputs(
        out_json,
        opts,
        inputs=[path, opts.mapping],
        input_folders=[opts.images_dir],
        writes_images=opts.centre_crop is not None,
    )
    with outputs:
        return _convert(path, outputs, opts)


def _convert(path: Path, outputs: ConversionOutputs, opts: GalaxyZooOptions) -> ConversionSummary:
    images = opts.images_dir
    ctx = _Rows(read_csv(path))
    header = ctx.table.header
    is_votes = pick_column(header, ("galaxyid",)) is not None and any(h.startswith("Class") for h in header)
    if is_votes:
        if images is None:
            raise AstrodetInputError(f"{path}: a vote table names no files: give --images (the <GalaxyID>.jpg folder)")
        the_mapping = load_mapping(opts.mapping)
        candidates = _kaggle_candidates(ctx, the_mapping, images, opts.min_fraction)
        categories = the_mapping.categories
    else:
        the_mapping = load_mapping(opts.mapping) if opts.mapping is not None else None
        candidates, categories = _list_candidates(ctx, the_mapping, images)
    records = _records(ctx, candidates, outputs, opts.centre_crop)
    info: dict[str, Any] = {
        "description": "Galaxy Zoo 2 whole-image classification, converted by astrodet",
        "converter": "astrodet.data.galaxyzoo",
        "astrodet_version": __version__,
        "sources": {"table": str(path), "images_dir": str(images) if images is not None else None},
        "options": {
            "form": "vote_table" if is_votes else "labelled_list",
            "mapping": the_mapping.raw if the_mapping is not None else None,
            "centre_crop": opts.centre_crop,
            "min_fraction": opts.min_fraction,
            "split": opts.split,
            "seed": opts.seed,
        },
    }
    if is_votes:
        info["vote_columns"] = list(vote_columns())
        info["vote_schema"] = load_question_schema().name
    return finish(outputs, opts, records, categories, info, ctx.ledger, source=path, rows_in=len(ctx.table.rows))


def _records(
    ctx: _Rows, candidates: list[_Candidate], outputs: ConversionOutputs, centre_crop: int | None
) -> list[Record]:
    """Each candidate's image checked (decoded in full) and, with ``centre_crop``, cropped into the run's
    ``<out_stem>_images/``."""
    out = outputs.out_json
    seen: dict[str, int] = {}
    records: list[Record] = []
    for cand in candidates:
        number = ctx.table.numbers[cand.index]
        if cand.key in seen:
            ctx.reject(cand.index, "duplicate_id", f"galaxy {cand.key} already in row {seen[cand.key]}")
            continue
        seen[cand.key] = number
        reason, message, size, _ = probe_image(cand.image)
        if reason is not None or size is None:
            ctx.reject(cand.index, reason or "unreadable_image", message)
            continue
        image_fields = dict(cand.image_fields)
        file_name = relative_to_json(cand.image, out)
        if centre_crop is not None:
            if min(size) < centre_crop:
                message = f"{cand.image} is {size[0]}x{size[1]}, smaller than --centre-crop {centre_crop}"
                ctx.reject(cand.index, "image_too_small", message)
                continue
            file_name, size = copy_image(outputs, cand.image, safe_stem(cand.key), crop=centre_crop)
            image_fields["source_file_name"] = relative_to_json(cand.image, out)
        records.append(
            Record(
                key=cand.key,
                category=cand.category,
                row=number,
                file_name=file_name,
                width=int(size[0]),
                height=int(size[1]),
                image_fields=image_fields,
                annotation_fields=cand.annotation_fields,
            )
        )
    return records


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``astrodet convert galaxyzoo`` (the shared --out/--split/--seed/... come from convert.py)."""
    table_help = "Kaggle vote table (GalaxyID, Class1.1..Class11.6) or labelled list (label, galaxy_id, file)"
    parser.add_argument("--table", required=True, type=Path, metavar="CSV", help=table_help)
    images_help = (
        "image folder: <GalaxyID>.jpg for vote tables; for lists, files are looked up here by base name "
        "(default: relative to the table's folder)"
    )
    parser.add_argument("--images", dest="images_dir", type=Path, metavar="DIR", help=images_help)
    mapping_help = (
        "class mapping (JSON/YAML: categories + columns and/or labels); default Kim's 6 classes for vote tables"
    )
    parser.add_argument("--mapping", type=Path, metavar="FILE", help=mapping_help)
    crop_help = "write the central NxN crop of each image (Kim: 180) as PNG"
    parser.add_argument("--centre-crop", "--center-crop", dest="centre_crop", type=int, metavar="N", help=crop_help)
    fraction_help = "vote tables: reject rows whose winning mapped fraction is below this (default 0: keep all)"
    parser.add_argument("--min-fraction", type=float, default=0.0, help=fraction_help)


def run(args: argparse.Namespace) -> ConversionSummary:
    return convert_galaxyzoo(args.table, args.out, options_from_args(GalaxyZooOptions, args))
