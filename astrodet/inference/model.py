"""The model side of inference: what a trained detector or classifier looks like to the framework-free core.

Why a protocol: ``astrodet predict`` reads inputs, tiles frames, converts pixels to the sky and writes catalogues
once, for both frameworks. Each adapter (``astrodet.detectron2.predictor``, ``astrodet.mmdet.predictor``) only has
to turn a batch of images into boxes or probabilities, and to say how its training pixels were made (the
:class:`ImageRecipe`), so that FITS inputs are rendered exactly as the training PNGs were and mismatches are refused.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from astrodet.data.imaging import DEFAULT_BLACK, DEFAULT_Q, DEFAULT_STRETCH, SDSS_RGB_WEIGHTS
from astrodet.data.normalise import FLOAT_STRETCHES, stretch_params
from astrodet.errors import AstrodetInputError

RECIPE_KINDS = ("rgb8", "float")
# Stretches by kind: 8-bit pictures are rendered (lupton) or taken as they are (none); float input is normalised by
# astrodet.data.normalise (asinh, lupton, zscale, standardise, none).
KIND_STRETCHES: dict[str, tuple[str, ...]] = {"rgb8": ("lupton", "none"), "float": FLOAT_STRETCHES}


@dataclass(frozen=True)
class ImageRecipe:
    """How pixels become model input; travels with the model (checkpoint meta or config).

    ``bands`` lists the FITS bands in channel order (``("i", "r", "g")``: i -> R, r -> G, g -> B). ``params`` holds
    whatever reproduces the training pixels; for ``"lupton"``: ``stretch``, ``Q``, ``black`` (black point below
    zero), ``weights`` (per band) and ``unit`` (``"nanomaggy/arcsec2"``: FITS data per pixel are divided by the
    pixel area first, so the look does not depend on pixel scale, as the simulator does).

    ``kind="float"``: the model takes ``channels`` = ``len(bands)`` float32 channels made from FITS/NumPy bands by
    :func:`astrodet.data.normalise.prepare`, ``stretch`` one of asinh, lupton, zscale, standardise, none and
    ``params`` as :data:`astrodet.data.normalise.STRETCH_PARAMS` lists them (checked here).
    """

    kind: str
    bands: tuple[str, ...]
    stretch: str
    params: dict = field(default_factory=dict)
    channels: int = 3

    def __post_init__(self) -> None:
        if self.kind not in RECIPE_KINDS:
            raise AstrodetInputError(f"image recipe: kind {self.kind!r} is not one of {RECIPE_KINDS}")
        if self.stretch not in KIND_STRETCHES[self.kind]:
            raise AstrodetInputError(
                f"image recipe: stretch {self.stretch!r} is not one of {KIND_STRETCHES[self.kind]} ({self.kind})"
            )
        object.__setattr__(self, "bands", tuple(str(b) for b in self.bands))
        if self.bands and len(self.bands) != self.channels:
            raise AstrodetInputError(
                f"image recipe: {len(self.bands)} bands {self.bands} for {self.channels} model input channels"
            )
        if self.kind == "float":
            if not self.bands:
                raise AstrodetInputError("image recipe: a float recipe names its bands in channel order")
            stretch_params(self.stretch, self.params, self.channels)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (for checkpoint metadata and the catalogue's provenance)."""
        return {
            "kind": self.kind,
            "bands": list(self.bands),
            "stretch": self.stretch,
            "params": dict(self.params),
            "channels": self.channels,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageRecipe:
        """Inverse of :meth:`to_dict`; a missing or unknown key is a one-line error naming it."""
        known = {"kind", "bands", "stretch", "params", "channels"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise AstrodetInputError(f"image recipe: unknown key(s) {unknown}; expected {sorted(known)}")
        missing = sorted({"kind", "bands", "stretch"} - set(data))
        if missing:
            raise AstrodetInputError(f"image recipe: missing key(s) {missing}")
        return cls(
            kind=str(data["kind"]),
            bands=tuple(data["bands"]),
            stretch=str(data["stretch"]),
            params=dict(data.get("params") or {}),
            channels=int(data.get("channels", 3)),
        )


# The recipe of every config trained on PNG cutouts today (the simulated default, Clump Scout, Galaxy Zoo): 8-bit
# SDSS-style colour images made by astrodet.data.imaging.lupton_rgb from g, r, i surface brightness.
SIMULATOR_RECIPE = ImageRecipe(
    kind="rgb8",
    bands=("i", "r", "g"),
    stretch="lupton",
    params={
        "stretch": DEFAULT_STRETCH,
        "Q": DEFAULT_Q,
        "black": DEFAULT_BLACK,
        "weights": dict(SDSS_RGB_WEIGHTS),
        "unit": "nanomaggy/arcsec2",
    },
    channels=3,
)


@dataclass
class Detections:
    """One image's predictions in the pixel frame of the image handed to the model.

    ``boxes`` are ``(N, 4)`` x0, y0, x1, y1 in the COCO convention: origin at the top-left corner of the top-left
    pixel, x right, y down. ``labels`` index the model's ``classes``.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if not len(self.boxes) == len(self.scores) == len(self.labels):
            raise ValueError(
                f"Detections: {len(self.boxes)} boxes, {len(self.scores)} scores, {len(self.labels)} labels"
            )

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, keep: np.ndarray) -> Detections:
        """The detections at ``keep`` (a boolean mask or an index array)."""
        return Detections(self.boxes[keep], self.scores[keep], self.labels[keep])

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64))


@runtime_checkable
class Detector(Protocol):
    """A trained detector: ``predict`` takes ``(H, W, C)`` images, batched: uint8 RGB for ``rgb8`` recipes,
    float32 normalised bands (:func:`astrodet.data.normalise.prepare`) for ``float`` ones."""

    classes: tuple[str, ...]
    recipe: ImageRecipe
    framework: str

    def predict(self, images: Sequence[np.ndarray]) -> list[Detections]: ...


@runtime_checkable
class Classifier(Protocol):
    """A trained image classifier: ``predict`` gives ``(N, K)`` class probabilities.

    Vote models also have ``vote_columns`` and ``predict_votes(images) -> (N, A)`` vote fractions.
    """

    classes: tuple[str, ...]
    recipe: ImageRecipe
    framework: str

    def predict(self, images: Sequence[np.ndarray]) -> np.ndarray: ...


# config suffix -> module whose load_model(config, weights, device) builds the model (imported only when needed,
# so the core never imports a framework by itself)
_LOADERS: dict[str, str] = {
    ".yaml": "astrodet.detectron2.predictor",
    ".yml": "astrodet.detectron2.predictor",
    ".py": "astrodet.mmdet.predictor",
}


def framework_module(config: str | Path) -> str:
    """The adapter module that loads models for ``config``, chosen by its suffix (no flag to remember)."""
    suffix = Path(config).suffix.lower()
    if suffix not in _LOADERS:
        raise AstrodetInputError(
            f"{config}: cannot tell the framework from suffix {suffix!r}; expected a Detectron2 YAML (.yaml, .yml) "
            "or an MMDetection config (.py)"
        )
    return _LOADERS[suffix]


def check_images(images: Sequence[np.ndarray], channels: int) -> None:
    """What every predictor checks before a batch: each image is (H, W, channels)."""
    for index, image in enumerate(images):
        if image.ndim != 3 or image.shape[2] != channels:
            raise AstrodetInputError(f"image {index}: shape {image.shape}, the model takes (H, W, {channels}) images")


def check_stored_classes(stored: Sequence[str] | None, count: int, filename: str) -> None:
    """Refuse a checkpoint whose recorded class names number other than the ``count`` the config's model predicts.

    Why: both frameworks skip head weights of another shape when loading, so such a model would predict from a
    randomly initialised head under names that are not its own. ``stored`` is what the trainer recorded (Detectron2:
    ``classes``; mmengine: ``meta.dataset_meta.classes``); a checkpoint that records none is not checked.
    """
    if stored and len(stored) != count:
        raise AstrodetInputError(
            f"{filename}: trained on {len(stored)} classes {list(stored)}, but this config's model predicts {count}: "
            "use the config the checkpoint was trained with"
        )


def load_model(config: str | Path, weights: str | Path, device: str = "auto") -> Detector | Classifier:
    """Build the trained model of ``config`` with ``weights``, through the framework the config belongs to."""
    config_path, weights_path = Path(config), Path(weights)
    if not config_path.is_file():
        raise AstrodetInputError(f"--config {config}: no such file")
    module_name = framework_module(config_path)
    if not weights_path.is_file():
        raise AstrodetInputError(f"--weights {weights}: no such file")
    if weights_path.suffix.lower() == ".pkl":
        raise AstrodetInputError(
            f"--weights {weights}: pickled .pkl checkpoints are refused (they can run code when loaded); "
            "use a .pth state dict"
        )
    module = importlib.import_module(module_name)
    return module.load_model(config_path, weights_path, device=device)
