"""COCO detection datasets: the one format every astrodet converter writes and every trainer and evaluator reads.

Why one format: Detectron2, MMDetection and pycocotools all read COCO JSON, so converting each catalogue once into
validated COCO keeps the frameworks thin and the evaluation comparable.

Conventions of the files astrodet writes (checked by :func:`validate_coco`):

- ``images[].file_name`` is relative to the folder holding the JSON file, joined through ``info.image_root``
  (always ``"."``: the JSON's own folder); :func:`resolve_image_path` does the join. Datasets can be moved whole.
- ids are 1..N in the order records are added; converters add them in a sorted, input-order-independent order,
  and ``info`` holds no timestamp, so the same inputs give byte-identical files.
- ``bbox`` is ``[x, y, width, height]`` in pixels, origin at the top-left corner of the top-left pixel (x right,
  y down), width and height > 0, the box inside the image (to within 1e-3 px). ``area`` is the box area
  (``width * height``; no masks), ``iscrowd`` is 0.
- Images may carry astronomy fields when known: ``ra`` and ``dec`` (degrees, image centre), ``pixel_scale``
  (arcsec/px), ``bands`` (band names in channel order), plus converter-specific fields such as ``galaxy_id``.
  Annotations keep extra catalogue fields (e.g. ``flux``) next to the COCO ones.
- ``info`` records ``image_root: "."`` and the converter's provenance: ``converter``, ``sources`` (input files as
  given), ``options`` and ``counts``.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from astrodet.errors import AstrodetInputError
from astrodet.io import atomic_write_json

BBOX_TOLERANCE = 1e-3  # px: boxes may touch the image edge up to float rounding
IMAGE_KEYS = ("id", "file_name", "width", "height")
ANNOTATION_KEYS = ("id", "image_id", "category_id", "bbox", "area", "iscrowd")
CATEGORY_KEYS = ("id", "name")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def bbox_problem(bbox: object, width: int, height: int, tolerance: float = BBOX_TOLERANCE) -> str | None:
    """Why ``bbox`` (xywh) is not a valid box inside a ``width`` x ``height`` image, or None if it is."""
    if not isinstance(bbox, list | tuple) or len(bbox) != 4:
        return f"bbox must be a list [x, y, width, height], got {bbox!r}"
    for name, value in zip(("x", "y", "width", "height"), bbox, strict=True):
        if not _is_number(value):
            return f"bbox {name} must be a number, got {value!r}"
        if not math.isfinite(value):
            return f"bbox {name} must be finite, got {value}"
    x, y, w, h = (float(v) for v in bbox)
    if w <= 0:
        return f"bbox width must be > 0, got {w}"
    if h <= 0:
        return f"bbox height must be > 0, got {h}"
    if x < -tolerance or y < -tolerance or x + w > width + tolerance or y + h > height + tolerance:
        return f"bbox {[x, y, w, h]} is outside the {width}x{height} image"
    return None


def _astronomy_problem(record: Mapping[str, Any]) -> str | None:
    """Check the optional astronomy fields of an image record."""
    checks = (("ra", 0.0, 360.0), ("dec", -90.0, 90.0))
    for key, low, high in checks:
        if key in record:
            value = record[key]
            if not _is_number(value) or not math.isfinite(value) or not low <= value <= high:
                return f"{key} must be a number of degrees in [{low:g}, {high:g}], got {value!r}"
    if "pixel_scale" in record:
        value = record["pixel_scale"]
        if not _is_number(value) or not math.isfinite(value) or value <= 0:
            return f"pixel_scale must be a positive number of arcsec/px, got {value!r}"
    if "bands" in record:
        bands = record["bands"]
        if not isinstance(bands, list) or not bands or not all(isinstance(b, str) and b for b in bands):
            return f"bands must be a non-empty list of band names, got {bands!r}"
    return None


class CocoBuilder:
    """Accumulates categories, images and annotations with ids 1..N in insertion order, checking each as added."""

    def __init__(self, info: Mapping[str, Any] | None = None) -> None:
        self.info: dict[str, Any] = {"image_root": ".", **(info or {})}
        self.categories: list[dict[str, Any]] = []
        self.images: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []
        self._category_ids: set[int] = set()
        self._image_sizes: dict[int, tuple[int, int]] = {}

    def add_category(self, name: str, *, category_id: int | None = None, supercategory: str | None = None) -> int:
        """Add a category; its id is ``category_id`` or the next free integer."""
        if not isinstance(name, str) or not name:
            raise AstrodetInputError(f"category name must be a non-empty string, got {name!r}")
        if any(c["name"] == name for c in self.categories):
            raise AstrodetInputError(f"category {name!r} added twice")
        cid = category_id if category_id is not None else max(self._category_ids, default=0) + 1
        if not _is_int(cid) or cid <= 0 or cid in self._category_ids:
            raise AstrodetInputError(f"category {name!r}: id must be a new positive integer, got {cid!r}")
        self._category_ids.add(cid)
        self.categories.append({"id": cid, "name": name, "supercategory": supercategory or name})
        return cid

    def add_image(self, file_name: str, width: int, height: int, **extra: Any) -> int:
        """Add an image record; ``extra`` fields with value None are left out (unknown, not null)."""
        if not _is_int(width) or not _is_int(height) or width <= 0 or height <= 0:
            raise AstrodetInputError(f"image {file_name!r}: width and height must be positive integers")
        image_id = len(self.images) + 1
        record = {"id": image_id, "file_name": str(file_name), "width": width, "height": height}
        record.update({k: v for k, v in extra.items() if v is not None and k not in record})
        problem = _astronomy_problem(record)
        if problem:
            raise AstrodetInputError(f"image {file_name!r}: {problem}")
        self.images.append(record)
        self._image_sizes[image_id] = (width, height)
        return image_id

    def add_annotation(self, image_id: int, bbox_xywh: Sequence[float], category_id: int, **extra: Any) -> int:
        """Add a box; ``area`` is width * height and ``iscrowd`` 0 unless given in ``extra``."""
        if image_id not in self._image_sizes:
            raise AstrodetInputError(f"annotation: unknown image_id {image_id!r}")
        if category_id not in self._category_ids:
            raise AstrodetInputError(f"annotation on image {image_id}: unknown category_id {category_id!r}")
        bbox = [float(v) for v in bbox_xywh]
        problem = bbox_problem(bbox, *self._image_sizes[image_id])
        if problem:
            raise AstrodetInputError(f"annotation on image {image_id}: {problem}")
        ann_id = len(self.annotations) + 1
        record: dict[str, Any] = {
            "id": ann_id,
            "image_id": image_id,
            "category_id": category_id,
            "bbox": bbox,
            "area": bbox[2] * bbox[3],
            "iscrowd": 0,
        }
        record.update({k: v for k, v in extra.items() if v is not None and k not in ("id", "image_id", "bbox")})
        self.annotations.append(record)
        return ann_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "info": dict(self.info),
            "licenses": [],
            "images": list(self.images),
            "annotations": list(self.annotations),
            "categories": list(self.categories),
        }


def _entry(section: str, index: int, record: object) -> str:
    rid = record.get("id") if isinstance(record, dict) else None
    return f"{section}[{index}]" + (f" (id {rid})" if rid is not None else "")


def _check_records(data: Mapping[str, Any], section: str, keys: Sequence[str], source: str) -> list[dict[str, Any]]:
    records = data.get(section)
    if not isinstance(records, list):
        raise AstrodetInputError(f"{source}: '{section}' must be a list, got {type(records).__name__}")
    seen: set[int] = set()
    for i, record in enumerate(records):
        where = f"{source}: {_entry(section, i, record)}"
        if not isinstance(record, dict):
            raise AstrodetInputError(f"{where}: must be an object, got {type(record).__name__}")
        missing = [k for k in keys if k not in record]
        if missing:
            raise AstrodetInputError(f"{where}: missing key(s) {', '.join(missing)}")
        if not _is_int(record["id"]):
            raise AstrodetInputError(f"{where}: id must be an integer, got {record['id']!r}")
        if record["id"] in seen:
            raise AstrodetInputError(f"{where}: duplicate id {record['id']}")
        seen.add(record["id"])
    return records


def validate_coco(data: object, source: str = "<COCO data>") -> None:
    """Raise :class:`AstrodetInputError` naming the first bad entry; return None if ``data`` is a valid dataset."""
    source = str(source)
    if not isinstance(data, dict):
        raise AstrodetInputError(f"{source}: a COCO dataset must be a JSON object, got {type(data).__name__}")
    missing = [k for k in ("images", "annotations", "categories") if k not in data]
    if missing:
        raise AstrodetInputError(f"{source}: missing key(s) {', '.join(missing)}")
    if "info" in data and not isinstance(data["info"], dict):
        raise AstrodetInputError(f"{source}: 'info' must be an object")

    categories = _check_records(data, "categories", CATEGORY_KEYS, source)
    names: set[str] = set()
    for i, cat in enumerate(categories):
        if not isinstance(cat["name"], str) or not cat["name"] or cat["name"] in names:
            raise AstrodetInputError(
                f"{source}: {_entry('categories', i, cat)}: name must be a unique non-empty string, got {cat['name']!r}"
            )
        names.add(cat["name"])
    category_ids = {cat["id"] for cat in categories}

    images = _check_records(data, "images", IMAGE_KEYS, source)
    sizes: dict[int, tuple[int, int]] = {}
    file_names: set[str] = set()
    for i, img in enumerate(images):
        where = f"{source}: {_entry('images', i, img)}"
        if not isinstance(img["file_name"], str) or not img["file_name"]:
            raise AstrodetInputError(f"{where}: file_name must be a non-empty string, got {img['file_name']!r}")
        if img["file_name"] in file_names:
            raise AstrodetInputError(f"{where}: file_name {img['file_name']!r} used by an earlier image")
        file_names.add(img["file_name"])
        for key in ("width", "height"):
            if not _is_int(img[key]) or img[key] <= 0:
                raise AstrodetInputError(f"{where}: {key} must be a positive integer, got {img[key]!r}")
        problem = _astronomy_problem(img)
        if problem:
            raise AstrodetInputError(f"{where}: {problem}")
        sizes[img["id"]] = (img["width"], img["height"])

    annotations = _check_records(data, "annotations", ANNOTATION_KEYS, source)
    for i, ann in enumerate(annotations):
        where = f"{source}: {_entry('annotations', i, ann)}"
        if not _is_int(ann["image_id"]) or ann["image_id"] not in sizes:
            raise AstrodetInputError(f"{where}: image_id {ann['image_id']!r} is not the id of an image")
        if not _is_int(ann["category_id"]) or ann["category_id"] not in category_ids:
            raise AstrodetInputError(f"{where}: category_id {ann['category_id']!r} is not the id of a category")
        problem = bbox_problem(ann["bbox"], *sizes[ann["image_id"]])
        if problem:
            raise AstrodetInputError(f"{where}: {problem}")
        area = ann["area"]
        if not _is_number(area) or not math.isfinite(area) or area < 0:
            raise AstrodetInputError(f"{where}: area must be a finite number >= 0, got {area!r}")
        if not _is_int(ann["iscrowd"]) or ann["iscrowd"] not in (0, 1):
            raise AstrodetInputError(f"{where}: iscrowd must be 0 or 1, got {ann['iscrowd']!r}")


def write_coco(data: Mapping[str, Any], path: str | os.PathLike[str], indent: int | None = None) -> Path:
    """Validate, then write atomically: a COCO file on disk is always whole and valid."""
    validate_coco(data, source=str(path))
    atomic_write_json(path, data, indent=indent)
    return Path(path)


def load_coco(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a COCO file; every problem is an :class:`AstrodetInputError` naming the file."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise AstrodetInputError(f"{path}: no such COCO file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AstrodetInputError(f"{path}: not valid JSON: {err}") from None
    validate_coco(data, source=str(path))
    return data


def resolve_image_path(
    json_path: str | os.PathLike[str], file_name: str, info: Mapping[str, Any] | None = None
) -> Path:
    """Where an image of a COCO file lives: the JSON's folder / ``info.image_root`` / ``file_name``."""
    root = (info or {}).get("image_root", ".")
    return Path(json_path).parent / root / file_name


def category_counts(data: Mapping[str, Any]) -> dict[str, int]:
    """Annotations per category name, in category order (categories without boxes count 0)."""
    counter = Counter(ann["category_id"] for ann in data["annotations"])
    return {cat["name"]: counter.get(cat["id"], 0) for cat in data["categories"]}
