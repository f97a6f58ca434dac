"""The one Detectron2 dataset registrar: astrodet's COCO files and the catalogue's named datasets.

Why one: detection and whole-image classification files are both COCO files written by astrodet's converters
(told apart by ``info.task == "classification"``), and the catalogue's datasets (:mod:`astrodet.data.catalogue`)
are both kinds too, so one key (``ASTRODET.REGISTER``) and one set of names (``astrodet_<name>_<split>``) cover
them. Importing the package registers every catalogue split lazily: nothing is built and the shared sample data is
not read until a split's records are asked for or :func:`prepare_datasets` names it. ``file_name`` in astrodet's
COCO files is relative to the JSON's folder.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from detectron2.config import CfgNode
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import load_coco_json
from detectron2.structures import BoxMode

from astrodet.data import catalogue
from astrodet.data.coco import load_coco
from astrodet.data.wholeimage import TASK as CLASSIFICATION
from astrodet.data.wholeimage import read_classification_coco, vote_class_columns
from astrodet.errors import AstrodetInputError

# Annotation fields astrodet's converters add that evaluation may use (e.g. brightness bins).
EXTRA_ANNOTATION_KEYS: list[str] = ["flux", "mag", "source_row"]


def catalogue_dataset_name(name: str, split: str) -> str:
    """``astrodet_default_train``, ``astrodet_tiny_val``, ``astrodet_perseus_test``, ..."""
    return f"astrodet_{name}_{split}"


def load_classification_records(json_file: str | Path) -> list[dict[str, Any]]:
    """Detectron2 dataset dicts of a whole-image COCO file (:func:`read_classification_coco`'s records).

    Each dict also carries the whole-image box as ``annotations`` so Detectron2's generic dataset code (empty-image
    filtering, class histograms) works unchanged.
    """
    records, _, _ = read_classification_coco(json_file)
    for record in records:
        box = [0.0, 0.0, float(record["width"]), float(record["height"])]
        record["annotations"] = [
            {"bbox": box, "bbox_mode": BoxMode.XYWH_ABS, "category_id": record["label"], "iscrowd": 0}
        ]
    return records


def _load_records(dataset_name: str, json_file: Path, task: str) -> list[dict[str, Any]]:
    if task == CLASSIFICATION:
        return load_classification_records(json_file)
    records = load_coco_json(
        str(json_file), str(json_file.parent), dataset_name, extra_annotation_keys=EXTRA_ANNOTATION_KEYS
    )
    return _with_band_fields(records, json_file)


def _with_band_fields(records: list[dict[str, Any]], json_file: Path) -> list[dict[str, Any]]:
    """Copy the image fields FITS records need (``bands``; ``band_files`` made absolute like ``file_name``), which
    load_coco_json does not keep, for FitsDatasetMapper (docs/fits.md)."""
    images = {image["id"]: image for image in load_coco(json_file)["images"]}
    for record in records:
        image = images[record["image_id"]]
        if "bands" in image:
            record["bands"] = list(image["bands"])
        if "band_files" in image:
            record["band_files"] = {band: str(json_file.parent / path) for band, path in image["band_files"].items()}
    return records


def coco_file_metadata(json_file: Path) -> tuple[str, dict[str, Any]]:
    """``(task, metadata)`` of a COCO file (validated): its folder, class names and, for classification, votes."""
    data = load_coco(json_file)
    info = data.get("info") or {}
    metadata: dict[str, Any] = {
        "json_file": str(json_file),
        "image_root": str(json_file.parent),
        "thing_classes": [c["name"] for c in sorted(data["categories"], key=lambda c: c["id"])],
    }
    if info.get("task") != CLASSIFICATION:
        return "detection", metadata
    return CLASSIFICATION, {
        **metadata,
        "vote_columns": info.get("vote_columns"),
        "vote_class_columns": vote_class_columns(info),
    }


def _register(dataset_name: str, load: Callable[[], list[dict[str, Any]]], **metadata: Any) -> None:
    """(Re-)register ``dataset_name`` with fresh metadata: registering again replaces the old entry."""
    if dataset_name in DatasetCatalog.list():
        DatasetCatalog.remove(dataset_name)
    if dataset_name in MetadataCatalog.list():
        MetadataCatalog.remove(dataset_name)
    DatasetCatalog.register(dataset_name, load)
    MetadataCatalog.get(dataset_name).set(**metadata)


def register_coco_file(dataset_name: str, json_file: str | Path, **metadata: Any) -> None:
    """Register one astrodet COCO file, detection or whole-image classification, under ``dataset_name``.

    Class names (and a classification file's vote columns) come from the file; ``metadata`` adds to or overrides
    them. Images are relative to the file's folder.
    """
    path = Path(json_file).resolve()
    task, described = coco_file_metadata(path)
    _register(dataset_name, functools.partial(_load_records, dataset_name, path, task), **{**described, **metadata})


def _load_catalogue_split(dataset_name: str) -> list[dict[str, Any]]:
    json_file, task = ensure_catalogue_split(dataset_name)
    return _load_records(dataset_name, json_file, task)


def register_catalogue_datasets() -> None:
    """Register every split of every catalogue dataset as ``astrodet_<name>_<split>``; building waits for use.

    Only the recipes are read (class names, splits): no dataset is built and no shared sample data is touched.
    """
    for name in catalogue.names():
        recipe = catalogue.recipe(name)
        for split in recipe.splits:
            dataset_name = catalogue_dataset_name(name, split)
            _register(
                dataset_name,
                functools.partial(_load_catalogue_split, dataset_name),
                thing_classes=list(recipe.categories),
                astrodet_dataset=name,
                astrodet_split=split,
            )


def ensure_catalogue_split(dataset_name: str) -> tuple[Path, str]:
    """Build the catalogue dataset behind ``dataset_name`` (once) and point its metadata at the split's file.

    The metadata is replaced when the file moved (``$ASTRODET_CACHE`` changed since the last call); returns
    ``(COCO file, task)``.
    """
    meta = MetadataCatalog.get(dataset_name)
    name, split = meta.astrodet_dataset, meta.astrodet_split
    json_file = catalogue.ensure(name)[split]
    if meta.get("json_file", None) == str(json_file):  # described already: skip re-reading the file
        return json_file, catalogue.recipe(name).task
    task, described = coco_file_metadata(json_file)
    if meta.get("json_file", None) is not None:
        MetadataCatalog.remove(dataset_name)
    MetadataCatalog.get(dataset_name).set(**described, astrodet_dataset=name, astrodet_split=split)
    return json_file, task


def prepare_datasets(cfg: CfgNode) -> None:
    """Register ``cfg.ASTRODET.REGISTER``'s files; build the catalogue datasets ``cfg.DATASETS`` names and set
    their metadata (file, image folder, classes, vote columns), before loaders and evaluators ask for them."""
    for entry in cfg.ASTRODET.REGISTER:
        if len(entry) != 2:
            raise AstrodetInputError(f"cfg.ASTRODET.REGISTER entries must be [name, json_file], got {entry!r}")
        register_coco_file(str(entry[0]), str(entry[1]))
    for dataset_name in dict.fromkeys([*cfg.DATASETS.TRAIN, *cfg.DATASETS.TEST]):
        if dataset_name in DatasetCatalog.list() and MetadataCatalog.get(dataset_name).get("astrodet_dataset", None):
            ensure_catalogue_split(dataset_name)
