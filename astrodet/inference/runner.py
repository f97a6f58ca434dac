"""One ``astrodet predict`` run: inputs in chunks through the model to catalogue rows, resumable, with progress.

Why chunks: rows of finished chunks are kept in ``<out>.parts/`` (:mod:`~astrodet.inference.parts`), so a killed
run resumes where it stopped and the final catalogue, assembled from the chunks in order, equals an uninterrupted
run's. Within a chunk, images (or the tiles of large frames) go to the model in batches of ``batch_size``. Each
input is either predicted or rejected with a reason, and the summary checks that the numbers add up.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from astrodet.data.wholeimage import centre_crop_box
from astrodet.errors import AstrodetInputError
from astrodet.inference import catalogue as cat
from astrodet.inference.images import LoadedImage, load_fits, load_picture
from astrodet.inference.model import Detections, ImageRecipe
from astrodet.inference.parts import PartsFolder, file_sha256, run_key
from astrodet.inference.photometry import measure
from astrodet.inference.plot import DEFAULT_PLOT_MAX, plot_detections, plot_names
from astrodet.inference.postprocess import PostProcessing, postprocess
from astrodet.inference.rejects import InputRejected, reason_counts, write_rejects
from astrodet.inference.sky import box_size_arcsec
from astrodet.inference.sources import InputUnit, check_paths, discover, read_meta
from astrodet.inference.tiling import DEFAULT_OVERLAP, make_tiles, stitch, tile_views

TASKS = ("detection", "classification")
PROBE_SIDE = 256  # px: a blank image any model's test transforms accept (classifier crops are 180-224 px)


@dataclass
class PredictOptions:
    """Everything a run needs besides the model; field names are the command line's dest names."""

    inputs: Sequence[str]
    out: str
    config: str = ""
    weights: str = ""
    meta: str | None = None
    post: PostProcessing = field(default_factory=PostProcessing)
    batch_size: int = 8
    chunk_size: int = 64
    tile_size: int | None = None  # None: the model's input size
    tile_overlap: float = DEFAULT_OVERLAP
    crop: int | None = None
    bands: Sequence[str] | None = None  # band names of per-band FITS files; default: the recipe's
    cube_bands: Sequence[str] | None = None
    zeropoint: float | None = None
    aperture: float | None = None
    resume: bool = False
    progress: bool = True
    plot_dir: str | None = None  # a PNG of each predicted input's detections goes here (the first plot_max inputs)
    plot_max: int = DEFAULT_PLOT_MAX

    def check(self) -> None:
        for name in ("batch_size", "chunk_size"):
            if getattr(self, name) < 1:
                raise AstrodetInputError(f"--{name.replace('_', '-')}: expected a positive integer")
        if self.tile_size is not None and self.tile_size < 16:
            raise AstrodetInputError(f"--tile-size: expected at least 16 px, got {self.tile_size}")
        if not 0.0 <= self.tile_overlap < 0.5:
            raise AstrodetInputError(f"--tile-overlap: expected a fraction in [0, 0.5), got {self.tile_overlap}")
        if self.crop is not None and self.crop < 16:
            raise AstrodetInputError(f"--crop: expected at least 16 px, got {self.crop}")
        if self.aperture is not None and self.aperture <= 0:
            raise AstrodetInputError(f"--aperture: expected a radius > 0 px, got {self.aperture}")
        cat.catalogue_format(self.out)
        check_paths(self.inputs)
        if self.meta is not None and not os.path.isfile(self.meta):
            raise AstrodetInputError(f"--meta {self.meta}: no such file")
        if self.plot_dir is not None:
            if self.plot_max < 1:
                raise AstrodetInputError(f"--plot-max: expected a positive integer, got {self.plot_max}")
            if os.path.exists(self.plot_dir) and not os.path.isdir(self.plot_dir):
                raise AstrodetInputError(f"--plot {self.plot_dir}: exists and is not a folder")
            check_plot_folder(self.plot_dir, [p if os.path.isdir(p) else os.path.dirname(p) for p in self.inputs])


