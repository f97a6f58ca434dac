"""One ``astrodet predict`` run: inputs in chunks through the model to catalogue rows, resumable, with progress.

Why chunks: rows of finished chunks are kept in ``<out>.parts/`` (:mod:`~astrodet.inference.parts`), so a killed
run resumes where it stopped and the final catalogue, assembled from the chunks in order, equals an uninterrupted
run's. Within a chunk, images (or the tiles of large frames) go to the model in batches of ``batch_size``. Each
input is either predicted or rejected with a reason, and the summary checks that the numbers add up.

:func:`plan_run` (before the first image), :func:`run_meta` (the catalogue's provenance), :func:`write_run` (the
catalogue) and :func:`finish_run` (the rejects and the summary) are the driver's part of either engine: this module's
chunks in one process, or :mod:`~astrodet.inference.ray_engine` on a Ray cluster.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from astrodet.errors import AstrodetInputError
from astrodet.inference import catalogue as cat
from astrodet.inference.parts import PartsFolder, file_sha256, run_key
from astrodet.inference.plot import DEFAULT_PLOT_MAX, plot_names
from astrodet.inference.postprocess import PostProcessing
from astrodet.inference.precision import PRECISIONS, set_precision
from astrodet.inference.rejects import reason_counts, write_rejects
from astrodet.inference.rows import Predictor, model_input_size, model_task
from astrodet.inference.sources import InputUnit, check_paths, discover, read_meta
from astrodet.inference.tiling import DEFAULT_OVERLAP


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
    match_psf: float | None = None  # training PSF FWHM in model-input px: crop each input to match it (scale_match)
    bands: Sequence[str] | None = None  # band names of per-band FITS files; default: the recipe's
    cube_bands: Sequence[str] | None = None
    zeropoint: float | None = None
    aperture: float | None = None
    resume: bool = False
    progress: bool = True
    plot_dir: str | None = None  # a PNG of each predicted input's detections goes here (the first plot_max inputs)
    plot_max: int = DEFAULT_PLOT_MAX
    precision: str = "fp32"  # the model's feature extractor under autocast (astrodet.inference.precision)
    parquet_dataset: bool = False  # out is a folder of Parquet parts (astrodet.inference.parquet_dataset)

    def check(self) -> None:
        if self.precision not in PRECISIONS:
            raise AstrodetInputError(f"--precision {self.precision}: expected one of {', '.join(PRECISIONS)}")
        for name in ("batch_size", "chunk_size"):
            if getattr(self, name) < 1:
                raise AstrodetInputError(f"--{name.replace('_', '-')}: expected a positive integer")
        if self.tile_size is not None and self.tile_size < 16:
            raise AstrodetInputError(f"--tile-size: expected at least 16 px, got {self.tile_size}")
        if not 0.0 <= self.tile_overlap < 0.5:
            raise AstrodetInputError(f"--tile-overlap: expected a fraction in [0, 0.5), got {self.tile_overlap}")
        if self.crop is not None and self.crop < 16:
            raise AstrodetInputError(f"--crop: expected at least 16 px, got {self.crop}")
        if self.match_psf is not None:
            if not self.match_psf > 0:
                raise AstrodetInputError(f"--match-psf: expected a PSF FWHM > 0 px, got {self.match_psf}")
            if self.crop is not None or self.tile_size is not None:
                raise AstrodetInputError("--match-psf: not with --crop or --tile-size (it chooses each input's crop)")
        if self.aperture is not None and self.aperture <= 0:
            raise AstrodetInputError(f"--aperture: expected a radius > 0 px, got {self.aperture}")
        self._check_out()
        check_paths(self.inputs)
        if self.meta is not None and not os.path.isfile(self.meta):
            raise AstrodetInputError(f"--meta {self.meta}: no such file")
        if self.plot_dir is not None:
            if self.plot_max < 1:
                raise AstrodetInputError(f"--plot-max: expected a positive integer, got {self.plot_max}")
            if os.path.exists(self.plot_dir) and not os.path.isdir(self.plot_dir):
                raise AstrodetInputError(f"--plot {self.plot_dir}: exists and is not a folder")
            check_plot_folder(self.plot_dir, [p if os.path.isdir(p) else os.path.dirname(p) for p in self.inputs])


    def _check_out(self) -> None:
        cat.catalogue_format(self.out)
        if not self.parquet_dataset:
            if os.path.isdir(self.out):
                raise AstrodetInputError(f"--out {self.out}: is a folder; a catalogue is a file (or --parquet-dataset)")
            return
        if Path(self.out).suffix.lower() != ".parquet":
            raise AstrodetInputError(f"--parquet-dataset: --out names a folder ending in .parquet, got {self.out}")
        if os.path.exists(self.out) and not os.path.isdir(self.out):
            raise AstrodetInputError(f"--out {self.out}: is a file; --parquet-dataset writes a folder of part files")


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


def run_settings(options: PredictOptions, model: Any, plan: RunPlan) -> dict:
    """What decides the output (the resume key); batch size and progress do not."""
    settings = {
        "config": os.path.realpath(options.config) if options.config else "",
        "weights_sha256": plan.weights_sha256,
        "task": plan.task,
        "recipe": model.recipe.to_dict(),
        "units": [u.describe() for u in plan.units],
        "meta": file_sha256(options.meta) if options.meta else None,
        "post": options.post.to_dict(),
        "chunk_size": options.chunk_size,
        "tile": [options.tile_size or model_input_size(model), options.tile_overlap],
        "crop": options.crop,
        "bands": list(options.bands or ()),
        "cube_bands": list(options.cube_bands or ()),
        "zeropoint": options.zeropoint,
        "aperture": options.aperture,
        "precision": options.precision,
    }
    if options.match_psf is not None:  # only when used, so runs started before the option existed still resume
        settings["match_psf"] = options.match_psf
    return settings


@dataclass(frozen=True)
class RunPlan:
    """What the driver of either engine settles before predicting: the inputs in order, the task, the photometry
    bands, the plot names, the weights' hash; ``started`` for the rate in the summary."""

    units: list[InputUnit]
    task: str
    photometry_bands: tuple[str, ...]
    plot_names: list[str]
    weights_sha256: str
    started: float


