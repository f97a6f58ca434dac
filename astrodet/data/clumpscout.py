"""Galaxy Zoo: Clump Scout box tables -> COCO, in the frame Popp et al. (2024, RASTI 3, 174) trained on.

Input: a CSV with columns ``image_id,local_ids,filename,label,label_text,x1,x2,y1,y2`` (the export of the
Faster-R-CNN-for-Galaxy-Zoo-Clump-Scout ``imageGroups_*.pkl``). ``local_ids`` names the galaxy, ``image_id`` the
Zooniverse subject, ``filename`` the 400x400 PNG cutout; ``x1..y2`` are pixels of the cutout's central 200x200 crop
(pixels 100-300), label 1 = clump, 2 = odd clump. Some boxes reach outside the crop.

Frames:

- ``crop`` (default, Popp's setup): images are the central 200x200 crop; boxes not within
  ``[margin, 200 - margin]`` (margin = 5% of the crop side by default) are dropped as ``outside_crop_margin``.
  With ``images_dir`` the crops are written next to the output JSON in ``<out_stem>_images/``.
- ``full``: the whole cutout; boxes shifted by the crop origin (+100 px for 400x400); boxes leaving the image are
  dropped as ``outside_image``; ``file_name`` points at the original PNG (relative to the JSON's folder).

Every input row ends up in the output or in the rejects report (``<out_stem>_rejects.csv``) with one reason, checked
in this order: malformed_row, missing_value, conflicting_ids, missing_image, unreadable_image, wrong_image_size,
not_finite, unknown_label, non_positive_size, outside_crop_margin / outside_image, duplicate (same image and box,
to 1e-3 px, as an earlier kept row). An image is written for every galaxy whose image is usable even when all its
boxes were dropped (it was inspected: no clumps in the kept region), plus the galaxies of ``galaxies_csv`` and,
with ``keep_empty_images``, every PNG in ``images_dir``: clump-free images are the negatives that purity needs.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from astrodet import __version__
from astrodet.data.coco import CocoBuilder, category_counts, validate_coco
from astrodet.data.rejects import ConversionSummary, RejectsLedger
from astrodet.data.splits import check_fractions, parse_fractions, stratified_split
from astrodet.errors import AstrodetInputError
from astrodet.io import atomic_write_bytes, atomic_write_json, write_all_or_nothing

COLUMNS = ("image_id", "local_ids", "filename", "label", "label_text", "x1", "x2", "y1", "y2")
COORDS = ("x1", "x2", "y1", "y2")
CATEGORIES = {1: "clump", 2: "odd_clump"}
CROP_SIZE = 200  # px: side of the central crop the table's coordinates refer to
DEFAULT_SOURCE_SIZE = (400, 400)  # px: the Clump Scout cutouts
FRAMES = ("crop", "full")
DUPLICATE_DECIMALS = 3
# annotation keys an extra table column may not overwrite; such a column is stored as "table_<name>"
_RESERVED = {"id", "image_id", "category_id", "bbox", "area", "iscrowd", "segmentation", "source_row"}
_IMAGE_REASONS = ("missing_image", "unreadable_image", "wrong_image_size")

# galaxies table: accepted column names (lower case) for each field
GALAXY_COLUMNS: dict[str, tuple[str, ...]] = {
    "local_ids": ("local_ids", "local_id"),
    "ra": ("ra", "ra_deg", "raj2000", "ra_icrs"),
    "dec": ("dec", "dec_deg", "dej2000", "decj2000", "dec_icrs"),
    "pixel_scale": ("pixel_scale", "pixel_scale_arcsec", "pixscale", "pix_scale", "arcsec_per_pixel", "scale"),
    "filename": ("filename", "file_name", "file", "png", "image_file"),
    "subject_id": ("image_id", "subject_id"),
    "bands": ("bands", "band"),
}


@dataclass
class _Image:
    """One source cutout: where it is, its size and what is known about its galaxy."""

    name: str  # basename of the PNG
    galaxy_id: str
    fields: dict[str, Any] = field(default_factory=dict)  # subject_id, ra, dec, pixel_scale, bands


def _basename(path: str) -> str:
    return path.strip().replace("\\", "/").rsplit("/", 1)[-1]


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            rows = list(reader)
    except FileNotFoundError:
        raise AstrodetInputError(f"{path}: no such file") from None
    except (UnicodeDecodeError, csv.Error) as err:
        raise AstrodetInputError(f"{path}: not a readable CSV table: {err}") from None
    if not header:
        raise AstrodetInputError(f"{path}: empty file, expected a header row {','.join(COLUMNS)}")
    return [h.strip() for h in header], rows


def _parse_floats(values: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Floats and a finite mask; unparseable strings become NaN. Fast path: numpy parses the whole column."""
    try:
        array = np.array(values, dtype=np.float64)
    except ValueError:
        array = np.empty(len(values), dtype=np.float64)
        for i, text in enumerate(values):
            try:
                array[i] = float(text)
            except ValueError:
                array[i] = np.nan
    return array, np.isfinite(array)


