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

The table's format and row checks live in :mod:`astrodet.data.clumpscout_table`, the image side (cutout checks,
galaxies table, crops) in :mod:`astrodet.data.clumpscout_images`, what every converter shares in
:mod:`astrodet.data.toolkit`.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from astrodet import __version__
from astrodet.data.clumpscout_images import ImageChecker, SourceImage, add_empty_pngs, add_galaxies, write_crops
from astrodet.data.clumpscout_table import (
    CATEGORIES,
    COLUMNS,
    COORDS,
    CROP_SIZE,
    DEFAULT_SOURCE_SIZE,
    FRAMES,
    IMAGE_UNUSABLE,
    CheckedRows,
    Frame,
    check_rows,
)
from astrodet.data.coco import CocoBuilder, category_counts, validate_coco
from astrodet.data.rejects import ConversionSummary, RejectsLedger
from astrodet.data.splits import assign_splits
from astrodet.data.toolkit import (
    ConversionOutputs,
    ConverterOptions,
    CsvTable,
    build_options,
    cell_value,
    id_value,
    optional_path,
    options_from_args,
    read_csv,
    relative_to_json,
    write_conversion,
)
from astrodet.errors import AstrodetInputError

# annotation keys an extra table column may not overwrite; such a column is stored as "table_<name>"
RESERVED_ANNOTATION_KEYS = {"id", "image_id", "category_id", "bbox", "area", "iscrowd", "segmentation", "source_row"}


@dataclass(kw_only=True)
class ClumpScoutOptions(ConverterOptions):
    """Options of ``astrodet convert clumpscout`` (field names = argparse dests), checked on construction."""

    images_dir: Path | None = None  # the PNG cutouts, matched by the table's filename basename
    image_size: tuple[int, int] | None = None  # (W, H) of the cutouts; alone: an annotation-only conversion
    frame: str = "crop"  # crop: Popp's central 200x200 crop; full: the whole cutout
    margin: float = 0.05  # crop frame: fraction of the crop side a box must keep from the edge
    keep_empty_images: bool = False  # every PNG in images_dir becomes an image (negatives)
    galaxies_csv: Path | None = None  # galaxies table: clump-free galaxies and coordinates
    geometry: Frame = field(init=False)

    def __post_init__(self) -> None:
        if self.frame not in FRAMES:
            raise AstrodetInputError(f"frame must be one of {', '.join(FRAMES)}, got {self.frame!r}")
        margin = self.margin
        if not (isinstance(margin, int | float) and math.isfinite(margin) and 0 <= margin < 0.5):
            raise AstrodetInputError(f"margin must be a fraction of the crop side in [0, 0.5), got {margin!r}")
        if self.images_dir is None and self.image_size is None:
            raise AstrodetInputError("give an images folder (--images DIR) or the cutout size (--image-size W H)")
        if self.keep_empty_images and self.images_dir is None:
            raise AstrodetInputError("--keep-empty-images needs --images DIR (the PNGs to keep)")
        size = tuple(int(v) for v in (self.image_size if self.image_size is not None else DEFAULT_SOURCE_SIZE))
        if len(size) != 2 or any(v < CROP_SIZE or (v - CROP_SIZE) % 2 for v in size):
            raise AstrodetInputError(
                f"image size must be W H with both >= {CROP_SIZE} and W - {CROP_SIZE}, H - {CROP_SIZE} even "
                f"(the table's boxes are in the central {CROP_SIZE}x{CROP_SIZE} crop), got {self.image_size!r}"
            )
        self.images_dir = optional_path(self.images_dir)
        if self.images_dir is not None and not self.images_dir.is_dir():
            raise AstrodetInputError(f"{self.images_dir}: images folder not found")
        self.galaxies_csv = optional_path(self.galaxies_csv)
        self.margin = float(margin)
        self.geometry = Frame(self.frame, (size[0], size[1]), self.margin)
        super().__post_init__()


def galaxy_stratum(n_boxes: int, has_odd: bool) -> tuple[str, bool]:
    """Split strata: clumps-per-galaxy bucket x presence of odd clumps."""
    bucket = "0" if n_boxes == 0 else "1" if n_boxes == 1 else "2" if n_boxes == 2 else "3-4" if n_boxes <= 4 else "5+"
    return bucket, has_odd


def _split_groups(
    opts: ClumpScoutOptions, ordered: list[SourceImage], kept: dict[str, list[int]], labels: np.ndarray
) -> dict[str | None, list[SourceImage]]:
    """Images per output file: all in one (key None), or per split by galaxy, stratified by its boxes."""
    if opts.split is None:
        return {None: ordered}
    n_boxes: dict[str, int] = {}
    odd: dict[str, bool] = {}
    for image in ordered:
        rows_of = kept.get(image.name, [])
        n_boxes[image.galaxy_id] = n_boxes.get(image.galaxy_id, 0) + len(rows_of)
        odd[image.galaxy_id] = odd.get(image.galaxy_id, False) or any(labels[i] == 2 for i in rows_of)
    strata = {g: galaxy_stratum(n_boxes[g], odd[g]) for g in n_boxes}
    assignment = assign_splits(strata, opts.split, opts.seed)
    return {name: [im for im in ordered if assignment[im.galaxy_id] == name] for name in opts.split}


