"""Detectron2 data mapping of multi-band float (FITS/NumPy) detection records.

Why a mapper: Detectron2's ``DatasetMapper`` reads 8-bit pictures (``utils.read_image``); survey images are FITS
with any number of float bands. :class:`FitsDatasetMapper` is that mapper with the image read and normalised by the
core (:func:`astrodet.data.normalise.read_record`, the function mmdet's ``LoadFitsImage`` and ``astrodet predict``
call too), then the same augmentations (resize, flips, quarter turns: they act on every band of an (H, W, C) float
array) and annotation handling. The trainer picks it when ``ASTRODET.IMAGE_RECIPE.KIND`` is ``"float"``.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from detectron2.config import CfgNode, configurable
from detectron2.data import DatasetMapper
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T

from astrodet.data.normalise import read_record
from astrodet.detectron2.augment import build_astro_augmentations
from astrodet.detectron2.checkpoint import config_image_recipe
from astrodet.errors import AstrodetInputError
from astrodet.inference.model import ImageRecipe


class FitsDatasetMapper(DatasetMapper):
    """``DatasetMapper`` for records whose pixels are FITS cubes, per-band FITS files or ``.npy`` arrays.

    Each record's ``file_name`` (and optional ``band_files`` / ``bands``) is read and normalised by the recipe, then
    augmented; ``image`` is a (C, H, W) float32 tensor. Annotations are handled as Detectron2's mapper does.
    """

    @configurable
    def __init__(self, is_train: bool = True, *, recipe: ImageRecipe, **kwargs: Any) -> None:
        super().__init__(is_train, **kwargs)
        if recipe.kind != "float":
            raise AstrodetInputError(f"FitsDatasetMapper reads float recipes; got kind {recipe.kind!r}")
        self.recipe = recipe

    @classmethod
    def from_config(cls, cfg: CfgNode, is_train: bool = True) -> dict[str, Any]:
        kwargs = super().from_config(cfg, is_train)
        kwargs["augmentations"] = build_astro_augmentations(cfg, is_train)
        kwargs["recipe"] = config_image_recipe(cfg)
        return kwargs

    def __call__(self, dataset_dict: dict[str, Any]) -> dict[str, Any]:
        record = copy.deepcopy(dataset_dict)
        image = read_record(record["file_name"], self.recipe, record.get("band_files"), record.get("bands"))
        utils.check_image_size(record, image)
        aug_input = T.AugInput(image)
        transforms = self.augmentations(aug_input)
        image = aug_input.image
        record["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if not self.is_train:
            record.pop("annotations", None)
            return record
        if "annotations" in record:
            self._transform_annotations(record, transforms, image.shape[:2])
        return record


def detection_mapper(cfg: CfgNode, is_train: bool) -> DatasetMapper:
    """The mapper of a detection config: :class:`FitsDatasetMapper` for float recipes, else Detectron2's own with
    astrodet's augmentations (8-bit pictures)."""
    if cfg.ASTRODET.IMAGE_RECIPE.KIND == "float":
        return FitsDatasetMapper(cfg, is_train=is_train)
    return DatasetMapper(cfg, is_train=is_train, augmentations=build_astro_augmentations(cfg, is_train=is_train))