def _parse_label(text: str) -> int | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value in CATEGORIES else None


def _extra_value(text: str) -> Any:
    """An extra column's value as JSON: int or float when it parses (non-finite -> None), else the string."""
    text = text.strip()
    if not text:
        return None
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else None


def _subject(text: str) -> Any:
    text = text.strip()
    return int(text) if text.isdigit() else (text or None)


@dataclass
class _Options:
    boxes_csv: Path
    out_json: Path
    images_dir: Path | None
    source_size: tuple[int, int]
    frame: str
    margin: float
    keep_empty_images: bool
    galaxies_csv: Path | None
    split: dict[str, float] | None
    seed: int
    rejects_csv: Path

    @property
    def stem(self) -> Path:
        return self.out_json.with_suffix("") if self.out_json.suffix.lower() == ".json" else self.out_json

    @property
    def crop_origin(self) -> tuple[int, int]:
        return ((self.source_size[0] - CROP_SIZE) // 2, (self.source_size[1] - CROP_SIZE) // 2)

    @property
    def crops_dir(self) -> Path | None:
        if self.frame != "crop" or self.images_dir is None:
            return None
        return self.stem.parent / f"{self.stem.name}_images"

    @property
    def output_size(self) -> tuple[int, int]:
        return (CROP_SIZE, CROP_SIZE) if self.frame == "crop" else self.source_size


def _options(
    *,
    boxes_csv: str | os.PathLike[str],
    out_json: str | os.PathLike[str],
    images_dir: str | os.PathLike[str] | None,
    image_size: Sequence[int] | None,
    frame: str,
    margin: float,
    keep_empty_images: bool,
    galaxies_csv: str | os.PathLike[str] | None,
    split: str | Mapping[str, float] | None,
    seed: int,
    rejects_csv: str | os.PathLike[str] | None,
) -> _Options:
    if frame not in FRAMES:
        raise AstrodetInputError(f"frame must be one of {', '.join(FRAMES)}, got {frame!r}")
    if not (isinstance(margin, int | float) and math.isfinite(margin) and 0 <= margin < 0.5):
        raise AstrodetInputError(f"margin must be a fraction of the crop side in [0, 0.5), got {margin!r}")
    if images_dir is None and image_size is None:
        raise AstrodetInputError("give an images folder (--images DIR) or the cutout size (--image-size W H)")
    if keep_empty_images and images_dir is None:
        raise AstrodetInputError("--keep-empty-images needs --images DIR (the PNGs to keep)")
    size = tuple(int(v) for v in (image_size if image_size is not None else DEFAULT_SOURCE_SIZE))
    if len(size) != 2 or any(v < CROP_SIZE or (v - CROP_SIZE) % 2 for v in size):
        raise AstrodetInputError(
            f"image size must be W H with both >= {CROP_SIZE} and W - {CROP_SIZE}, H - {CROP_SIZE} even "
            f"(the table's boxes are in the central {CROP_SIZE}x{CROP_SIZE} crop), got {image_size!r}"
        )
    if images_dir is not None and not Path(images_dir).is_dir():
        raise AstrodetInputError(f"{images_dir}: images folder not found")
    fractions = parse_fractions(split) if isinstance(split, str) else (dict(split) if split else None)
    if fractions is not None:
        check_fractions(fractions)
    out = Path(out_json)
    stem = out.with_suffix("") if out.suffix.lower() == ".json" else out
    opts = _Options(
        boxes_csv=Path(boxes_csv),
        out_json=out,
        images_dir=Path(images_dir) if images_dir is not None else None,
        source_size=(size[0], size[1]),
        frame=frame,
        margin=float(margin),
        keep_empty_images=keep_empty_images,
        galaxies_csv=Path(galaxies_csv) if galaxies_csv is not None else None,
        split=fractions,
        seed=int(seed),
        rejects_csv=Path(rejects_csv) if rejects_csv is not None else stem.parent / f"{stem.name}_rejects.csv",
    )
    if opts.crops_dir is not None and opts.crops_dir.resolve() == opts.images_dir.resolve():
        raise AstrodetInputError(f"{opts.images_dir}: crops would overwrite the source images; choose another --out")
    return opts


class _ImageChecker:
    """Looks up cutouts by basename in the images folder and reads their sizes lazily, once each."""

    def __init__(self, opts: _Options) -> None:
        self.opts = opts
        self.listing = set(os.listdir(opts.images_dir)) if opts.images_dir is not None else set()
        self._cache: dict[str, tuple[str | None, str]] = {}

    def check(self, name: str) -> tuple[str | None, str]:
        """(reason, message) for an unusable image, (None, "") for a usable one."""
        if self.opts.images_dir is None:
            return None, ""
        if name not in self._cache:
            self._cache[name] = self._check(name)
        return self._cache[name]

    def _check(self, name: str) -> tuple[str | None, str]:
        assert self.opts.images_dir is not None
        if name not in self.listing:
            return "missing_image", f"image {name} not found in {self.opts.images_dir}"
        try:
            with Image.open(self.opts.images_dir / name) as im:
                size = im.size
        except (OSError, UnidentifiedImageError) as err:
            return "unreadable_image", f"image {name} cannot be read: {err}"
        if size != self.opts.source_size:
            w, h = self.opts.source_size
            return "wrong_image_size", f"image {name} is {size[0]}x{size[1]}, expected {w}x{h}"
        return None, ""


def _reject_rows(
    reasons: list[str | None], messages: list[str], mask: np.ndarray, reason: str, message: Callable[[int], str]
) -> None:
    """Give ``reason`` to the rows in ``mask`` that have no reason yet."""
    for i in np.flatnonzero(mask):
        if reasons[i] is None:
            reasons[i] = reason
            messages[i] = message(int(i))


def _check_rows(
    opts: _Options, header: list[str], rows: list[list[str]], checker: _ImageChecker
) -> tuple[list[str | None], list[str], dict[str, np.ndarray], list[str], dict[str, str]]:
    """Give each row its first failing reason (or None); return the parsed columns and each image's galaxy."""
    n = len(rows)
    width = len(header)
    reasons: list[str | None] = [None] * n
    messages = [""] * n
    for i, row in enumerate(rows):
        if len(row) != width:
            reasons[i] = "malformed_row"
            messages[i] = f"expected {width} fields, got {len(row)}"
    index = {name: header.index(name) for name in COLUMNS}
    column = {name: [row[j] if j < len(row) else "" for row in rows] for name, j in index.items()}
    names = [_basename(f) for f in column["filename"]]
    galaxies = [g.strip() for g in column["local_ids"]]

    for i in range(n):
        if reasons[i] is None and (not names[i] or not galaxies[i]):
            reasons[i] = "missing_value"
            messages[i] = "filename is empty" if not names[i] else "local_ids is empty"

    galaxy_of: dict[str, str] = {}
    for i in range(n):
        if reasons[i] is None:
            first = galaxy_of.setdefault(names[i], galaxies[i])
            if first != galaxies[i]:
                reasons[i] = "conflicting_ids"
                messages[i] = f"image {names[i]} belongs to local_ids {first} in an earlier row, not {galaxies[i]}"

    for i in range(n):
        if reasons[i] is None:
            reason, message = checker.check(names[i])
            if reason is not None:
                reasons[i], messages[i] = reason, message

    coords: dict[str, np.ndarray] = {}
    bad_any = np.zeros(n, dtype=bool)
    for name in COORDS:
        values = [v if r is None else "0" for v, r in zip(column[name], reasons, strict=True)]
        coords[name], finite = _parse_floats(values)
        bad = ~finite & ~bad_any
        _reject_rows(
            reasons, messages, bad, "not_finite", lambda i, c=name: f"{c} is not a finite number: {column[c][i]!r}"
        )
        bad_any |= ~finite

    labels = np.array([_parse_label(t) or 0 for t in column["label"]], dtype=np.int64)
    _reject_rows(
        reasons,
        messages,
        labels == 0,
        "unknown_label",
        lambda i: f"label must be 1 (clump) or 2 (odd clump), got {column['label'][i]!r}",
    )

    x1, x2, y1, y2 = (coords[c] for c in COORDS)
    with np.errstate(invalid="ignore"):
        _reject_rows(
            reasons,
            messages,
            x2 - x1 <= 0,
            "non_positive_size",
            lambda i: f"box width x2 - x1 = {x2[i] - x1[i]:g} must be > 0",
        )
        _reject_rows(
            reasons,
            messages,
            y2 - y1 <= 0,
            "non_positive_size",
            lambda i: f"box height y2 - y1 = {y2[i] - y1[i]:g} must be > 0",
        )
        if opts.frame == "crop":
            low, high = opts.margin * CROP_SIZE, CROP_SIZE - opts.margin * CROP_SIZE
            outside = (x1 < low) | (y1 < low) | (x2 > high) | (y2 > high)
            _reject_rows(
                reasons,
                messages,
                outside,
                "outside_crop_margin",
                lambda i: (
                    f"box x {x1[i]:.2f}..{x2[i]:.2f}, y {y1[i]:.2f}..{y2[i]:.2f} is not within "
                    f"[{low:g}, {high:g}] of the {CROP_SIZE}x{CROP_SIZE} crop (margin {opts.margin:g})"
                ),
            )
        else:
            (ox, oy), (w, h) = opts.crop_origin, opts.source_size
            outside = (x1 + ox < 0) | (y1 + oy < 0) | (x2 + ox > w) | (y2 + oy > h)
            _reject_rows(
                reasons,
                messages,
                outside,
                "outside_image",
                lambda i: (
                    f"box x {x1[i] + ox:.2f}..{x2[i] + ox:.2f}, y {y1[i] + oy:.2f}..{y2[i] + oy:.2f}"
                    f" is not inside the {w}x{h} image"
                ),
            )

    rounded = np.round(np.stack([x1, x2, y1, y2], axis=1), DUPLICATE_DECIMALS)
    first_row: dict[tuple[Any, ...], int] = {}
    for i in range(n):
        if reasons[i] is None:
            key = (names[i], *rounded[i].tolist())
            if key in first_row:
                reasons[i] = "duplicate"
                messages[i] = f"same image and box (to 1e-{DUPLICATE_DECIMALS} px) as row {first_row[key] + 2}"
            else:
                first_row[key] = i
    coords["label"] = labels
    return reasons, messages, coords, names, galaxy_of


def _pick(header: list[str], aliases: tuple[str, ...]) -> int | None:
    lowered = [h.lower() for h in header]
    for alias in aliases:
        if alias in lowered:
            return lowered.index(alias)
    return None


def _parse_bands(text: str) -> list[str] | None:
    parts = [p for p in re.split(r"[,;| ]+", text.strip()) if p]
    if len(parts) == 1 and len(parts[0]) > 1 and all(c in "ugrizyY" for c in parts[0]):
        parts = list(parts[0])  # "gri" -> ["g", "r", "i"]
    return parts or None


def _galaxy_fields(header: list[str], row: list[str], cols: dict[str, int | None]) -> tuple[dict[str, Any], str]:
    """The image fields of one galaxies-table row, or ({}, message) when a value is invalid."""
    fields: dict[str, Any] = {}
    rules: dict[str, tuple[Callable[[float], bool], str]] = {
        "ra": (lambda v: 0 <= v <= 360, "degrees in [0, 360]"),
        "dec": (lambda v: -90 <= v <= 90, "degrees in [-90, 90]"),
        "pixel_scale": (lambda v: v > 0, "arcsec/px > 0"),
    }
    for key, (ok, expected) in rules.items():
        j = cols[key]
        if j is None or not row[j].strip():
            continue  # unknown: left out of the image record
        try:
            value = float(row[j])
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and ok(value)):
            return {}, f"{header[j]} must be {expected}, got {row[j]!r}"
        fields[key] = value
    if cols["subject_id"] is not None:
        fields["subject_id"] = _subject(row[cols["subject_id"]])
    if cols["bands"] is not None:
        fields["bands"] = _parse_bands(row[cols["bands"]])
    return {k: v for k, v in fields.items() if v is not None}, ""


