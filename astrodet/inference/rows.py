"""From inputs to catalogue rows in three stages, shared by both engines of ``astrodet predict``.

Why stages: the single-process engine (:mod:`~astrodet.inference.runner`) runs them one after the other per chunk;
the Ray engine (:mod:`~astrodet.inference.ray_engine`) runs :meth:`InputPreparer.prepare` (decoding, rendering,
tiling: no model) in parallel tasks and :meth:`Predictor.infer` + :meth:`Predictor.rows` in model actors. One
implementation of each stage means both engines give the same rows and rejects for the same inputs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from astrodet.data.wholeimage import centre_crop_box
from astrodet.errors import AstrodetInputError
from astrodet.inference import catalogue as cat
from astrodet.inference.images import LoadedImage, load_fits, load_picture
from astrodet.inference.model import Detections, ImageRecipe
from astrodet.inference.photometry import measure
from astrodet.inference.plot import plot_detections
from astrodet.inference.postprocess import postprocess
from astrodet.inference.rejects import NO_PSF_SCALE, InputRejected
from astrodet.inference.scale_match import CropTooSmall, plan_crop
from astrodet.inference.sky import box_size_arcsec
from astrodet.inference.sources import InputUnit
from astrodet.inference.tiling import Tile, make_tiles, stitch, tile_views

if TYPE_CHECKING:
    from astrodet.inference.runner import PredictOptions

TASKS = ("detection", "classification")
PROBE_SIDE = 256  # px: a blank image any model's test transforms accept (classifier crops are 180-224 px)


def model_task(model: Any) -> str:
    """``detection`` or ``classification``: the model's ``task`` if it says; a model with vote columns classifies;
    else what ``predict`` returns for a blank image (the protocols differ only in that)."""
    task = getattr(model, "task", None)
    if task in TASKS:
        return str(task)
    if hasattr(model, "vote_columns") or hasattr(model, "predict_votes"):
        return "classification"
    side = getattr(model, "input_size", None) or PROBE_SIDE
    probe = model.predict([np.zeros((side, side, model.recipe.channels), dtype=np.uint8)])
    return "classification" if isinstance(probe, np.ndarray) else "detection"


def model_input_size(model: Any) -> int | None:
    """The square side the model was trained at (tiles are this big); None: any size."""
    size = getattr(model, "input_size", None) or model.recipe.params.get("input_size")
    return int(size) if size else None


@dataclass
class Prepared:
    """One input ready for the model: its pixels, the window predicted (``--crop``) and the views the model sees
    (a detector's tiles of the window; a classifier's whole image)."""

    index: int  # image_index in the catalogue: the input's position in discovery order
    unit: InputUnit
    image: LoadedImage
    origin: tuple[int, int] = (0, 0)  # the window's top-left corner in the image
    window: np.ndarray | None = None
    tiles: list[Tile] = field(default_factory=list)
    views: list[np.ndarray] = field(default_factory=list)


def reject_row(unit: InputUnit, err: InputRejected) -> dict[str, str]:
    return {"file": unit.file, "reason": err.reason, "message": err.message}


class InputPreparer:
    """Stage 1, no model needed: an input decoded, rendered by the recipe, windowed and tiled."""

    def __init__(self, options: PredictOptions, recipe: ImageRecipe, task: str, tile: int | None) -> None:
        self.options, self.recipe, self.task, self.tile = options, recipe, task, tile
        self.bands = tuple(options.bands or recipe.bands)
        if options.match_psf is not None and (task != "detection" or tile is None):
            raise AstrodetInputError("--match-psf: needs a detector trained at a fixed input size (INPUT.*_SIZE_TEST)")

    def load(self, unit: InputUnit) -> LoadedImage:
        if unit.kind == "picture":
            return load_picture(unit, self.recipe)
        o = self.options
        return load_fits(unit, self.recipe, self.bands, o.cube_bands, o.zeropoint)

    def prepare(self, index: int, unit: InputUnit) -> Prepared:
        """The input at ``index``; raises :class:`InputRejected` when it cannot be predicted on."""
        image = self.load(unit)
        if self.task != "detection":
            return Prepared(index, unit, image, views=[image.pixels])
        left, top, window = self._window(image.pixels, self._crop_side(unit, image.pixels.shape))
        # --match-psf: the crop goes whole to the model, whose resize to its input side sets the scale
        tile = None if self.options.match_psf is not None else self.tile
        tiles = make_tiles(window.shape[0], window.shape[1], tile, self.options.tile_overlap)
        return Prepared(index, unit, image, (left, top), window, tiles, tile_views(window, tiles))

    def _crop_side(self, unit: InputUnit, shape: tuple[int, ...]) -> int | None:
        """``--crop``, or with ``--match-psf`` the side that gives this input's PSF the training size."""
        target = self.options.match_psf
        if target is None:
            return self.options.crop
        sky = unit.sky
        if sky is None or sky.pixel_scale is None or sky.psf_fwhm is None:
            raise InputRejected(NO_PSF_SCALE, "--match-psf needs this image's pixel_scale and psf_fwhm (--meta)")
        try:
            return plan_crop(shape[1], shape[0], sky.pixel_scale, sky.psf_fwhm, target, int(self.tile or 0)).side
        except CropTooSmall as err:
            raise InputRejected(NO_PSF_SCALE, str(err)) from None

    @staticmethod
    def _window(pixels: np.ndarray, size: int | None) -> tuple[int, int, np.ndarray]:
        height, width = pixels.shape[:2]
        if size is None or (height <= size and width <= size):
            return 0, 0, pixels
        left, top, right, bottom = centre_crop_box(width, height, min(size, width, height))
        return left, top, pixels[top:bottom, left:right]


