"""Registering COCO files (astrodet's converters' output) and the embedded default dataset with Detectron2.

Registration is lazy and cheap: names and metadata are known up front, and the default dataset is generated the
first time its records are asked for. ``file_name`` in astrodet's COCO files is relative to the JSON's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import load_coco_json

from astrodet.data import default as default_data
from astrodet.data.coco import load_coco

# Annotation fields astrodet's converters add that evaluation may use (e.g. brightness bins).
EXTRA_ANNOTATION_KEYS: list[str] = ["flux", "mag", "source_row"]


def default_dataset_name(name: str, split: str) -> str:
    """``astrodet_default_train``, ``astrodet_tiny_val``, ..."""
    return f"astrodet_{name}_{split}"


def register_coco_file(dataset_name: str, json_file: str | Path, **metadata: Any) -> None:
    """Register one astrodet COCO file under ``dataset_name`` (images relative to the file's folder)."""
    json_file = Path(json_file).resolve()
    if dataset_name in DatasetCatalog.list():
        DatasetCatalog.remove(dataset_name)
        MetadataCatalog.remove(dataset_name)
    image_root = str(json_file.parent)
    DatasetCatalog.register(
        dataset_name,
        lambda: load_coco_json(str(json_file), image_root, dataset_name, extra_annotation_keys=EXTRA_ANNOTATION_KEYS),
    )
    MetadataCatalog.get(dataset_name).set(
        json_file=str(json_file), image_root=image_root, evaluator_type="coco", **metadata
    )


def register_user_coco_file(dataset_name: str, json_file: str | Path) -> None:
    """Register a user's COCO file, taking class names from it (validated by astrodet's COCO reader)."""
    data = load_coco(json_file)
    classes = [c["name"] for c in sorted(data["categories"], key=lambda c: c["id"])]
    register_coco_file(dataset_name, json_file, thing_classes=classes)


def _default_loader(name: str, split: str, json_file: Path, dataset_name: str):
    def load() -> list[dict[str, Any]]:
        default_data.ensure_default_dataset(name)
        return load_coco_json(
            str(json_file), str(json_file.parent), dataset_name, extra_annotation_keys=EXTRA_ANNOTATION_KEYS
        )

    return load


def register_default_datasets() -> None:
    """Register every split of every embedded default dataset (generation waits for first use).

    Safe to call again: names are re-pointed at the current cache folder (``$ASTRODET_CACHE`` may have changed).
    """
    for name in default_data.DEFAULT_SPECS:
        for split, json_file in default_data.split_paths(name).items():
            dataset_name = default_dataset_name(name, split)
            if dataset_name in DatasetCatalog.list():
                DatasetCatalog.remove(dataset_name)
                MetadataCatalog.remove(dataset_name)
            DatasetCatalog.register(dataset_name, _default_loader(name, split, json_file, dataset_name))
            MetadataCatalog.get(dataset_name).set(
                json_file=str(json_file),
                image_root=str(json_file.parent),
                evaluator_type="coco",
                thing_classes=list(default_data.CATEGORIES),
                astrodet_default=name,
            )


def ensure_registered_data(dataset_names: list[str] | tuple[str, ...]) -> None:
    """Generate the default datasets that ``dataset_names`` refer to, so their COCO files exist on disk."""
    for dataset_name in dataset_names:
        name = MetadataCatalog.get(dataset_name).get("astrodet_default", None)
        if name is not None:
            default_data.ensure_default_dataset(name)