def _add_galaxies(opts: _Options, images: dict[str, _Image], checker: _ImageChecker, ledger: RejectsLedger) -> str:
    """Merge the galaxies table into ``images``; returns its accounting line."""
    assert opts.galaxies_csv is not None
    path = opts.galaxies_csv
    header, rows = _read_csv(path)
    cols = {key: _pick(header, aliases) for key, aliases in GALAXY_COLUMNS.items()}
    if cols["local_ids"] is None:
        raise AstrodetInputError(
            f"{path}: no local_ids column (galaxy id, as in the boxes table); columns: {','.join(header)}"
        )
    by_galaxy: dict[str, list[_Image]] = {}
    for image in images.values():
        by_galaxy.setdefault(image.galaxy_id, []).append(image)
    seen: dict[str, int] = {}
    used = added = 0
    for i, row in enumerate(rows):
        number = i + 2
        values = dict(zip(header, row, strict=False))
        if len(row) != len(header):
            ledger.add(path, number, "malformed_row", f"expected {len(header)} fields, got {len(row)}", values)
            continue
        galaxy = row[cols["local_ids"]].strip()
        if not galaxy:
            ledger.add(path, number, "missing_value", "local_ids is empty", values)
            continue
        if galaxy in seen:
            ledger.add(path, number, "duplicate", f"local_ids {galaxy} already in row {seen[galaxy]}", values)
            continue
        seen[galaxy] = number
        fields, problem = _galaxy_fields(header, row, cols)
        if problem:
            ledger.add(path, number, "bad_value", problem, values)
            continue
        if galaxy in by_galaxy:
            for image in by_galaxy[galaxy]:
                image.fields.update(fields)
            used += 1
            continue
        name = _basename(row[cols["filename"]]) if cols["filename"] is not None else ""
        name = name or f"{galaxy}.png"
        if name in images:
            ledger.add(
                path,
                number,
                "conflicting_ids",
                f"image {name} belongs to local_ids {images[name].galaxy_id}, not {galaxy}",
                values,
            )
            continue
        reason, message = checker.check(name)
        if reason is not None:
            ledger.add(path, number, reason, message, values)
            continue
        images[name] = _Image(name, galaxy, fields)
        by_galaxy[galaxy] = [images[name]]
        used += 1
        added += 1
    line = ledger.summary(len(rows), used, file=path, out_label="used")
    return f"{path}: {line}; {added} galaxies added as images without boxes"


