"""Whole-image classification datasets in COCO: one object per cutout whose box is the whole image.

Why COCO for classification: one file format for every astrodet dataset means one validator, one set of split and
provenance conventions and one registration path in each framework. A classification record is an image with a
single annotation: ``bbox = [0, 0, width, height]``, ``category_id`` = its class (ids 1..K in the converter's
category order), and extra fields that keep what the source knew: catalogue columns (``catalog``), vote fractions
(``vote_fractions``, see ``info.vote_columns``), the source row (``source_row``) and the original label text
(``label_text``). Image records carry ``object_id`` (the split key) and, when known, ``ra``/``dec``/``pixel_scale``/
``bands``. ``info.task`` is ``"classification"``.

This module holds what the classification converters share beyond :mod:`astrodet.data.toolkit` (tables, output
names, the atomic write tail): building and validating such files, splitting by object, writing image files, and
reading cutouts back (PNG/JPEG, ``.npy``, FITS) for the framework adapters.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from PIL import Image

from astrodet.data.coco import CocoBuilder, load_coco, resolve_image_path, validate_coco
from astrodet.data.imaging import FITS_SUFFIXES, UnreadableImage, decode_image, read_fits_image
from astrodet.data.rejects import ConversionSummary, RejectsLedger
from astrodet.data.splits import stratified_split
from astrodet.data.toolkit import ConversionOutputs, ConverterOptions, write_conversion
from astrodet.errors import AstrodetInputError

TASK = "classification"
_PIL_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "TIFF": ".tif", "GIF": ".gif", "BMP": ".bmp"}


@dataclass
class Record:
    """One cutout and its class, before ids are given: the unit every classification converter produces."""

    key: str  # unique object id: the split key and the stem of written image files
    category: str
    row: int  # source row (ledger convention)
    file_name: str  # relative to the output JSON's folder
    width: int
    height: int
    image_fields: dict[str, Any] = field(default_factory=dict)
    annotation_fields: dict[str, Any] = field(default_factory=dict)


def split_records(
    records: Sequence[Record], split: Mapping[str, float] | None, seed: int
) -> dict[str | None, list[Record]]:
    """All records in one group (key None), or per split, stratified by class and deterministic in ``seed``."""
    if split is None:
        return {None: list(records)}
    by_key = {r.key: r for r in records}
    groups = stratified_split({r.key: r.category for r in records}, split, seed)
    return {name: sorted((by_key[k] for k in keys), key=lambda r: r.key) for name, keys in groups.items()}


def balance_records(records: Sequence[Record], seed: int, ledger: RejectsLedger, source: str) -> list[Record]:
    """Downsample every class to the smallest one's size; the removed rows go to the ledger as ``balanced_out``.

    Which rows stay is decided by the same seeded hash rank as the splits, so it does not depend on input order.
    """
    by_class: dict[str, list[Record]] = {}
    for record in records:
        by_class.setdefault(record.category, []).append(record)
    if len(by_class) < 2:
        return list(records)
    smallest = min(len(v) for v in by_class.values())
    kept: list[Record] = []
    for category, members in by_class.items():
        ranked = stratified_split({r.key: category for r in members}, {"keep": 1.0}, seed)["keep"]
        keep = set(ranked[:smallest])
        for record in members:
            if record.key in keep:
                kept.append(record)
            else:
                ledger.add(
                    source,
                    record.row,
                    "balanced_out",
                    f"class {category!r} downsampled to {smallest} (the smallest class) by --balance",
                    {"object_id": record.key},
                )
    return sorted(kept, key=lambda r: r.key)


def build_dataset(records: Sequence[Record], categories: Sequence[str], info: Mapping[str, Any]) -> dict[str, Any]:
    """A validated COCO dict: categories 1..K in order, images sorted by key, one whole-image box each."""
    builder = CocoBuilder({**info, "task": TASK})
    ids = {name: builder.add_category(name, category_id=i + 1) for i, name in enumerate(categories)}
    for record in sorted(records, key=lambda r: r.key):
        image_id = builder.add_image(
            record.file_name, record.width, record.height, object_id=record.key, **record.image_fields
        )
        builder.add_annotation(
            image_id,
            (0.0, 0.0, float(record.width), float(record.height)),
            ids[record.category],
            source_row=record.row,
            **record.annotation_fields,
        )
    data = builder.to_dict()
    counts = Counter(r.category for r in records)
    data["info"]["counts"] = {"images": len(data["images"]), "classes": {c: counts.get(c, 0) for c in categories}}
    validate_coco(data)
    return data


def finish(
    outputs: ConversionOutputs,
    options: ConverterOptions,
    records: Sequence[Record],
    categories: Sequence[str],
    info: Mapping[str, Any],
    ledger: RejectsLedger,
    *,
    source: Path,
    rows_in: int,
    notes: Sequence[str] = (),
    groups: Mapping[str | None, Sequence[Record]] | None = None,
) -> ConversionSummary:
    """Split (by ``options``, unless ``groups`` are given), build and write: the tail of every classification
    converter."""
    groups = groups if groups is not None else split_records(records, options.split, options.seed)
    conversion = {"rows_in": rows_in, "images_out": len(records), "rejected": ledger.counts(source)}
    datasets = {
        name: build_dataset(group, categories, {**info, "split": name, "conversion": conversion})
        for name, group in groups.items()
    }
    return write_conversion(
        outputs,
        datasets,
        ledger,
        source=source,
        rows_in=rows_in,
        rows_out=len(records),
        out_label="images out",
        notes=notes,
    )


def read_classification_coco(
    json_file: str | os.PathLike[str],
) -> tuple[list[dict[str, Any]], list[str], dict[str, Any]]:
    """``(records, class names, info)`` of a whole-image COCO file, for the framework adapters' datasets.

    Each record: ``file_name`` (absolute), ``image_id``, ``width``, ``height``, ``label`` (0-based index in category-id
    order), ``object_id`` and, when present, ``vote_fractions``. A file that is not one-object-per-image is refused.
    """
    data = load_coco(json_file)
    categories = sorted(data["categories"], key=lambda c: c["id"])
    index = {c["id"]: i for i, c in enumerate(categories)}
    by_image: dict[int, list[dict[str, Any]]] = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    records = []
    for image in data["images"]:
        anns = by_image.get(image["id"], [])
        if len(anns) != 1:
            raise AstrodetInputError(
                f"{json_file}: image {image['file_name']!r} has {len(anns)} annotations; a whole-image classification "
                "file has exactly one per image (astrodet convert catalog / galaxyzoo write such files)"
            )
        ann = anns[0]
        record = {
            "file_name": str(resolve_image_path(json_file, image["file_name"], data.get("info"))),
            "image_id": image["id"],
            "width": image["width"],
            "height": image["height"],
            "label": index[ann["category_id"]],
            "object_id": str(image.get("object_id", image["id"])),
        }
        if "vote_fractions" in ann:
            record["vote_fractions"] = list(ann["vote_fractions"])
        records.append(record)
    return records, [c["name"] for c in categories], dict(data.get("info") or {})


def vote_class_columns(info: Mapping[str, Any]) -> dict[str, str] | None:
    """The vote column -> class mapping a Galaxy Zoo conversion used (for scoring vote models as classifiers)."""
    mapping = (info.get("options") or {}).get("mapping") or {}
    return dict(mapping["columns"]) if mapping.get("columns") else None


# --- image files -------------------------------------------------------------------------------------------------


def probe_image(path: Path) -> tuple[str | None, str, tuple[int, int] | None, str | None]:
    """``(reason, message, (width, height), format)``; reason None when the file decodes in full as an image or
    array (:func:`astrodet.data.imaging.decode_image`), else ``missing_image`` or ``unreadable_image``."""
    if not path.is_file():
        return "missing_image", f"no image file {path}", None, None
    try:
        size, fmt = decode_image(path)
    except UnreadableImage as err:
        return "unreadable_image", f"{path}: cannot be read as an image ({err.problem})", None, None
    return None, "", size, fmt


def load_cutout(path: str | os.PathLike[str]) -> np.ndarray:
    """A cutout as an ``(H, W, C)`` float32 array in the file's own units (0-255 for PNG/JPEG).

    PNG/JPEG are read in RGB (greyscale kept as one channel); ``.npy`` arrays are ``(H, W)`` or ``(H, W, C)``;
    FITS holds a 2-D image or a ``(C, H, W)`` cube (astronomy's band-first order), transposed here. Rows are used as
    stored (FITS cubes astrodet writes are already flipped to PNG orientation: row 0 at the top).
    """
    file = Path(path)
    name = file.name.lower()
    if name.endswith(".npy"):
        array = np.load(file, allow_pickle=False)
    elif name.endswith(FITS_SUFFIXES):
        array, _ = read_fits_image(file)
        if array.ndim == 3:
            array = np.transpose(array, (1, 2, 0))
    else:
        with Image.open(file) as image:
            mode = "L" if image.mode in ("L", "I", "F", "I;16") else "RGB"
            array = np.asarray(image.convert(mode))
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise AstrodetInputError(f"{file}: expected an (H, W[, C]) image, got shape {array.shape}")
    return np.ascontiguousarray(array)


def centre_crop_box(width: int, height: int, size: int) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` of the central ``size`` x ``size`` crop (the extra pixel goes right/down)."""
    left, top = (width - size) // 2, (height - size) // 2
    return left, top, left + size, top + size


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def copy_image(
    outputs: ConversionOutputs, source: Path, stem: str, *, crop: int | None = None, resize: int | None = None
) -> tuple[str, tuple[int, int]]:
    """Write ``source`` into the run's images folder as ``<stem><ext>``: bytes unchanged (extension fixed to the real
    format) when neither ``crop`` nor ``resize`` is set, else the central crop and/or a square resize as PNG.
    Returns ``(file_name, (width, height))``; deterministic, and a rerun takes over unchanged files."""
    with Image.open(source) as image:
        image.load()
        fmt = image.format or "PNG"
        if crop is None and resize is None:
            data = source.read_bytes()
            name = f"{stem}{_PIL_EXTENSIONS.get(fmt, source.suffix.lower())}"
            size = image.size
        else:
            out = image.convert("RGB") if image.mode not in ("RGB", "L") else image
            if crop is not None:
                out = out.crop(centre_crop_box(*out.size, crop))
            if resize is not None:
                out = out.resize((resize, resize), Image.Resampling.LANCZOS)
            data = _png(out)
            name = f"{stem}.png"
            size = out.size
    return outputs.write_image(name, data), size


def array_image_bytes(array: np.ndarray, fmt: str, header: fits.Header | None = None) -> bytes:
    """An ``(H, W, C)`` cutout as file bytes: ``png`` (uint8, 1 or 3 channels), ``npy`` (float32) or ``fits``
    (C, H, W)."""
    if fmt == "png":
        data = np.asarray(array)
        if data.dtype != np.uint8:
            raise ValueError(f"PNG cutouts must be uint8, got {data.dtype}")
        if data.shape[2] not in (1, 3):
            raise AstrodetInputError(f"PNG holds 1 or 3 bands, got {data.shape[2]}: use --output-format npy or fits")
        return _png(Image.fromarray(data[:, :, 0] if data.shape[2] == 1 else data))
    buffer = io.BytesIO()
    if fmt == "npy":
        np.save(buffer, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    elif fmt == "fits":
        cube = np.ascontiguousarray(np.transpose(np.asarray(array, dtype=np.float32), (2, 0, 1)))
        fits.HDUList([fits.PrimaryHDU(data=cube, header=header)]).writeto(buffer, output_verify="exception")
    else:
        raise ValueError(f"unknown cutout format {fmt!r}; use png, npy or fits")
    return buffer.getvalue()


def crop_and_resize(image: np.ndarray, crop: int, size: int) -> np.ndarray:
    """The central ``crop`` x ``crop`` (when the image is larger; 0 = none), then a square resize to ``size``.

    Bilinear with antialiasing (torch), on float arrays of any band count: the one geometry both adapters apply,
    so a model sees the same pixels in Detectron2 and MMDetection.
    """
    import torch
    import torch.nn.functional as F

    h, w = image.shape[:2]
    if crop and min(h, w) > crop:
        x0, y0 = (w - crop) // 2, (h - crop) // 2
        image = image[y0 : y0 + crop, x0 : x0 + crop]
    if image.shape[:2] != (size, size):
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))[None]
        tensor = F.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        image = tensor[0].numpy().transpose(1, 2, 0)
    return np.ascontiguousarray(image, dtype=np.float32)