def _info(boxes_csv: Path, opts: ClumpScoutOptions) -> dict[str, Any]:
    """Provenance for ``info``: sources as given, options, frame; no timestamp (reruns give identical files)."""
    frame = opts.geometry
    return {
        "description": "Galaxy Zoo: Clump Scout clumps (Popp et al. 2024 frame), converted by astrodet",
        "converter": "astrodet.data.clumpscout",
        "astrodet_version": __version__,
        "sources": {
            "boxes_csv": str(boxes_csv),
            "galaxies_csv": str(opts.galaxies_csv) if opts.galaxies_csv else None,
            "images_dir": str(opts.images_dir) if opts.images_dir else None,
        },
        "options": {
            "frame": frame.name,
            "margin": opts.margin,
            "image_size": list(frame.source_size),
            "keep_empty_images": opts.keep_empty_images,
            "split": opts.split,
            "seed": opts.seed,
        },
        "frame": {
            "name": frame.name,
            "crop_origin": list(frame.crop_origin),
            "crop_size": CROP_SIZE,
            "source_size": list(frame.source_size),
        },
    }


def _build(
    outputs: ConversionOutputs,
    opts: ClumpScoutOptions,
    images: list[SourceImage],
    rows: CheckedRows,
    kept: dict[str, list[int]],
    numbers: list[int],
    extras: dict[str, list[Any]],
    info: dict[str, Any],
) -> dict[str, Any]:
    """One COCO dict: the images (written crops or the source cutouts) and their kept boxes in the output frame."""
    builder = CocoBuilder(info)
    for cid, name in CATEGORIES.items():
        builder.add_category(name, category_id=cid, supercategory="clump")
    ox, oy = opts.geometry.offset
    width, height = opts.geometry.output_size
    out_json = outputs.out_json
    x1, x2, y1, y2, labels = (rows.coords[c] for c in (*COORDS, "label"))
    for image in images:
        extra: dict[str, Any] = {"galaxy_id": image.galaxy_id, **image.fields}
        if opts.images_dir is None:
            file_name = image.name
        elif outputs.images is not None:
            file_name = outputs.image_file_name(image.name)
            extra["source_file_name"] = relative_to_json(opts.images_dir / image.name, out_json)
        else:
            file_name = relative_to_json(opts.images_dir / image.name, out_json)
        image_id = builder.add_image(file_name, width, height, **extra)
        for i in kept.get(image.name, ()):
            bbox = (x1[i] + ox, y1[i] + oy, x2[i] - x1[i], y2[i] - y1[i])
            row_extra = {name: values[i] for name, values in extras.items()}
            builder.add_annotation(image_id, bbox, int(labels[i]), source_row=numbers[i], **row_extra)
    data = builder.to_dict()
    data["info"]["counts"] = {  # of this file; info["conversion"] has the whole run's row accounting
        "images": len(data["images"]),
        "images_without_boxes": len(data["images"]) - len({a["image_id"] for a in data["annotations"]}),
        "boxes": category_counts(data),
    }
    return data


def _row_images(table: CsvTable, rows: CheckedRows) -> dict[str, SourceImage]:
    """An image for every cutout a row names whose image is usable, even when all its boxes were dropped."""
    subject = table.header.index("image_id")
    images: dict[str, SourceImage] = {}
    for i, reason in enumerate(rows.reasons):
        name = rows.names[i]
        if reason not in IMAGE_UNUSABLE and name not in images:
            fields = {"subject_id": id_value(table.rows[i][subject])}
            images[name] = SourceImage(name, rows.galaxy_of[name], fields)
    return images


def _extra_columns(table: CsvTable, rows: CheckedRows) -> dict[str, list[Any]]:
    """Columns beyond the standard ones, as JSON values per kept row (None for rejected rows)."""
    return {
        (f"table_{h}" if h in RESERVED_ANNOTATION_KEYS else h): [
            cell_value(row[j]) if rows.reasons[i] is None else None for i, row in enumerate(table.rows)
        ]
        for j, h in enumerate(table.header)
        if h not in COLUMNS
    }