def plan_run(model: Any, options: PredictOptions) -> RunPlan:
    """Check the options and discover the inputs: everything before the first image."""
    options.check()
    started = time.perf_counter()
    meta = read_meta(options.meta) if options.meta else None
    units = discover(options.inputs, tuple(options.bands or model.recipe.bands), meta)
    task = model_task(model)
    names = _plot_names(options, task, units)
    fits_inputs = task == "detection" and any(u.kind == "fits" for u in units)
    photometry_bands = tuple(options.bands or model.recipe.bands) if fits_inputs else ()
    sha = file_sha256(options.weights) if options.weights else ""
    return RunPlan(units, task, photometry_bands, names, sha, started)


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def run_predict(model: Any, options: PredictOptions) -> PredictSummary:
    """Predict over ``options.inputs`` with ``model`` and write the catalogue and the rejects table."""
    if options.parquet_dataset:
        raise AstrodetInputError("--parquet-dataset: works with --engine ray only (this engine writes one catalogue)")
    plan = plan_run(model, options)
    set_precision(model, options.precision)
    predictor = Predictor(model, options, plan.task, plan.photometry_bands, dict(enumerate(plan.plot_names)))
    parts = PartsFolder(options.out)
    created = parts.start(run_key(run_settings(options, model, plan)), utc_now(), options.resume)
    units = plan.units
    chunks = [(k, units[s : s + options.chunk_size], s) for k, s in enumerate(range(0, len(units), options.chunk_size))]
    _run_chunks(predictor, parts, chunks, parts.done(), options.progress)
    summary = write_run(model, options, plan, predictor, [parts.load(k) for k, _, _ in chunks], created, "local")
    parts.remove()
    return summary


def write_run(
    model: Any,
    options: PredictOptions,
    plan: RunPlan,
    predictor: Predictor,
    results: Sequence[dict[str, Any]],
    created: str,
    engine: str,
) -> PredictSummary:
    """Write the catalogue (atomically, provenance in its meta) and the rejects table from ``results`` in input
    order (chunk dicts as :meth:`Predictor.chunk` returns them); check that every input is accounted for."""
    rows = predictor.empty_rows()
    rejects: list[dict[str, str]] = []
    predicted = 0
    for result in results:
        predicted += result["predicted"]
        rejects.extend(result["rejects"])
        for name in rows:
            rows[name].extend(result["rows"][name])
    units = plan.units
    if len(units) != predicted + len(rejects):
        raise RuntimeError(f"input accounting broken: {len(units)} inputs != {predicted} + {len(rejects)} rejected")
    meta = {**run_meta(model, options, plan, predictor, created, engine), "rejected": len(rejects)}
    table = cat.build_table(predictor.columns, rows, meta)
    cat.write_catalogue(table, options.out)
    return finish_run(options, plan, rejects, predicted, len(table))


def finish_run(
    options: PredictOptions, plan: RunPlan, rejects: list[dict[str, str]], predicted: int, rows: int
) -> PredictSummary:
    """The rejects table beside the catalogue and the run's summary (either engine, either output)."""
    rejects_csv = cat.rejects_path(options.out)
    write_rejects(rejects_csv, rejects)
    plots = min(predicted, options.plot_max) if plan.plot_names else 0
    return PredictSummary(
        len(plan.units), predicted, reason_counts(rejects), rows, str(options.out), str(rejects_csv),
        time.perf_counter() - plan.started, plots, options.plot_dir,
    )  # fmt: skip


def run_meta(
    model: Any, options: PredictOptions, plan: RunPlan, predictor: Predictor, created: str, engine: str
) -> dict[str, Any]:
    """The catalogue's provenance (its ``meta``) but the reject count, which is known only at the end."""
    return {
        "astrodet_version": _version(),
        "config": str(options.config),
        "weights": str(options.weights),
        "weights_sha256": plan.weights_sha256,
        "framework": str(getattr(model, "framework", "")),
        "task": plan.task,
        "recipe": model.recipe.to_dict(),
        "created": created,
        "score_threshold": options.post.score_threshold,
        "nms_iou": options.post.nms_iou,
        "postprocess": options.post.to_dict(),
        "tile_size": predictor.tile,
        "tile_overlap": options.tile_overlap,
        "crop": options.crop,
        "match_psf": options.match_psf,
        "precision": options.precision,
        "engine": engine,
        "inputs": len(plan.units),
    }


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