def _add_empty_pngs(opts: _Options, images: dict[str, _Image], checker: _ImageChecker) -> str:
    """Every PNG in the images folder becomes an image (a negative when it has no boxes)."""
    added, skipped = 0, {}
    for name in sorted(checker.listing):
        if not name.lower().endswith(".png") or name in images:
            continue
        reason, _ = checker.check(name)
        if reason is not None:
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        images[name] = _Image(name, Path(name).stem)
        added += 1
    detail = ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items()))
    return f"{opts.images_dir}: {added} PNGs without boxes added as images" + (f"; skipped {detail}" if detail else "")


def _stratum(n_boxes: int, has_odd: bool) -> tuple[str, bool]:
    """Split strata: clumps-per-galaxy bucket x presence of odd clumps."""
    bucket = "0" if n_boxes == 0 else "1" if n_boxes == 1 else "2" if n_boxes == 2 else "3-4" if n_boxes <= 4 else "5+"
    return bucket, has_odd


def _split_groups(
    opts: _Options, ordered: list[_Image], kept: dict[str, list[int]], labels: np.ndarray
) -> dict[str | None, list[_Image]]:
    """Images per output file: all in one (key None), or per split by galaxy, stratified by its boxes."""
    if opts.split is None:
        return {None: ordered}
    n_boxes: dict[str, int] = {}
    odd: dict[str, bool] = {}
    for image in ordered:
        rows_of = kept.get(image.name, [])
        n_boxes[image.galaxy_id] = n_boxes.get(image.galaxy_id, 0) + len(rows_of)
        odd[image.galaxy_id] = odd.get(image.galaxy_id, False) or any(labels[i] == 2 for i in rows_of)
    strata = {g: _stratum(n_boxes[g], odd[g]) for g in n_boxes}
    assignment = {g: name for name, keys in stratified_split(strata, opts.split, opts.seed).items() for g in keys}
    return {name: [im for im in ordered if assignment[im.galaxy_id] == name] for name in opts.split}


