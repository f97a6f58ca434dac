"""mmdet ``DATASETS`` entries that read astrodet's COCO files, named by catalogue entry or given by path.

Why: a config names its data (``dataset='default', split='train'``) rather than a path, and the data is built into
``$ASTRODET_CACHE`` on first use (:func:`astrodet.data.catalogue.ensure`: locked, so every process of a distributed
run may ask). Nothing outside the dataset has to rewrite the config, so the same file runs under mmdet's own
``tools/train.py`` / ``tools/test.py`` and under ``tools/train_mmdet.py``. An ``ann_file`` (your own data) wins over
a name, so ``--cfg-options train_dataloader.dataset.ann_file=/data/train.json`` is all it takes.

- ``AstroCocoDataset``: mmdet's ``CocoDataset`` with the file's own classes and image folder (astrodet's
  ``file_name`` entries are relative to the JSON's folder, through ``info.image_root``).
- ``AstroClassificationDataset``: whole-image classification records (one object per image) for
  ``AstroImageClassifier``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS
from mmengine.dataset import BaseDataset

from astrodet.data import catalogue
from astrodet.data.coco import load_coco
from astrodet.data.wholeimage import read_classification_coco, vote_class_columns
from astrodet.errors import AstrodetInputError


def resolve_ann_file(
    ann_file: str | None, dataset: str | None, split: str | None, task: str, data_root: str = ""
) -> Path:
    """The COCO file to read: ``ann_file`` (relative to ``data_root`` when it is relative), else the ``split`` of
    the catalogue dataset ``dataset``, built first if the cache lacks it. Names are checked before anything is built.
    """
    # Absolute but not resolved: the catalogue's split files are links to the current build, and reports name them.
    if ann_file:
        return Path(os.path.abspath(Path(data_root, ann_file) if data_root else ann_file))
    if dataset is None:
        raise ValueError(f"give ann_file= (a COCO file) or dataset= (one of {catalogue.names(task)}) and split=")
    recipe = catalogue.recipe(dataset)
    if recipe.task != task:
        raise ValueError(f"dataset {dataset!r} is a {recipe.task} set; this reads {task} sets: {catalogue.names(task)}")
    if split is None:
        raise ValueError(f"dataset {dataset!r}: give split= (one of {list(recipe.splits)})")
    if split not in recipe.splits:
        raise ValueError(f"dataset {dataset!r}: unknown split {split!r}; it has {list(recipe.splits)}")
    return Path(os.path.abspath(catalogue.ensure(dataset, progress=False)[split]))


def _check_classes(source: os.PathLike[str] | str, classes: tuple[str, ...], metainfo: Any) -> None:
    """A config's ``metainfo['classes']`` must be the data's: a mismatch would silently drop or relabel objects."""
    given = (metainfo or {}).get("classes")
    if given is not None and tuple(given) != classes:
        raise ValueError(f"{source}: classes {list(classes)} differ from the config's metainfo {list(given)}")


@DATASETS.register_module()
class AstroCocoDataset(CocoDataset):
    """An astrodet detection COCO file: ``dataset`` + ``split`` from the catalogue, or ``ann_file``.

    ``metainfo['classes']`` is the file's categories (in id order) unless the config gives the same; ``data_root``
    defaults to the file's folder and ``data_prefix`` to its ``info.image_root``. Other arguments are CocoDataset's.
    """

    def __init__(
        self,
        ann_file: str = "",
        dataset: str | None = None,
        split: str | None = None,
        data_root: str = "",
        data_prefix: dict[str, str] | None = None,
        metainfo: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        path = resolve_ann_file(ann_file, dataset, split, "detection", data_root)
        data = load_coco(path)
        info = data.get("info") or {}
        if info.get("task") == "classification":
            raise AstrodetInputError(f"{path}: a whole-image classification file: use AstroClassificationDataset")
        classes = tuple(c["name"] for c in sorted(data["categories"], key=lambda c: c["id"]))
        _check_classes(path, classes, metainfo)
        image_root = info.get("image_root", ".")
        super().__init__(
            ann_file=str(path),
            data_root=data_root or str(path.parent),
            data_prefix=data_prefix or {"img": "" if image_root in ("", ".") else image_root},
            metainfo={**(metainfo or {}), "classes": classes},
            **kwargs,
        )

    def parse_data_info(self, raw_data_info: dict) -> dict:
        """CocoDataset's record plus the image fields FITS records need (``bands``; ``band_files`` joined to the
        image folder like ``img_path``), for ``LoadFitsImage`` (docs/fits.md)."""
        data_info = super().parse_data_info(raw_data_info)
        image = raw_data_info["raw_img_info"]
        if "bands" in image:
            data_info["bands"] = list(image["bands"])
        if "band_files" in image:
            folder = self.data_prefix["img"]
            data_info["band_files"] = {band: os.path.join(folder, path) for band, path in image["band_files"].items()}
        return data_info


@DATASETS.register_module()
class AstroClassificationDataset(BaseDataset):
    """Whole-image classification records: ``dataset`` + ``split`` from the catalogue (``perseus``, ``gz2``, ...),
    or ``ann_file`` (an astrodet whole-image COCO file).

    ``metainfo['classes']`` is read from the file unless the config gives it; a mismatch is an error, so a model's
    ``num_classes`` and the data cannot silently disagree.
    """

    def __init__(self, ann_file: str = "", dataset: str | None = None, split: str | None = None, **kwargs: Any) -> None:
        path = resolve_ann_file(ann_file, dataset, split, "classification", kwargs.get("data_root", ""))
        kwargs.setdefault("data_prefix", {"img_path": ""})
        super().__init__(ann_file=str(path), **kwargs)

    def load_data_list(self) -> list[dict[str, Any]]:
        records, classes, info = read_classification_coco(self.ann_file)
        _check_classes(self.ann_file, tuple(classes), self._metainfo)
        self._metainfo["classes"] = tuple(classes)
        self._metainfo["vote_columns"] = info.get("vote_columns")
        self._metainfo["vote_class_columns"] = vote_class_columns(info)
        return [
            {
                "img_path": r["file_name"],
                "img_id": r["image_id"],
                "gt_label": r["label"],
                "vote_fractions": r.get("vote_fractions"),
            }
            for r in records
        ]