def check_plot_folder(plot_dir: str, input_folders: Sequence[str]) -> None:
    """Refuse a plot folder that holds inputs: plots there could overwrite an input (``x.png``) and would be
    predicted on by the next run over the folder."""
    target = os.path.realpath(plot_dir)
    for folder in input_folders:
        if os.path.realpath(folder or ".") == target:
            raise AstrodetInputError(
                f"--plot {plot_dir}: is the folder of the inputs ({folder or '.'}); write the plots to another folder"
            )


@dataclass(frozen=True)
class PredictSummary:
    inputs: int
    predicted: int
    rejected: dict[str, int]
    rows: int
    out: str
    rejects_csv: str
    seconds: float
    plots: int = 0
    plot_dir: str | None = None

    def line(self) -> str:
        rejected = sum(self.rejected.values())
        detail = ", ".join(f"{reason}: {n}" for reason, n in self.rejected.items())
        rate = self.inputs / self.seconds if self.seconds > 0 else float("inf")
        return (
            f"{self.inputs} inputs = {self.predicted} predicted + {rejected} rejected"
            + (f" ({detail})" if detail else "")
            + f"; {self.rows} rows in {self.out}; rejects in {self.rejects_csv}"
            + (f"; {self.plots} plots in {self.plot_dir}" if self.plot_dir is not None else "")
            + f"; {rate:.2f} images/s"
        )


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