def _info(opts: _Options) -> dict[str, Any]:
    """Provenance for ``info``: sources as given, options, frame; no timestamp (reruns give identical files)."""
    return {
        "description": "Galaxy Zoo: Clump Scout clumps (Popp et al. 2024 frame), converted by astrodet",
        "converter": "astrodet.data.clumpscout",
        "astrodet_version": __version__,
        "sources": {
            "boxes_csv": str(opts.boxes_csv),
            "galaxies_csv": str(opts.galaxies_csv) if opts.galaxies_csv else None,
            "images_dir": str(opts.images_dir) if opts.images_dir else None,
        },
        "options": {
            "frame": opts.frame,
            "margin": opts.margin,
            "image_size": list(opts.source_size),
            "keep_empty_images": opts.keep_empty_images,
            "split": opts.split,
            "seed": opts.seed,
        },
        "frame": {
            "name": opts.frame,
            "crop_origin": list(opts.crop_origin),
            "crop_size": CROP_SIZE,
            "source_size": list(opts.source_size),
        },
    }


def _build(
    opts: _Options,
    images: list[_Image],
    kept: dict[str, list[int]],
    coords: dict[str, np.ndarray],
    extras: dict[str, list[Any]],
    info: dict[str, Any],
) -> dict[str, Any]:
    builder = CocoBuilder(info)
    for cid, name in CATEGORIES.items():
        builder.add_category(name, category_id=cid, supercategory="clump")
    ox, oy = (0, 0) if opts.frame == "crop" else opts.crop_origin
    width, height = opts.output_size
    out_dir = opts.stem.parent
    crops_dir = opts.crops_dir
    x1, x2, y1, y2, labels = (coords[c] for c in (*COORDS, "label"))
    for image in images:
        extra: dict[str, Any] = {"galaxy_id": image.galaxy_id, **image.fields}
        if opts.images_dir is None:
            file_name = image.name
        elif crops_dir is not None:
            file_name = f"{crops_dir.name}/{image.name}"
            extra["source_file_name"] = Path(os.path.relpath(opts.images_dir / image.name, out_dir)).as_posix()
        else:
            file_name = Path(os.path.relpath(opts.images_dir / image.name, out_dir)).as_posix()
        image_id = builder.add_image(file_name, width, height, **extra)
        for i in kept.get(image.name, ()):
            bbox = (x1[i] + ox, y1[i] + oy, x2[i] - x1[i], y2[i] - y1[i])
            row_extra = {name: values[i] for name, values in extras.items()}
            builder.add_annotation(image_id, bbox, int(labels[i]), source_row=i + 2, **row_extra)
    data = builder.to_dict()
    data["info"]["counts"] = {  # of this file; info["conversion"] has the whole run's row accounting
        "images": len(data["images"]),
        "images_without_boxes": len(data["images"]) - len({a["image_id"] for a in data["annotations"]}),
        "boxes": category_counts(data),
    }
    return data