def convert_clumpscout(
    boxes_csv: str | os.PathLike[str],
    out_json: str | os.PathLike[str],
    options: ClumpScoutOptions | None = None,
    **fields: Any,
) -> ConversionSummary:
    """Convert a Clump Scout box table to COCO (one file, or one per split) and a rejects report.

    ``options`` is a :class:`ClumpScoutOptions`, or give its fields as keywords. ``images_dir`` holds the PNG
    cutouts (looked up by the table's filename basename), which must be ``image_size`` (W, H; default 400x400);
    without ``images_dir``, ``image_size`` alone gives an annotation-only conversion that reads and writes no image
    (``file_name`` = the table's basename). ``split`` (e.g. ``"train=0.7,val=0.2,test=0.1"``) splits by galaxy,
    stratified by clump count and odd-clump presence, into ``<out_stem>_<name>.json``. The outputs are published
    as one unit (:class:`astrodet.data.toolkit.ConversionOutputs`: an interrupted run leaves the previous set) and
    none may be an input; the returned summary's numbers add up (rows in = boxes out + rejected) or it raises.
    """
    opts = build_options(ClumpScoutOptions, options, fields, "convert_clumpscout")
    path, out = Path(boxes_csv), Path(out_json)
    outputs = ConversionOutputs(
        out,
        opts,
        inputs=[path, opts.galaxies_csv],
        input_folders=[opts.images_dir],
        writes_images=opts.geometry.name == "crop" and opts.images_dir is not None,
    )
    with outputs:
        return _convert(path, outputs, opts)


def _convert(path: Path, outputs: ConversionOutputs, opts: ClumpScoutOptions) -> ConversionSummary:
    out = outputs.out_json
    table = read_csv(path, ",".join(COLUMNS))
    missing = [c for c in COLUMNS if c not in table.header]
    if missing:
        raise AstrodetInputError(
            f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(COLUMNS)}, "
            f"got {','.join(table.header)}"
        )
    checker = ImageChecker(opts.images_dir, opts.geometry.source_size)
    rows = check_rows(table, opts.geometry, checker)
    ledger = RejectsLedger()
    kept: dict[str, list[int]] = {}
    for i, reason in enumerate(rows.reasons):
        if reason is None:
            kept.setdefault(rows.names[i], []).append(i)
        else:
            ledger.add(path, table.numbers[i], reason, rows.messages[i], table.values(i))
    n_out = sum(len(v) for v in kept.values())

    images = _row_images(table, rows)
    notes = []
    if opts.galaxies_csv is not None:
        notes.append(add_galaxies(opts.galaxies_csv, images, checker, ledger))
    if opts.keep_empty_images and opts.images_dir is not None:
        notes.append(add_empty_pngs(opts.images_dir, images, checker))

    extras = _extra_columns(table, rows)
    ordered = sorted(images.values(), key=lambda im: im.name)
    conversion = {"rows_in": len(table.rows), "boxes_out": n_out, "rejected": ledger.counts(path)}
    datasets: dict[str | None, dict[str, Any]] = {}
    for name, group in _split_groups(opts, ordered, kept, rows.coords["label"]).items():
        info = {**_info(path, opts), "split": name, "conversion": conversion}
        datasets[name] = _build(outputs, opts, group, rows, kept, table.numbers, extras, info)
        validate_coco(datasets[name], source=f"{out} ({name or 'all'})")
    if outputs.images is not None and opts.images_dir is not None:
        write_crops(opts.images_dir, outputs, [image.name for image in ordered], opts.geometry.crop_origin)
    return write_conversion(
        outputs,
        datasets,
        ledger,
        source=path,
        rows_in=len(table.rows),
        rows_out=n_out,
        out_label="boxes out",
        notes=notes,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Clump Scout options of ``astrodet convert clumpscout`` (the shared --out/--split/... come from convert.py)."""
    boxes_help = f"Clump Scout box table with columns {','.join(COLUMNS)}"
    parser.add_argument("--boxes", required=True, type=Path, metavar="CSV", help=boxes_help)
    source = parser.add_mutually_exclusive_group(required=True)
    images_help = "folder of the 400x400 PNG cutouts, matched by the table's filename basename"
    source.add_argument("--images", dest="images_dir", type=Path, metavar="DIR", help=images_help)
    size_help = "annotation-only: cutout size (e.g. 400 400); no image is read or written"
    source.add_argument("--image-size", type=int, nargs=2, metavar=("W", "H"), help=size_help)
    frame_help = "crop: central 200x200 crop, Popp et al.'s frame (default); full: whole cutout"
    parser.add_argument("--frame", choices=FRAMES, default="crop", help=frame_help)
    margin_help = "crop frame: drop boxes closer than this fraction of the crop side to its edge (0.05)"
    parser.add_argument("--margin", type=float, default=0.05, help=margin_help)
    empty_help = "every PNG in --images becomes an image, with or without boxes (negatives)"
    parser.add_argument("--keep-empty-images", action="store_true", help=empty_help)
    galaxies_help = (
        "galaxies table (local_ids[, ra, dec, pixel_scale, filename]): adds clump-free galaxies and their coordinates"
    )
    parser.add_argument("--galaxies", dest="galaxies_csv", type=Path, metavar="CSV", help=galaxies_help)


def run(args: argparse.Namespace) -> ConversionSummary:
    return convert_clumpscout(args.boxes, args.out, options_from_args(ClumpScoutOptions, args))