class Predictor:
    """Turns chunks of inputs into catalogue rows for one model and one set of options."""

    def __init__(
        self,
        model: Any,
        options: PredictOptions,
        task: str,
        photometry_bands: Sequence[str],
        plot_names: Sequence[str] = (),
    ) -> None:
        self.model = model
        self.options = options
        self.task = task
        self.recipe: ImageRecipe = model.recipe
        self.bands = tuple(options.bands or self.recipe.bands)
        self.photometry_bands = tuple(photometry_bands)
        self.tile = options.tile_size or model_input_size(model)
        self.plot_names = plot_names  # per input index, when plotting
        if task == "detection":
            self.columns = cat.detection_columns(self.photometry_bands)
        else:
            self.columns = cat.classification_columns(model.classes, tuple(getattr(model, "vote_columns", ())))

    def load(self, unit: InputUnit) -> LoadedImage:
        if unit.kind == "picture":
            return load_picture(unit, self.recipe)
        o = self.options
        return load_fits(unit, self.recipe, self.bands, o.cube_bands, o.zeropoint)

    def chunk(self, units: Sequence[InputUnit], start: int, predicted_before: int = 0) -> dict[str, Any]:
        """Rows and rejects of ``units`` (image_index from ``start``), as JSON-able lists; ``predicted_before``
        inputs of the run were predicted in earlier chunks (it decides which inputs are plotted)."""
        rows: dict[str, list] = {name: [] for name, _ in self.columns}
        rejects: list[dict[str, str]] = []
        loaded: list[tuple[int, InputUnit, LoadedImage]] = []
        for offset, unit in enumerate(units):
            try:
                loaded.append((start + offset, unit, self.load(unit)))
            except InputRejected as err:
                rejects.append({"file": unit.file, "reason": err.reason, "message": err.message})
        if self.task == "detection":
            self._detect(loaded, rows, predicted_before)
        else:
            self._classify(loaded, rows)
        return {"units": len(units), "predicted": len(loaded), "rows": rows, "rejects": rejects}

    def _window(self, pixels: np.ndarray) -> tuple[int, int, np.ndarray]:
        height, width = pixels.shape[:2]
        if self.options.crop is None or (height <= self.options.crop and width <= self.options.crop):
            return 0, 0, pixels
        size = self.options.crop
        left, top, right, bottom = centre_crop_box(width, height, min(size, width, height))
        return left, top, pixels[top:bottom, left:right]

    def _batched(self, images: list[np.ndarray]) -> list:
        out: list = []
        size = self.options.batch_size
        for begin in range(0, len(images), size):
            out.extend(self.model.predict(images[begin : begin + size]))
        return out

    def _detect(
        self, loaded: list[tuple[int, InputUnit, LoadedImage]], rows: dict[str, list], predicted_before: int
    ) -> None:
        plans, views = [], []
        for index, unit, image in loaded:
            left, top, window = self._window(image.pixels)
            tiles = make_tiles(window.shape[0], window.shape[1], self.tile, self.options.tile_overlap)
            plans.append((index, unit, image, left, top, window, tiles, len(views)))
            views.extend(tile_views(window, tiles))
        predictions = self._batched(views)
        for ordinal, (index, unit, image, left, top, window, tiles, first) in enumerate(plans, predicted_before):
            found = stitch(tiles, predictions[first : first + len(tiles)])
            found = Detections(found.boxes + np.array([left, top, left, top]), found.scores, found.labels)
            height, width = image.pixels.shape[:2]
            found = postprocess(found, self.options.post, width, height)
            self._detection_rows(index, unit, image, found, rows)
            if self.plot_names and ordinal < self.options.plot_max:
                self._plot(index, image, window, (left, top), found)

    def _plot(
        self, index: int, image: LoadedImage, window: np.ndarray, origin: tuple[int, int], found: Detections
    ) -> None:
        """The model's input (the ``--crop`` window, else the whole frame) with ``found`` drawn on it."""
        path = os.path.join(str(self.options.plot_dir), self.plot_names[index])
        scale = image.sky.pixel_scale if image.sky is not None else None
        plot_detections(path, window, found, self.model.classes, self.options.post.score_threshold, origin, scale)

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

    def _classify(self, loaded: list[tuple[int, InputUnit, LoadedImage]], rows: dict[str, list]) -> None:
        if not loaded:
            return
        images = [image.pixels for _, _, image in loaded]
        probabilities = np.concatenate([np.asarray(p, dtype=float).reshape(1, -1) for p in self._batched(images)])
        votes_columns = tuple(getattr(self.model, "vote_columns", ()))
        votes = None
        if votes_columns:
            size = self.options.batch_size
            votes = np.concatenate(
                [np.asarray(self.model.predict_votes(images[b : b + size])) for b in range(0, len(images), size)]
            )
        for k, (index, unit, image) in enumerate(loaded):
            best = int(np.argmax(probabilities[k]))
            height, width = image.pixels.shape[:2]
            ra, dec = image.sky.world(np.array([width / 2]), np.array([height / 2])) if image.sky else ([np.nan],) * 2
            values = {
                "file": unit.file,
                "image_index": index,
                "class_name": self.model.classes[best],
                "class_id": best,
                "score": float(probabilities[k, best]),
                "ra": float(ra[0]),
                "dec": float(dec[0]),
            }
            values.update({f"p_{c}": float(probabilities[k, j]) for j, c in enumerate(self.model.classes)})
            if votes is not None:
                values.update({f"vote_{c}": float(votes[k, j]) for j, c in enumerate(votes_columns)})
            for name, _ in self.columns:
                rows[name].append(values[name])


def _settings(options: PredictOptions, model: Any, task: str, units: Sequence[InputUnit], sha: str) -> dict:
    """What decides the output (the resume key); batch size and progress do not."""
    return {
        "config": os.path.realpath(options.config) if options.config else "",
        "weights_sha256": sha,
        "task": task,
        "recipe": model.recipe.to_dict(),
        "units": [u.describe() for u in units],
        "meta": file_sha256(options.meta) if options.meta else None,
        "post": options.post.to_dict(),
        "chunk_size": options.chunk_size,
        "tile": [options.tile_size or model_input_size(model), options.tile_overlap],
        "crop": options.crop,
        "bands": list(options.bands or ()),
        "cube_bands": list(options.cube_bands or ()),
        "zeropoint": options.zeropoint,
        "aperture": options.aperture,
    }


