"""MMDetection models as the inference core's ``Detector`` / ``Classifier``: :func:`load_model`.

Why here: ``astrodet predict`` (:mod:`astrodet.inference`) is framework-free; this module builds the model of an
astrodet mmdet config as mmdet's ``init_detector`` does (the config's model from ``MODELS``, no pretrained init, eval
mode), reads the checkpoint through :func:`astrodet.mmdet.compat.load_local_checkpoint` (weights and mmengine's
training state only) and loads it with mmengine's ``load_state_dict``. Images go through the config's own test
pipeline, as ``inference_detector`` runs it on arrays (``LoadImageFromNDArray`` in place of the file loader), and a
batch at a time through the model's ``test_step`` (its data preprocessor, then ``predict``). Classifiers
(``AstroImageClassifier``) take the test pipeline's transforms between loading and packing.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmcv.transforms import Compose
from mmdet.registry import MODELS
from mmdet.utils import get_test_pipeline_cfg
from mmengine.config import Config, ConfigDict
from mmengine.model.utils import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.runner import load_state_dict

import astrodet.mmdet  # noqa: F401  (registers astrodet's modules; installs the weights-only checkpoint loader)
from astrodet.data import catalogue
from astrodet.data.coco import load_coco
from astrodet.data.wholeimage import read_classification_coco, vote_class_columns
from astrodet.errors import AstrodetInputError
from astrodet.evaluation.classification import class_scores_from_votes
from astrodet.inference.model import Detections, ImageRecipe, check_images, check_stored_classes
from astrodet.inference.precision import features_in
from astrodet.mmdet.compat import check_checkpoint_fits, load_local_checkpoint
from astrodet.mmdet.datasets import resolve_ann_file
from astrodet.mmdet.hooks import config_image_recipe
from astrodet.models.schemas import QUESTIONS, load_question_schema

CLASSIFIER = "AstroImageClassifier"
DETECTION_BATCH = 8  # images per test_step; the test dataloader's batch is 1, any size gives the same boxes


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """An mmengine checkpoint (``{"state_dict", "meta", ...}``) or a bare state dict, read as weights only."""
    path = Path(path)
    if path.suffix.lower() == ".pkl":
        raise AstrodetInputError(
            f"{path}: pickled .pkl checkpoints are refused by predict; give the .pth a training run wrote"
        )
    try:
        checkpoint = load_local_checkpoint(str(path), map_location="cpu")
    except (RuntimeError, EOFError, OSError) as err:
        raise AstrodetInputError(f"{path}: cannot be read as a PyTorch checkpoint ({err})") from None
    if not isinstance(checkpoint, dict):
        raise AstrodetInputError(f"{path}: expected a checkpoint dict, got {type(checkpoint).__name__}")
    if isinstance(checkpoint.get("state_dict"), dict):
        return checkpoint
    return {"state_dict": checkpoint}


def load_weights(model: torch.nn.Module, checkpoint: dict[str, Any], path: str | Path) -> None:
    """mmengine's ``load_state_dict`` (non-strict, it logs missing and unexpected keys; DDP's ``module.`` prefix
    dropped as mmengine's loader does); a file none of whose weights fits ``model`` is refused, as in training
    (:func:`~astrodet.mmdet.compat.check_checkpoint_fits`)."""
    check_checkpoint_fits(model, checkpoint, str(path))
    state = {key.removeprefix("module."): value for key, value in checkpoint["state_dict"].items()}
    load_state_dict(model, state, strict=False)


def resolve_device(device: str) -> str:
    """``auto``: CUDA when a GPU is visible, else the CPU (what mmengine's runner picks)."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def test_loader_dataset(cfg: Config) -> ConfigDict:
    """The test dataset's config, unwrapped from dataset wrappers (as mmdet's ``get_test_pipeline_cfg`` does)."""
    dataset = cfg.test_dataloader.dataset
    while "pipeline" not in dataset and ("dataset" in dataset or "datasets" in dataset):
        inner = dataset.get("dataset")
        dataset = inner if isinstance(inner, dict) else dataset.datasets[0]
    return dataset


def training_metainfo(cfg: Config, task: str, need_votes: bool = False) -> dict[str, Any]:
    """``classes`` (and, for vote models, ``vote_class_columns``) of the config's test data when the checkpoint
    does not carry them: the config's ``metainfo``, else the catalogue recipe's categories, else the COCO file
    (an ``ann_file`` that exists; a catalogue dataset is built only when a vote model needs its mapping)."""
    dataset = test_loader_dataset(cfg)
    metainfo = dict(dataset.get("metainfo") or {})
    name, ann_file = dataset.get("dataset"), dataset.get("ann_file")
    if metainfo.get("classes") and not need_votes:
        return metainfo
    if name and not ann_file and not need_votes:
        return {"classes": tuple(catalogue.recipe(name).categories)}
    if not ann_file and not name:
        return metainfo
    path = resolve_ann_file(ann_file, name, dataset.get("split"), task, dataset.get("data_root", ""))
    if not path.is_file():
        return metainfo
    if task == "classification":
        _, classes, info = read_classification_coco(path)
        return {"classes": tuple(classes), "vote_class_columns": vote_class_columns(info)}
    return {"classes": tuple(c["name"] for c in sorted(load_coco(path)["categories"], key=lambda c: c["id"]))}


def class_names(metainfo: dict[str, Any], count: int) -> tuple[str, ...]:
    """The training data's class names when they number ``count``; else ``class_<k>``."""
    names = metainfo.get("classes")
    if names and len(names) == count:
        return tuple(str(n) for n in names)
    return tuple(f"class_{k}" for k in range(count))


def config_recipe(cfg: Config, checkpoint: dict[str, Any]) -> ImageRecipe:
    """The checkpoint's recipe (``meta.image_recipe``, which ``AstroCheckpointHook`` records), else the config's
    (:func:`~astrodet.mmdet.hooks.config_image_recipe`: its ``image_recipe = dict(...)`` or the simulator's)."""
    stored = (checkpoint.get("meta") or {}).get("image_recipe")
    return ImageRecipe.from_dict(dict(stored)) if stored else config_image_recipe(cfg)


def square_test_scale(pipeline: Sequence[dict]) -> int | None:
    """The side of a square keep-ratio ``Resize`` in the test pipeline (images that size are not rescaled)."""
    for step in pipeline:
        scale = step.get("scale")
        if step.get("type") == "Resize" and step.get("keep_ratio") and isinstance(scale, Sequence):
            if len(scale) == 2 and scale[0] == scale[1]:
                return int(scale[0])
    return None


class MMDetDetector:
    """An mmdet detector in eval mode behind the ``Detector`` protocol."""

    framework = "mmdet"
    task = "detection"

    def __init__(self, cfg: Config, model: torch.nn.Module, classes: tuple[str, ...], recipe: ImageRecipe) -> None:
        self.model, self.classes, self.recipe = model, classes, recipe
        pipeline = copy.deepcopy(get_test_pipeline_cfg(cfg))
        if recipe.kind == "float":  # in place of LoadFitsImage: arrays normalised by the core (images.load_fits)
            pipeline[0] = ConfigDict(type="mmdet.LoadImageFromNDArray")
        else:
            pipeline[0].type = "mmdet.LoadImageFromNDArray"  # as inference_detector does for arrays
        self.pipeline = Compose(pipeline)
        self.input_size = square_test_scale(pipeline)
        # float recipes: the bands, already normalised (the data preprocessor takes 1 or 3 values, so none there)
        float_input = recipe.kind == "float"
        self.channels = recipe.channels if float_input else len(cfg.model.data_preprocessor.get("mean") or (0, 0, 0))
        self.channel_order = slice(None) if float_input else slice(None, None, -1)
        self.batch_size = DETECTION_BATCH
        self.precision = "fp32"  # backbone + neck autocast precision (astrodet.inference.precision.set_precision)
        self.feature_modules = [m for m in (model.backbone, getattr(model, "neck", None)) if m is not None]

    def predict(self, images: Sequence[np.ndarray]) -> list[Detections]:
        check_images(images, self.channels)
        found: list[Detections] = []
        for start in range(0, len(images), self.batch_size):
            # mmdet's loaders give BGR (cv2); the data preprocessor's bgr_to_rgb turns them back, so RGB in -> BGR.
            # Float bands stay in the recipe's order, as LoadFitsImage gives them.
            packed = [
                self.pipeline({"img": np.ascontiguousarray(image[:, :, self.channel_order]), "img_id": start + k})
                for k, image in enumerate(images[start : start + self.batch_size])
            ]
            batch = {"inputs": [p["inputs"] for p in packed], "data_samples": [p["data_samples"] for p in packed]}
            with torch.no_grad(), features_in(self.precision, self.feature_modules):
                samples = self.model.test_step(batch)
            for sample in samples:
                pred = sample.pred_instances.cpu()
                found.append(Detections(pred.bboxes.numpy(), pred.scores.numpy(), pred.labels.numpy()))
        return found


class MMDetClassifier:
    """``AstroImageClassifier`` in eval mode behind the ``Classifier`` protocol (vote models: ``predict_votes``)."""

    framework = "mmdet"
    task = "classification"

    def __init__(self, cfg: Config, model: torch.nn.Module, metainfo: dict[str, Any], recipe: ImageRecipe) -> None:
        self.model, self.recipe = model, recipe
        self.input_size: int | None = None  # whole cutouts, each resized by the test pipeline
        pipeline = copy.deepcopy(get_test_pipeline_cfg(cfg))
        # Between the file loader (first) and PackClsInputs (last): the crop and resize the model was tested with.
        self.transforms = Compose(pipeline[1:-1])
        self.channels = int(cfg.model.get("in_channels", 3))
        self.batch_size = int(cfg.test_dataloader.get("batch_size", 32))
        self.precision = "fp32"  # the encoder's autocast precision (astrodet.inference.precision.set_precision)
        self.uses_votes = bool(model.model.uses_votes)
        self.vote_columns: tuple[str, ...] = ()
        self.vote_class_columns: dict[str, str] | None = None
        if self.uses_votes:
            self.vote_columns = tuple(load_question_schema(cfg.model.get("vote_schema") or QUESTIONS).columns)
            self.vote_class_columns = metainfo.get("vote_class_columns")
            self.classes = tuple(metainfo.get("classes") or dict.fromkeys((self.vote_class_columns or {}).values()))
        else:
            self.classes = class_names(metainfo, max(int(cfg.model.get("num_classes", 2)), 2))

    def _outputs(self, images: Sequence[np.ndarray], key: str) -> np.ndarray:
        check_images(images, self.channels)
        rows: list[np.ndarray] = []
        for start in range(0, len(images), self.batch_size):
            inputs = []
            for image in images[start : start + self.batch_size]:
                image = np.asarray(image, dtype=np.float32)  # LoadCutout's array: RGB in the file's units
                results = self.transforms({"img": image, "img_shape": image.shape[:2], "ori_shape": image.shape[:2]})
                inputs.append(torch.from_numpy(np.ascontiguousarray(results["img"].transpose(2, 0, 1))))
            with torch.no_grad(), features_in(self.precision, [self.model.model.backbone]):
                samples = self.model.test_step({"inputs": inputs, "data_samples": None})
            rows.extend(sample.get(key).numpy() for sample in samples)
        width = len(self.vote_columns) if key == "pred_votes" else len(self.classes)
        return np.asarray(rows, dtype=np.float64).reshape(len(images), width)

    def predict(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, K) class probabilities (``pred_score``); a vote model's come from its ``pred_votes`` through the
        training set's vote-column -> class mapping (the core refuses when the checkpoint and config lack it)."""
        if not self.uses_votes:
            return self._outputs(images, "pred_score")
        return class_scores_from_votes(
            self.predict_votes(images), self.vote_columns, self.vote_class_columns, self.classes
        )

    def predict_votes(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, A) vote fractions (``pred_votes``), one column per answer of the question schema (``vote_columns``)."""
        if not self.uses_votes:
            raise AstrodetInputError(
                "this classifier predicts classes (its loss is not a vote loss), not vote fractions"
            )
        return self._outputs(images, "pred_votes")


def load_model(config: str | Path, weights: str | Path, device: str = "auto") -> MMDetDetector | MMDetClassifier:
    """The trained model of an astrodet mmdet config: a detector, or a classifier for ``AstroImageClassifier``
    configs; ``weights`` a checkpoint as mmengine's runner writes (read as weights only)."""
    checkpoint = read_checkpoint(weights)
    cfg = Config.fromfile(str(config))
    init_default_scope(cfg.get("default_scope", "mmdet"))
    backbone = cfg.model.get("backbone", {})
    if "init_cfg" in backbone:
        backbone.init_cfg = None  # as init_detector: the checkpoint replaces any pretrained start
    if backbone.get("checkpoint"):
        backbone.checkpoint = None  # TimmEncoder's encoder file: not needed either
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    load_weights(model, checkpoint, weights)
    model.cfg = cfg  # as init_detector: mmdet's inference_detector and visualisers read it there
    model.to(resolve_device(device)).eval()
    recipe = config_recipe(cfg, checkpoint)
    stored = dict((checkpoint.get("meta") or {}).get("dataset_meta") or {})
    if cfg.model.type == CLASSIFIER:
        uses_votes = bool(model.model.uses_votes)
        if not uses_votes:
            check_stored_classes(stored.get("classes"), max(int(cfg.model.get("num_classes", 2)), 2), str(weights))
        if not stored.get("classes") or (uses_votes and not stored.get("vote_class_columns")):
            known = {key: value for key, value in stored.items() if value}
            stored = {**training_metainfo(cfg, "classification", need_votes=uses_votes), **known}
        return MMDetClassifier(cfg, model, stored, recipe)
    head = getattr(getattr(model, "roi_head", None), "bbox_head", None) or model.bbox_head
    check_stored_classes(stored.get("classes"), int(head.num_classes), str(weights))
    metainfo = stored if stored.get("classes") else training_metainfo(cfg, "detection")
    return MMDetDetector(cfg, model, class_names(metainfo, int(head.num_classes)), recipe)