def _write_crops(opts: _Options, images: list[_Image]) -> int:
    """Write the central crops; rerun-safe: a crop already there, of the right size and newer than its source, stays."""
    assert opts.crops_dir is not None and opts.images_dir is not None
    ox, oy = opts.crop_origin
    written = 0
    for image in images:
        source, target = opts.images_dir / image.name, opts.crops_dir / image.name
        if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
            try:
                with Image.open(target) as im:
                    if im.size == (CROP_SIZE, CROP_SIZE):
                        continue
            except (OSError, UnidentifiedImageError):
                pass
        with Image.open(source) as im:
            crop = im.crop((ox, oy, ox + CROP_SIZE, oy + CROP_SIZE))
            buffer = io.BytesIO()
            crop.save(buffer, format="PNG")
        atomic_write_bytes(target, buffer.getvalue())
        written += 1
    return written


def convert_clumpscout(
    boxes_csv: str | os.PathLike[str],
    out_json: str | os.PathLike[str],
    *,
    images_dir: str | os.PathLike[str] | None = None,
    image_size: Sequence[int] | None = None,
    frame: str = "crop",
    margin: float = 0.05,
    keep_empty_images: bool = False,
    galaxies_csv: str | os.PathLike[str] | None = None,
    split: str | Mapping[str, float] | None = None,
    seed: int = 0,
    rejects_csv: str | os.PathLike[str] | None = None,
) -> ConversionSummary:
    """Convert a Clump Scout box table to COCO (one file, or one per split) and a rejects report.

    ``images_dir`` holds the PNG cutouts (looked up by the table's filename basename), which must be ``image_size``
    (W, H; default 400x400); without ``images_dir``, ``image_size`` alone gives an annotation-only conversion that
    reads and writes no image (``file_name`` = the table's basename). ``split`` (e.g.
    ``"train=0.7,val=0.2,test=0.1"``) splits by galaxy, stratified by clump count and odd-clump presence, into
    ``<out_stem>_<name>.json``. Outputs are written atomically and all-or-nothing; the returned summary's numbers
    add up (rows in = boxes out + rejected) or it raises.
    """
    opts = _options(**locals())  # every argument, checked; nothing else is defined yet
    header, rows = _read_csv(opts.boxes_csv)
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise AstrodetInputError(
            f"{opts.boxes_csv}: missing column(s) {', '.join(missing)}; expected {','.join(COLUMNS)}, "
            f"got {','.join(header)}"
        )
    checker = _ImageChecker(opts)
    reasons, messages, coords, names, galaxy_of = _check_rows(opts, header, rows, checker)

    ledger = RejectsLedger()
    kept: dict[str, list[int]] = {}
    for i, reason in enumerate(reasons):
        if reason is None:
            kept.setdefault(names[i], []).append(i)
        else:
            ledger.add(opts.boxes_csv, i + 2, reason, messages[i], dict(zip(header, rows[i], strict=False)))
    n_out = sum(len(v) for v in kept.values())
    ledger.summary(len(rows), n_out, file=opts.boxes_csv, out_label="boxes out")  # raises if the counts do not add up

    images: dict[str, _Image] = {}
    for i, reason in enumerate(reasons):
        usable = reason not in ("malformed_row", "missing_value", "conflicting_ids", *_IMAGE_REASONS)
        if usable and names[i] not in images:
            images[names[i]] = _Image(
                names[i],
                galaxy_of[names[i]],
                {"subject_id": _subject(rows[i][header.index("image_id")])},
            )
    notes = []
    if opts.galaxies_csv is not None:
        notes.append(_add_galaxies(opts, images, checker, ledger))
    if opts.keep_empty_images:
        notes.append(_add_empty_pngs(opts, images, checker))

    extra_columns = [(j, h) for j, h in enumerate(header) if h not in COLUMNS]
    extras = {
        (f"table_{h}" if h in _RESERVED else h): [
            _extra_value(row[j]) if reasons[i] is None else None for i, row in enumerate(rows)
        ]
        for j, h in extra_columns
    }

    ordered = sorted(images.values(), key=lambda im: im.name)
    groups = _split_groups(opts, ordered, kept, coords["label"])
    rejected = ledger.counts(opts.boxes_csv)
    datasets: dict[str | None, dict[str, Any]] = {}
    for name, group in groups.items():
        conversion = {"rows_in": len(rows), "boxes_out": n_out, "rejected": rejected}
        info = {**_info(opts), "split": name, "conversion": conversion}
        datasets[name] = _build(opts, group, kept, coords, extras, info)
        validate_coco(datasets[name], source=f"{opts.out_json} ({name or 'all'})")

    paths = {
        name: (opts.out_json if name is None else opts.stem.parent / f"{opts.stem.name}_{name}.json")
        for name in datasets
    }
    if opts.crops_dir is not None:
        _write_crops(opts, ordered)
    write_all_or_nothing(
        [(opts.rejects_csv, ledger.write_csv)]
        + [(paths[name], lambda p, d=data: atomic_write_json(p, d)) for name, data in datasets.items()]
    )

    categories = {cat: 0 for cat in CATEGORIES.values()}
    for data in datasets.values():
        for cat, count in category_counts(data).items():
            categories[cat] += count
    return ConversionSummary(
        rows_in=len(rows),
        rows_out=n_out,
        rejected=rejected,
        outputs={(name or "all"): path for name, path in paths.items()},
        rejects_csv=opts.rejects_csv,
        images_out=sum(len(d["images"]) for d in datasets.values()),
        categories=categories,
        out_label="boxes out",
        notes=tuple(notes),
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Clump Scout options of ``astrodet convert clumpscout`` (the shared --out/--split/... come from convert.py)."""
    parser.add_argument(
        "--boxes",
        required=True,
        type=Path,
        metavar="CSV",
        help=f"Clump Scout box table with columns {','.join(COLUMNS)}",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--images",
        type=Path,
        metavar="DIR",
        help="folder of the 400x400 PNG cutouts, matched by the table's filename basename",
    )
    source.add_argument(
        "--image-size",
        type=int,
        nargs=2,
        metavar=("W", "H"),
        help="annotation-only: cutout size (e.g. 400 400); no image is read or written",
    )
    parser.add_argument(
        "--frame",
        choices=FRAMES,
        default="crop",
        help="crop: central 200x200 crop, Popp et al.'s frame (default); full: whole cutout",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=0.05,
        help="crop frame: drop boxes closer than this fraction of the crop side to its edge (0.05)",
    )
    parser.add_argument(
        "--keep-empty-images",
        action="store_true",
        help="every PNG in --images becomes an image, with or without boxes (negatives)",
    )
    parser.add_argument(
        "--galaxies",
        type=Path,
        metavar="CSV",
        help="galaxies table (local_ids[, ra, dec, pixel_scale, filename]): adds clump-free "
        "galaxies and their coordinates",
    )


def run(args: argparse.Namespace) -> ConversionSummary:
    return convert_clumpscout(
        args.boxes,
        args.out,
        images_dir=args.images,
        image_size=args.image_size,
        frame=args.frame,
        margin=args.margin,
        keep_empty_images=args.keep_empty_images,
        galaxies_csv=args.galaxies,
        split=args.split,
        seed=args.seed,
        rejects_csv=args.rejects,
    )
