"""Galaxy Zoo 2 tables -> whole-image classification COCO (``astrodet convert galaxyzoo``).

Two input forms, told apart by the header:

- *Kaggle vote table* (the Galaxy Challenge's ``training_solutions_rev1.csv``): ``GalaxyID`` and the 37 columns
  ``Class1.1`` .. ``Class11.6`` of cumulative vote fractions (``schemas/gz2_questions.json``). The class is the
  argmax over the columns a mapping file names (default: Kim's 6 classes, ``schemas/gz2_kim6.json``; ties go to
  the earlier category). Images are ``<images>/<GalaxyID>.jpg`` (or .jpeg/.png). All 37 fractions are kept on the
  annotation as ``vote_fractions`` (order in ``info.vote_columns``) for vote regression.
- *Labelled list* (e.g. shared/data/gz2_kaggle/labels.csv): columns ``label``, ``galaxy_id`` (optional: else the
  file's stem) and ``file``. ``file`` is relative to the table's folder, or looked up by its base name in
  ``--images`` when given. Categories come from the mapping's ``labels`` (raw label -> class, in ``categories``
  order) or, without one, are the sorted distinct labels.

``--center-crop N`` writes the central N x N crop of each image as PNG into ``<out_stem>_images/`` (Kim used 180 on
the 424 x 424 Kaggle images); without it the COCO file points at the original images.

Every data row is converted or rejected with one reason, checked in this order: malformed_row, missing_value,
bad_vote_value, no_mapped_votes / low_confidence / unknown_label, duplicate_id, missing_image, unreadable_image,
image_too_small. Row numbers count the header as row 1.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from astrodet import __version__
from astrodet.data.rejects import ConversionSummary, RejectsLedger
from astrodet.data.wholeimage import (
    Record,
    finish,
    images_dir_for,
    parse_split,
    probe_image,
    relative_to_json,
    safe_stem,
    write_image_copy,
)
from astrodet.errors import AstrodetInputError

SCHEMAS = Path(__file__).resolve().parent / "schemas"
DEFAULT_MAPPING = SCHEMAS / "gz2_kim6.json"
QUESTIONS = SCHEMAS / "gz2_questions.json"
ID_ALIASES = ("galaxyid", "galaxy_id", "id", "objid", "object_id")
LABEL_ALIASES = ("label", "class", "category")
FILE_ALIASES = ("file", "filename", "file_name", "path", "image")
KAGGLE_SUFFIXES = (".jpg", ".jpeg", ".png")
FRACTION_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Question:
    """One decision-tree question: its answer columns ``[start, stop)`` and the answer column that leads to it."""

    name: str
    start: int
    stop: int
    parent: int | None  # index of the parent answer column, None if every volunteer was asked


@dataclass(frozen=True)
class QuestionSchema:
    """Galaxy Zoo questions over a flat vector of answer columns: what vote losses and metrics need to know."""

    name: str
    columns: tuple[str, ...]
    questions: tuple[Question, ...]

    @property
    def slices(self) -> list[tuple[int, int]]:
        return [(q.start, q.stop) for q in self.questions]

    @property
    def parents(self) -> list[int | None]:
        return [q.parent for q in self.questions]


@lru_cache(maxsize=8)
def load_question_schema(path: str | os.PathLike[str] = QUESTIONS) -> QuestionSchema:
    """Read a question schema (JSON: questions with ``answers`` {column: name} and ``parent`` column or null)."""
    data = _read_json(Path(path))
    columns: list[str] = []
    questions: list[Question] = []
    for q in data["questions"]:
        start = len(columns)
        columns.extend(q["answers"])
        questions.append(Question(q["name"], start, len(columns), None))
    index = {c: i for i, c in enumerate(columns)}
    resolved = []
    for q, raw in zip(questions, data["questions"], strict=True):
        parent = raw.get("parent")
        if parent is not None and parent not in index:
            raise AstrodetInputError(f"{path}: question {q.name!r}: parent {parent!r} is not an answer column")
        resolved.append(Question(q.name, q.start, q.stop, None if parent is None else index[parent]))
    return QuestionSchema(str(data.get("name", Path(path).stem)), tuple(columns), tuple(resolved))


def vote_columns() -> tuple[str, ...]:
    """The 37 Kaggle columns in schema order (Class1.1 .. Class11.6)."""
    return load_question_schema().columns


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise AstrodetInputError(f"{path}: no such file") from None
    except json.JSONDecodeError as err:
        raise AstrodetInputError(f"{path}: not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise AstrodetInputError(f"{path}: expected a JSON object")
    return data


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
    if file.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise AstrodetInputError(f"{file}: no such mapping file") from None
        if not isinstance(data, dict):
            raise AstrodetInputError(f"{file}: expected a mapping")
    else:
        data = _read_json(file)
    categories = data.get("categories")
    if not isinstance(categories, list) or not categories or len(set(categories)) != len(categories):
        raise AstrodetInputError(f"{file}: 'categories' must be a list of distinct class names")
    columns = dict(data.get("columns") or {})
    labels = {str(k): v for k, v in (data.get("labels") or {}).items()}
    for where, values in (("columns", columns), ("labels", labels)):
        unknown = sorted(set(values.values()) - set(categories))
        if unknown:
            raise AstrodetInputError(f"{file}: '{where}' maps to {unknown}, which are not in 'categories'")
    bad = sorted(set(columns) - set(vote_columns()))
    if bad:
        raise AstrodetInputError(f"{file}: 'columns' names {bad}, which are not Galaxy Zoo 2 vote columns")
    if not columns and not labels:
        raise AstrodetInputError(f"{file}: give 'columns' (vote table -> class) and/or 'labels' (label -> class)")
    return GalaxyZooMapping(str(data.get("name", file.stem)), tuple(categories), columns, labels, data)


def _read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            rows = [row for row in reader if row]
    except FileNotFoundError:
        raise AstrodetInputError(f"{path}: no such table") from None
    except (UnicodeDecodeError, csv.Error) as err:
        raise AstrodetInputError(f"{path}: not a readable CSV table: {err}") from None
    if not header:
        raise AstrodetInputError(f"{path}: empty file, expected a header row")
    return [h.strip() for h in header], rows


def _find(header: Sequence[str], aliases: Sequence[str]) -> int | None:
    lowered = [h.lower() for h in header]
    return next((lowered.index(a) for a in aliases if a in lowered), None)


def _id_value(text: str) -> Any:
    return int(text) if text.isdigit() else text


class _Rows:
    """The ledger plus per-row bookkeeping shared by both table forms."""

    def __init__(self, path: Path, header: list[str]) -> None:
        self.path = path
        self.header = header
        self.ledger = RejectsLedger()

    def reject(self, i: int, row: list[str], reason: str, message: str) -> None:
        self.ledger.add(self.path, i + 2, reason, message, dict(zip(self.header, row, strict=False)))


@dataclass
class _Candidate:
    """A row that passed the table checks; its image is checked next."""

    index: int
    row: list[str]
    key: str
    category: str
    image: Path
    image_fields: dict[str, Any]
    annotation_fields: dict[str, Any]


def _kaggle_candidates(
    rows_ctx: _Rows, rows: list[list[str]], mapping: GalaxyZooMapping, images_dir: Path, min_fraction: float
) -> list[_Candidate]:
    header = rows_ctx.header
    columns = vote_columns()
    missing = [c for c in columns if c not in header]
    if missing:
        raise AstrodetInputError(
            f"{rows_ctx.path}: a Galaxy Zoo 2 vote table needs GalaxyID and all 37 columns Class1.1..Class11.6; "
            f"missing {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}"
        )
    if not mapping.columns:
        raise AstrodetInputError(f"mapping {mapping.name!r} has no 'columns': it cannot label a vote table")
    id_col = _find(header, ID_ALIASES)
    assert id_col is not None
    vote_idx = [header.index(c) for c in columns]
    mapped = list(mapping.columns.items())
    order = {c: i for i, c in enumerate(mapping.categories)}
    mapped.sort(key=lambda kv: order[kv[1]])  # ties go to the earlier category
    mapped_idx = [columns.index(c) for c, _ in mapped]
    if not images_dir.is_dir():
        raise AstrodetInputError(f"--images {images_dir}: no such folder")
    listing = {p.name.lower(): p for p in images_dir.iterdir()}
    out: list[_Candidate] = []
    for i, row in enumerate(rows):
        if len(row) != len(header):
            rows_ctx.reject(i, row, "malformed_row", f"expected {len(header)} fields, got {len(row)}")
            continue
        galaxy = row[id_col].strip()
        if not galaxy:
            rows_ctx.reject(i, row, "missing_value", f"{header[id_col]} is empty")
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
            rows_ctx.reject(i, row, "bad_vote_value", problem)
            continue
        scores = fractions[mapped_idx]
        best = int(np.argmax(scores))
        if scores[best] <= 0:
            names = ", ".join(c for c, _ in mapped)
            rows_ctx.reject(i, row, "no_mapped_votes", f"every mapped column ({names}) is 0")
            continue
        if scores[best] < min_fraction:
            rows_ctx.reject(
                i,
                row,
                "low_confidence",
                f"winning column {mapped[best][0]} = {scores[best]:.3f} < --min-fraction {min_fraction:g}",
            )
            continue
        image = next(
            (listing[f"{galaxy}{s}".lower()] for s in KAGGLE_SUFFIXES if f"{galaxy}{s}".lower() in listing),
            images_dir / f"{galaxy}.jpg",
        )
        out.append(
            _Candidate(
                i,
                row,
                galaxy,
                mapped[best][1],
                image,
                {"galaxy_id": _id_value(galaxy)},
                {
                    "vote_fractions": [round(float(v), 6) for v in fractions],
                    "label_column": mapped[best][0],
                    "label_fraction": round(float(scores[best]), 6),
                },
            )
        )
    return out


def _list_candidates(
    rows_ctx: _Rows, rows: list[list[str]], mapping: GalaxyZooMapping | None, images_dir: Path | None
) -> tuple[list[_Candidate], tuple[str, ...]]:
    header = rows_ctx.header
    label_col, file_col, id_col = (_find(header, a) for a in (LABEL_ALIASES, FILE_ALIASES, ID_ALIASES))
    if label_col is None or file_col is None:
        raise AstrodetInputError(
            f"{rows_ctx.path}: expected a Galaxy Zoo 2 vote table (GalaxyID, Class1.1..Class11.6) or a labelled list "
            f"(label, file[, galaxy_id]); columns: {', '.join(header)}"
        )
    labels = mapping.labels if mapping is not None else {}
    out: list[_Candidate] = []
    for i, row in enumerate(rows):
        if len(row) != len(header):
            rows_ctx.reject(i, row, "malformed_row", f"expected {len(header)} fields, got {len(row)}")
            continue
        label, file = row[label_col].strip(), row[file_col].strip()
        galaxy = row[id_col].strip() if id_col is not None else Path(file.replace("\\", "/")).stem
        empty = [header[j] for j, v in ((label_col, label), (file_col, file)) if not v]
        if id_col is not None and not galaxy:
            empty.append(header[id_col])
        if empty:
            rows_ctx.reject(i, row, "missing_value", f"{', '.join(empty)} empty")
            continue
        if labels:
            if label not in labels:
                known = ", ".join(sorted(labels))
                rows_ctx.reject(i, row, "unknown_label", f"label {label!r} is not in the mapping ({known})")
                continue
            category = labels[label]
        else:
            category = label
        base = file.replace("\\", "/")
        image = images_dir / base.rsplit("/", 1)[-1] if images_dir is not None else rows_ctx.path.parent / base
        out.append(_Candidate(i, row, galaxy, category, image, {"galaxy_id": _id_value(galaxy)}, {"label_text": label}))
    categories = mapping.categories if labels and mapping is not None else tuple(sorted({c.category for c in out}))
    return out, categories


def convert_galaxyzoo(
    table: str | os.PathLike[str],
    out_json: str | os.PathLike[str],
    *,
    images_dir: str | os.PathLike[str] | None = None,
    mapping: str | os.PathLike[str] | None = None,
    center_crop: int | None = None,
    min_fraction: float = 0.0,
    split: str | Mapping[str, float] | None = None,
    seed: int = 0,
    rejects_csv: str | os.PathLike[str] | None = None,
) -> ConversionSummary:
    """Convert a Galaxy Zoo 2 vote table or labelled list into whole-image classification COCO (see module doc)."""
    path, out = Path(table), Path(out_json)
    images = Path(images_dir) if images_dir is not None else None
    fractions = parse_split(split)
    if center_crop is not None and center_crop <= 0:
        raise AstrodetInputError(f"--center-crop must be a positive number of pixels, got {center_crop}")
    if not 0 <= min_fraction <= 1:
        raise AstrodetInputError(f"--min-fraction must be in [0, 1], got {min_fraction}")
    header, rows = _read_table(path)
    ctx = _Rows(path, header)
    is_votes = _find(header, ("galaxyid",)) is not None and any(h.startswith("Class") for h in header)
    if is_votes:
        if images is None:
            raise AstrodetInputError(f"{path}: a vote table names no files: give --images (the <GalaxyID>.jpg folder)")
        the_mapping = load_mapping(mapping)
        candidates = _kaggle_candidates(ctx, rows, the_mapping, images, min_fraction)
        categories = the_mapping.categories
    else:
        the_mapping = load_mapping(mapping) if mapping is not None else None
        candidates, categories = _list_candidates(ctx, rows, the_mapping, images)

    crops = images_dir_for(out) if center_crop is not None else None
    seen: dict[str, int] = {}
    records: list[Record] = []
    for cand in candidates:
        if cand.key in seen:
            ctx.reject(cand.index, cand.row, "duplicate_id", f"galaxy {cand.key} already in row {seen[cand.key]}")
            continue
        seen[cand.key] = cand.index + 2
        reason, message, size, _ = probe_image(cand.image)
        if reason is not None or size is None:
            ctx.reject(cand.index, cand.row, reason or "unreadable_image", message)
            continue
        image_fields = dict(cand.image_fields)
        if crops is not None and center_crop is not None:
            if min(size) < center_crop:
                ctx.reject(
                    cand.index,
                    cand.row,
                    "image_too_small",
                    f"{cand.image} is {size[0]}x{size[1]}, smaller than --center-crop {center_crop}",
                )
                continue
            target, size = write_image_copy(cand.image, crops, safe_stem(cand.key), crop=center_crop)
            image_fields["source_file_name"] = relative_to_json(cand.image, out)
        else:
            target = cand.image
        records.append(
            Record(
                key=cand.key,
                category=cand.category,
                row=cand.index + 2,
                file_name=relative_to_json(target, out),
                width=int(size[0]),
                height=int(size[1]),
                image_fields=image_fields,
                annotation_fields=cand.annotation_fields,
            )
        )
    info: dict[str, Any] = {
        "description": "Galaxy Zoo 2 whole-image classification, converted by astrodet",
        "converter": "astrodet.data.galaxyzoo",
        "astrodet_version": __version__,
        "sources": {"table": str(path), "images_dir": str(images) if images is not None else None},
        "options": {
            "form": "vote_table" if is_votes else "labelled_list",
            "mapping": the_mapping.raw if the_mapping is not None else None,
            "center_crop": center_crop,
            "min_fraction": min_fraction,
            "split": fractions,
            "seed": seed,
        },
    }
    if is_votes:
        info["vote_columns"] = list(vote_columns())
        info["vote_schema"] = load_question_schema().name
    return finish(
        out_json=out,
        records=records,
        categories=categories,
        info=info,
        ledger=ctx.ledger,
        source=path,
        rows_in=len(rows),
        split=fractions,
        seed=seed,
        rejects_csv=Path(rejects_csv) if rejects_csv is not None else None,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``astrodet convert galaxyzoo`` (the shared --out/--split/--seed/... come from convert.py)."""
    parser.add_argument(
        "--table",
        required=True,
        type=Path,
        metavar="CSV",
        help="Kaggle vote table (GalaxyID, Class1.1..Class11.6) or labelled list (label, galaxy_id, file)",
    )
    parser.add_argument(
        "--images",
        type=Path,
        metavar="DIR",
        help="image folder: <GalaxyID>.jpg for vote tables; for lists, files are looked up here by base name "
        "(default: relative to the table's folder)",
    )
    parser.add_argument(
        "--mapping",
        type=Path,
        metavar="FILE",
        help="class mapping (JSON/YAML: categories + columns and/or labels); default Kim's 6 classes for vote tables",
    )
    parser.add_argument(
        "--center-crop", type=int, metavar="N", help="write the central NxN crop of each image (Kim: 180) as PNG"
    )
    parser.add_argument(
        "--min-fraction",
        type=float,
        default=0.0,
        help="vote tables: reject rows whose winning mapped fraction is below this (default 0: keep all)",
    )


def run(args: argparse.Namespace) -> ConversionSummary:
    return convert_galaxyzoo(
        args.table,
        args.out,
        images_dir=args.images,
        mapping=args.mapping,
        center_crop=args.center_crop,
        min_fraction=args.min_fraction,
        split=args.split,
        seed=args.seed,
        rejects_csv=args.rejects,
    )
