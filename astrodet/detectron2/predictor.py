"""Detectron2 models as the inference core's ``Detector`` / ``Classifier``: :func:`load_model`.

Why here: ``astrodet predict`` (:mod:`astrodet.inference`) is framework-free; this module builds the model of an
astrodet Detectron2 config as ``tools/train_net.py`` does (``add_astrodet_config``, merge, ``resolve_device``,
Detectron2's ``build_model``), loads weights without running code (``AstroCheckpointer``: ``torch.load`` with
``weights_only=True``, then the DetectionCheckpointer's own model loading), and maps each image exactly as the test
loader does (``AstroTrainer.build_test_loader``'s resize, ``ClassificationMapper``'s crop and resize) before a
batched forward in eval mode, as ``DefaultPredictor`` does for one image.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from detectron2.config import CfgNode, get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data import transforms as T
from detectron2.modeling import build_model

from astrodet.data.wholeimage import crop_and_resize
from astrodet.detectron2.augment import build_astro_augmentations
from astrodet.detectron2.checkpoint import AstroCheckpointer, config_image_recipe
from astrodet.detectron2.classification import META_ARCH
from astrodet.detectron2.config import add_astrodet_config
from astrodet.detectron2.datasets import ensure_catalogue_split, register_coco_file
from astrodet.detectron2.trainer import resolve_device
from astrodet.errors import AstrodetInputError
from astrodet.evaluation.classification import class_scores_from_votes
from astrodet.inference.model import Detections, ImageRecipe, check_images, check_stored_classes
from astrodet.inference.precision import features_in
from astrodet.models.schemas import QUESTIONS, load_question_schema

logger = logging.getLogger(__name__)
DETECTION_BATCH = 8  # images per forward pass; the test loader's batch is 1, any size gives the same boxes
FORMATS = ("RGB", "BGR")  # INPUT.FORMAT values of 3-band images (the recipe's channels are RGB)


def build_cfg(config: str | Path, device: str = "auto") -> CfgNode:
    """The frozen config as ``tools/train_net.py`` builds it, for inference on ``device`` ("auto": the config's
    device, CPU when no GPU is visible). Pretrained-encoder files are not needed: the trained weights replace them."""
    cfg = get_cfg()
    add_astrodet_config(cfg)
    cfg.merge_from_file(str(config))
    if device != "auto":
        cfg.MODEL.DEVICE = device
    cfg.MODEL.WEIGHTS = ""
    cfg.MODEL.ZOOBOT.CHECKPOINT = ""
    cfg.MODEL.DEEPSHADOWS.CHECKPOINT = ""
    resolve_device(cfg)
    cfg.freeze()
    return cfg


def load_weights(model: torch.nn.Module, weights: str | Path) -> dict[str, Any]:
    """Load ``weights`` into ``model`` through :class:`AstroCheckpointer` (``torch.load(weights_only=True)``, then
    the DetectionCheckpointer's model loading, which logs missing and unexpected keys; a file that would run code or
    whose weights fit none of the model's is refused naming it). Returns the checkpoint's other entries
    (``iteration``, a stored ``image_recipe`` ...). A ``.pkl`` is refused: predict reads only PyTorch files."""
    if Path(weights).suffix.lower() == ".pkl":
        raise AstrodetInputError(
            f"{weights}: pickled .pkl checkpoints are refused by predict; give the .pth a training run wrote"
        )
    return AstroCheckpointer(model).load(str(weights))


def config_recipe(cfg: CfgNode, checkpoint: dict[str, Any]) -> ImageRecipe:
    """The checkpoint's recipe (``"image_recipe"``, which training records), else the config's
    (:func:`~astrodet.detectron2.checkpoint.config_image_recipe`: ``ASTRODET.IMAGE_RECIPE`` or the simulator's)."""
    if isinstance(checkpoint.get("image_recipe"), dict):
        return ImageRecipe.from_dict(checkpoint["image_recipe"])
    return config_image_recipe(cfg)


def dataset_metadata(cfg: CfgNode, need_votes: bool = False) -> dict[str, Any]:
    """Metadata (``thing_classes``, vote columns) of the first dataset the config trains or tests on that is known:
    a catalogue name (classes from its recipe; built only when a vote model needs its vote -> class mapping) or a
    ``ASTRODET.REGISTER`` file that still exists. Empty when none is."""
    files = {str(name): Path(str(path)) for name, path in cfg.ASTRODET.REGISTER}
    for name in dict.fromkeys([*cfg.DATASETS.TEST, *cfg.DATASETS.TRAIN]):
        if name in files and files[name].is_file():
            register_coco_file(name, files[name])
        if name not in DatasetCatalog.list():
            continue
        meta = MetadataCatalog.get(name)
        if need_votes and meta.get("astrodet_dataset", None) and not meta.get("json_file", None):
            ensure_catalogue_split(name)
            meta = MetadataCatalog.get(name)
        if meta.get("thing_classes", None):
            return meta.as_dict()
    return {}


def class_names(checkpoint: dict[str, Any], metadata: dict[str, Any], count: int) -> tuple[str, ...]:
    """The checkpoint's ``"classes"`` (what the trained outputs mean, whatever data the config names now; a count
    other than the model's is refused in :func:`load_model`), else the training data's when they number ``count``;
    else ``class_<k>``."""
    for names in (checkpoint.get("classes"), metadata.get("thing_classes")):
        if names and len(names) == count:
            return tuple(str(n) for n in names)
    logger.warning("class names unknown (no checkpoint entry or dataset with %d classes): using class_<k>", count)
    return tuple(f"class_{k}" for k in range(count))


class Detectron2Detector:
    """A GeneralizedRCNN (or any detection meta-architecture) in eval mode behind the ``Detector`` protocol."""

    framework = "detectron2"
    task = "detection"

    def __init__(self, cfg: CfgNode, model: torch.nn.Module, classes: tuple[str, ...], recipe: ImageRecipe) -> None:
        if recipe.kind != "float" and cfg.INPUT.FORMAT not in FORMATS:
            raise AstrodetInputError(f"INPUT.FORMAT {cfg.INPUT.FORMAT!r}: predict reads 3-band images as {FORMATS}")
        self.cfg, self.model, self.classes, self.recipe = cfg, model, classes, recipe
        self.augmentations = T.AugmentationList(build_astro_augmentations(cfg, is_train=False))
        # The square side the test-time resize leaves unchanged; None when the config rescales every image.
        same = cfg.INPUT.MIN_SIZE_TEST == cfg.INPUT.MAX_SIZE_TEST
        self.input_size: int | None = int(cfg.INPUT.MAX_SIZE_TEST) if same else None
        self.batch_size = DETECTION_BATCH
        self.precision = "fp32"  # the backbone's autocast precision (astrodet.inference.precision.set_precision)

    def model_input(self, image: np.ndarray) -> dict[str, Any]:
        """One test-loader input dict: the mapper's resize, the config's channel order (8-bit pictures; float
        bands come in the recipe's order, normalised by the core as FitsDatasetMapper's are), the original size."""
        height, width = image.shape[:2]
        if self.recipe.kind != "float" and self.cfg.INPUT.FORMAT == "BGR":
            image = image[:, :, ::-1]
        aug_input = T.AugInput(np.ascontiguousarray(image))
        self.augmentations(aug_input)
        tensor = torch.as_tensor(np.ascontiguousarray(aug_input.image.transpose(2, 0, 1)), dtype=torch.float32)
        return {"image": tensor, "height": height, "width": width}

    def predict(self, images: Sequence[np.ndarray]) -> list[Detections]:
        check_images(images, len(self.cfg.MODEL.PIXEL_MEAN))
        found: list[Detections] = []
        for start in range(0, len(images), self.batch_size):
            batch = [self.model_input(image) for image in images[start : start + self.batch_size]]
            with torch.no_grad(), features_in(self.precision, [self.model.backbone]):
                outputs = self.model(batch)
            for output in outputs:
                instances = output["instances"].to("cpu")
                found.append(
                    Detections(
                        instances.pred_boxes.tensor.numpy(), instances.scores.numpy(), instances.pred_classes.numpy()
                    )
                )
        return found


class Detectron2Classifier:
    """``AstroImageClassifier`` in eval mode behind the ``Classifier`` protocol (vote models: ``predict_votes``)."""

    framework = "detectron2"
    task = "classification"

    def __init__(self, cfg: CfgNode, model: torch.nn.Module, checkpoint: dict[str, Any], recipe: ImageRecipe) -> None:
        self.cfg, self.model, self.recipe = cfg, model, recipe
        self.input_size: int | None = None  # whole cutouts, each resized to ASTRODET.CLS.INPUT_SIZE
        self.batch_size = int(cfg.ASTRODET.CLS.TEST_BATCH)
        self.precision = "fp32"  # the encoder's autocast precision (astrodet.inference.precision.set_precision)
        self.uses_votes = bool(model.model.uses_votes)
        metadata = dataset_metadata(cfg, need_votes=self.uses_votes)
        self.vote_columns: tuple[str, ...] = ()
        self.vote_class_columns: dict[str, str] | None = None
        if self.uses_votes:
            schema = load_question_schema(cfg.MODEL.CLASSIFIER.VOTE_SCHEMA or QUESTIONS)
            self.vote_columns = tuple(schema.columns)
            self.vote_class_columns = checkpoint.get("vote_class_columns") or metadata.get("vote_class_columns")
            classes = dict.fromkeys((self.vote_class_columns or {}).values())
            self.classes = tuple(checkpoint.get("classes") or metadata.get("thing_classes") or classes)
        else:
            self.classes = class_names(checkpoint, metadata, max(int(cfg.MODEL.CLASSIFIER.NUM_CLASSES), 2))

    def model_input(self, image: np.ndarray) -> dict[str, Any]:
        """ClassificationMapper's test-time geometry: central crop, square resize, float (C, H, W)."""
        image = crop_and_resize(
            np.asarray(image, dtype=np.float32),
            int(self.cfg.ASTRODET.CLS.CENTRE_CROP),
            int(self.cfg.ASTRODET.CLS.INPUT_SIZE),
        )
        return {"image": torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))}

    def _outputs(self, images: Sequence[np.ndarray], key: str) -> np.ndarray:
        check_images(images, len(self.cfg.MODEL.PIXEL_MEAN))
        rows: list[np.ndarray] = []
        for start in range(0, len(images), self.batch_size):
            batch = [self.model_input(image) for image in images[start : start + self.batch_size]]
            with torch.no_grad(), features_in(self.precision, [self.model.model.backbone]):
                rows.extend(out[key].cpu().numpy() for out in self.model(batch))
        width = len(self.vote_columns) if key == "vote_fractions" else len(self.classes)
        return np.asarray(rows, dtype=np.float64).reshape(len(images), width)

    def predict(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, K) class probabilities; a vote model's from its vote fractions through the training set's
        vote-column -> class mapping, as its evaluation scores them (the core refuses when that is unknown)."""
        if self.uses_votes:
            votes = self.predict_votes(images)
            return class_scores_from_votes(votes, self.vote_columns, self.vote_class_columns, self.classes)
        return self._outputs(images, "class_scores")

    def predict_votes(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, A) vote fractions, one column per answer of the model's question schema (``vote_columns``)."""
        if not self.uses_votes:
            raise AstrodetInputError(f"loss {self.cfg.MODEL.CLASSIFIER.LOSS!r} predicts classes, not vote fractions")
        return self._outputs(images, "vote_fractions")


def load_model(
    config: str | Path, weights: str | Path, device: str = "auto"
) -> Detectron2Detector | Detectron2Classifier:
    """The trained model of an astrodet Detectron2 config: a detector, or a classifier for
    ``AstroImageClassifier`` configs; ``weights`` a ``.pth`` as DefaultTrainer writes (read as weights only)."""
    cfg = build_cfg(config, device)
    model = build_model(cfg)
    checkpoint = load_weights(model, weights)
    model.eval()
    recipe = config_recipe(cfg, checkpoint)
    if cfg.MODEL.META_ARCHITECTURE == META_ARCH:
        if not model.model.uses_votes:
            check_stored_classes(checkpoint.get("classes"), max(int(cfg.MODEL.CLASSIFIER.NUM_CLASSES), 2), str(weights))
        return Detectron2Classifier(cfg, model, checkpoint, recipe)
    check_stored_classes(checkpoint.get("classes"), int(cfg.MODEL.ROI_HEADS.NUM_CLASSES), str(weights))
    classes = class_names(checkpoint, dataset_metadata(cfg), int(cfg.MODEL.ROI_HEADS.NUM_CLASSES))
    return Detectron2Detector(cfg, model, classes, recipe)