class Predictor:
    """Stages 2 and 3 for one model and one set of options: model outputs for prepared inputs, then their rows."""

    def __init__(
        self,
        model: Any,
        options: PredictOptions,
        task: str,
        photometry_bands: Sequence[str],
        plot_names: Mapping[int, str] | None = None,
    ) -> None:
        self.model = model
        self.options = options
        self.task = task
        self.photometry_bands = tuple(photometry_bands)
        self.preparer = InputPreparer(options, model.recipe, task, options.tile_size or model_input_size(model))
        self.tile = self.preparer.tile
        self.plot_names = plot_names or {}  # input index -> PNG name of the inputs that may be plotted
        if task == "detection":
            self.columns = cat.detection_columns(self.photometry_bands)
        else:
            self.columns = cat.classification_columns(model.classes, tuple(getattr(model, "vote_columns", ())))

    def empty_rows(self) -> dict[str, list]:
        return {name: [] for name, _ in self.columns}

    def chunk(self, units: Sequence[InputUnit], start: int, predicted_before: int = 0) -> dict[str, Any]:
        """Rows and rejects of ``units`` (image_index from ``start``), as JSON-able lists; ``predicted_before``
        inputs of the run were predicted in earlier chunks (it decides which inputs are plotted)."""
        rejects: list[dict[str, str]] = []
        prepared: list[Prepared] = []
        for offset, unit in enumerate(units):
            try:
                prepared.append(self.preparer.prepare(start + offset, unit))
            except InputRejected as err:
                rejects.append(reject_row(unit, err))
        rows = self.rows(prepared, self.infer(prepared), predicted_before)
        return {"units": len(units), "predicted": len(prepared), "rows": rows, "rejects": rejects}

    def _batched(self, images: list[np.ndarray]) -> list:
        out: list = []
        size = self.options.batch_size
        for begin in range(0, len(images), size):
            out.extend(self.model.predict(images[begin : begin + size]))
        return out

    def infer(self, prepared: Sequence[Prepared]) -> list[Any]:
        """Stage 2: per prepared input, a detector's ``Detections`` of each tile, or a classifier's probabilities
        and (vote models) vote fractions; the views of all inputs go to the model in ``batch_size`` batches."""
        views = [view for item in prepared for view in item.views]
        if self.task == "detection":
            predictions, out, first = self._batched(views), [], 0
            for item in prepared:
                out.append(predictions[first : first + len(item.views)])
                first += len(item.views)
            return out
        if not views:
            return []
        probabilities = np.concatenate([np.asarray(p, dtype=float).reshape(1, -1) for p in self._batched(views)])
        votes: list[Any] = [None] * len(views)
        if getattr(self.model, "vote_columns", ()):
            size = self.options.batch_size
            votes = list(
                np.concatenate(
                    [np.asarray(self.model.predict_votes(views[b : b + size])) for b in range(0, len(views), size)]
                )
            )
        return list(zip(probabilities, votes, strict=True))

    def rows(self, prepared: Sequence[Prepared], outputs: Sequence[Any], predicted_before: int = 0) -> dict[str, list]:
        """Stage 3: catalogue rows of the prepared inputs from their model outputs (post-processing, sky positions,
        photometry; the plots of the first ``--plot-max`` predicted inputs of the run)."""
        rows = self.empty_rows()
        for ordinal, (item, output) in enumerate(zip(prepared, outputs, strict=True), predicted_before):
            if self.task == "detection":
                found = self._detections(item, output)
                self._detection_rows(item.index, item.unit, item.image, found, rows)
                if item.index in self.plot_names and ordinal < self.options.plot_max:
                    self._plot(item, found)
            else:
                self._classification_row(item, *output, rows)
        return rows

    def _detections(self, item: Prepared, tile_predictions: Sequence[Detections]) -> Detections:
        left, top = item.origin
        found = stitch(item.tiles, list(tile_predictions))
        found = Detections(found.boxes + np.array([left, top, left, top]), found.scores, found.labels)
        height, width = item.image.pixels.shape[:2]
        return postprocess(found, self.options.post, width, height)

    def _plot(self, item: Prepared, found: Detections) -> None:
        """The model's input (the ``--crop`` window, else the whole frame) with ``found`` drawn on it."""
        path = os.path.join(str(self.options.plot_dir), self.plot_names[item.index])
        scale = item.image.sky.pixel_scale if item.image.sky is not None else None
        threshold = self.options.post.score_threshold
        plot_detections(path, item.window, found, self.model.classes, threshold, item.origin, scale)

    def _detection_rows(
        self, index: int, unit: InputUnit, image: LoadedImage, found: Detections, rows: dict[str, list]
    ) -> None:
        n = len(found)
        if n and found.labels.max() >= len(self.model.classes):
            raise RuntimeError(f"the model returned label {found.labels.max()} for {len(self.model.classes)} classes")
        boxes = found.boxes
        x = (boxes[:, 0] + boxes[:, 2]) / 2
        y = (boxes[:, 1] + boxes[:, 3]) / 2
        if image.sky is not None:
            ra, dec = image.sky.world(x, y)
            size = box_size_arcsec(boxes, image.sky.pixel_scale)
        else:
            ra, dec, size = np.full(n, np.nan), np.full(n, np.nan), box_size_arcsec(boxes, None)
        values: dict[str, Any] = {
            "file": [unit.file] * n,
            "image_index": [index] * n,
            "object_index": list(range(n)),
            "class_name": [self.model.classes[k] for k in found.labels],
            "class_id": found.labels.tolist(),
            "score": found.scores.tolist(),
            "x_min": boxes[:, 0].tolist(),
            "y_min": boxes[:, 1].tolist(),
            "x_max": boxes[:, 2].tolist(),
            "y_max": boxes[:, 3].tolist(),
            "x": x.tolist(),
            "y": y.tolist(),
            "ra": np.asarray(ra, dtype=float).tolist(),
            "dec": np.asarray(dec, dtype=float).tolist(),
            "size_arcsec": size.tolist(),
        }
        if self.photometry_bands:
            phot = measure(image.bands, boxes, image.pixels.shape[0], self.photometry_bands, self.options.aperture)
            values.update({k: v.tolist() for k, v in phot.items()})
        for name, _ in self.columns:
            rows[name].extend(values[name])

    def _classification_row(
        self, item: Prepared, probabilities: np.ndarray, votes: np.ndarray | None, rows: dict[str, list]
    ) -> None:
        best = int(np.argmax(probabilities))
        height, width = item.image.pixels.shape[:2]
        sky = item.image.sky
        ra, dec = sky.world(np.array([width / 2]), np.array([height / 2])) if sky else ([np.nan],) * 2
        values = {
            "file": item.unit.file,
            "image_index": item.index,
            "class_name": self.model.classes[best],
            "class_id": best,
            "score": float(probabilities[best]),
            "ra": float(ra[0]),
            "dec": float(dec[0]),
        }
        values.update({f"p_{c}": float(probabilities[j]) for j, c in enumerate(self.model.classes)})
        if votes is not None:
            vote_columns = tuple(self.model.vote_columns)
            values.update({f"vote_{c}": float(votes[j]) for j, c in enumerate(vote_columns)})
        for name, _ in self.columns:
            rows[name].append(values[name])