def run_predict(model: Any, options: PredictOptions) -> PredictSummary:
    """Predict over ``options.inputs`` with ``model`` and write the catalogue and the rejects table."""
    options.check()
    started = time.perf_counter()
    meta = read_meta(options.meta) if options.meta else None
    units = discover(options.inputs, tuple(options.bands or model.recipe.bands), meta)
    task = model_task(model)
    names = _plot_names(options, task, units)
    photometry_bands = tuple(options.bands or model.recipe.bands) if any(u.kind == "fits" for u in units) else ()
    predictor = Predictor(model, options, task, photometry_bands if task == "detection" else (), names)
    sha = file_sha256(options.weights) if options.weights else ""
    parts = PartsFolder(options.out)
    now = datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    created = parts.start(run_key(_settings(options, model, task, units, sha)), now, options.resume)
    chunks = [(k, units[s : s + options.chunk_size], s) for k, s in enumerate(range(0, len(units), options.chunk_size))]
    done = parts.done()
    _run_chunks(predictor, parts, chunks, done, options.progress)
    rows: dict[str, list] = {name: [] for name, _ in predictor.columns}
    rejects: list[dict[str, str]] = []
    predicted = 0
    for k, _, _ in chunks:
        chunk = parts.load(k)
        predicted += chunk["predicted"]
        rejects.extend(chunk["rejects"])
        for name in rows:
            rows[name].extend(chunk["rows"][name])
    if len(units) != predicted + len(rejects):
        raise RuntimeError(f"input accounting broken: {len(units)} inputs != {predicted} + {len(rejects)} rejected")
    table_meta = {
        "astrodet_version": _version(),
        "config": str(options.config),
        "weights": str(options.weights),
        "weights_sha256": sha,
        "framework": str(getattr(model, "framework", "")),
        "task": task,
        "recipe": model.recipe.to_dict(),
        "created": created,
        "score_threshold": options.post.score_threshold,
        "nms_iou": options.post.nms_iou,
        "postprocess": options.post.to_dict(),
        "tile_size": predictor.tile,
        "tile_overlap": options.tile_overlap,
        "crop": options.crop,
        "inputs": len(units),
        "rejected": len(rejects),
    }
    table = cat.build_table(predictor.columns, rows, table_meta)
    cat.write_catalogue(table, options.out)
    rejects_csv = cat.rejects_path(options.out)
    write_rejects(rejects_csv, rejects)
    parts.remove()
    return PredictSummary(
        len(units), predicted, reason_counts(rejects), len(table), str(options.out), str(rejects_csv),
        time.perf_counter() - started, min(predicted, options.plot_max) if names else 0, options.plot_dir,
    )  # fmt: skip


def _plot_names(options: PredictOptions, task: str, units: Sequence[InputUnit]) -> list[str]:
    """The PNG name of each input when ``--plot`` is given (else none), after checking that plotting can work."""
    if options.plot_dir is None:
        return []
    if task != "detection":
        raise AstrodetInputError(f"--plot: draws detections; the model of --config {options.config} is a {task} model")
    files = [path for unit in units for path in (unit.path, *(f for _, f in unit.band_files)) if path]
    check_plot_folder(options.plot_dir, sorted({os.path.dirname(path) for path in files}))
    return plot_names([unit.file for unit in units])


def _run_chunks(predictor: Predictor, parts: PartsFolder, chunks: list, done: set[int], progress: bool) -> None:
    from tqdm import tqdm

    total = sum(len(units) for _, units, _ in chunks)
    finished = sum(len(units) for k, units, _ in chunks if k in done)
    rows = rejected = 0
    predicted = 0  # inputs predicted so far, in input order, finished chunks included: decides which are plotted
    with tqdm(total=total, initial=finished, disable=not progress, unit="img", desc="predict") as bar:
        for k, units, start in chunks:
            if k in done:
                if predictor.plot_names and predicted < predictor.options.plot_max:  # else the count is not needed
                    predicted += parts.load(k)["predicted"]
                continue
            chunk = predictor.chunk(units, start, predicted)
            predicted += chunk["predicted"]
            parts.save(k, chunk)
            rows += len(chunk["rows"]["file"])
            rejected += len(chunk["rejects"])
            bar.set_postfix(rows=rows, rejected=rejected, refresh=False)
            bar.update(len(units))


def _version() -> str:
    from astrodet import __version__

    return __version__
