"""``astrodet predict --engine ray``: the same run on a Ray cluster (a local one by default), with Ray Data.

Why Ray and what runs where: astrodet must not grow its own scheduler. The driver (this process) does what needs
the whole run: the options, input discovery and the catalogue writer (:func:`~astrodet.inference.runner.plan_run`
and :func:`~astrodet.inference.runner.write_run`, shared with the single-process engine). Decoding, rendering and
tiling (:meth:`~astrodet.inference.rows.InputPreparer.prepare`) run in Ray tasks; the model runs in
:class:`ModelActor`, a stateful actor that loads it once, through ``Dataset.map_batches`` with a pool of N actors: one
actor per GPU when the cluster has GPUs, else N CPU actors whose torch threads share the cores (cores // N each, so
N actors do not oversubscribe them). Each input comes back as one JSON result (rows and rejects, as a chunk of the
single-process engine), is checked to arrive exactly once, and the catalogue is written once, atomically; or, with
``--parquet-dataset``, as a folder of Parquet parts, each written as soon as its inputs are done, which ``--resume``
continues (:mod:`~astrodet.inference.parquet_dataset`). ``--plot`` pictures are drawn by the actors, each written
atomically; the driver picks which inputs (:func:`first_predicted`) so that they are those of the single-process run.

A model actor that dies (a killed worker, a lost node) is restarted and its batch retried by Ray Data (its defaults
for actor pools: ``max_restarts=-1``, ``max_task_retries=-1``); a retried batch replaces the lost one, so no row is
lost or repeated. Sky positions can differ from the single-process run's in the last bits (about 1e-12 degrees):
the inputs' WCS travel from the decoding tasks to the actors pickled, which astropy does through FITS header text.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from astrodet.errors import AstrodetInputError
from astrodet.inference.parquet_dataset import ParquetDataset
from astrodet.inference.parts import run_key
from astrodet.inference.precision import check_precision, set_precision
from astrodet.inference.rejects import InputRejected
from astrodet.inference.rows import InputPreparer, Predictor, reject_row
from astrodet.inference.runner import (
    PredictOptions,
    PredictSummary,
    finish_run,
    plan_run,
    run_meta,
    run_settings,
    utc_now,
    write_run,
)
from astrodet.inference.sources import InputUnit

RAY_EXTRA = "pip install 'astrodet[ray]'"
DEVICES = ("auto", "cpu", "cuda")


def import_ray() -> Any:
    """The ``ray`` module with Ray Data, or a one-line error naming the extra that installs it."""
    try:
        import ray
        import ray.data  # the data extra (pyarrow, pandas)
    except ImportError:
        raise AstrodetInputError(f"--engine ray: Ray (with Ray Data) is not installed; {RAY_EXTRA}") from None
    return ray


def absolute_paths(unit: InputUnit) -> InputUnit:
    """``unit`` with the files to open made absolute (workers need not share the driver's working folder); its
    ``file``, the catalogue's name for it, stays as given."""
    return dataclasses.replace(
        unit,
        path=os.path.abspath(unit.path) if unit.path else unit.path,
        band_files=tuple((band, os.path.abspath(path)) for band, path in unit.band_files),
    )


class PrepareInput:
    """The Ray task of one input: a row ``{index, unit}`` to ``{index, prepared, reject}`` (pickled ``Prepared``
    or a JSON reject row; bytes and text, so every block has the same Arrow schema)."""

    def __init__(self, preparer: InputPreparer) -> None:
        self.preparer = preparer

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        index, unit = int(row["index"]), pickle.loads(row["unit"])
        try:
            prepared = self.preparer.prepare(index, unit)
        except InputRejected as err:
            return {"index": index, "prepared": b"", "reject": json.dumps(reject_row(unit, err))}
        return {"index": index, "prepared": pickle.dumps(prepared), "reject": ""}


class ModelActor:
    """Loads the model once per actor, then turns batches of prepared inputs into one JSON result per input."""

    def __init__(
        self,
        load: Callable[..., Any],
        options: PredictOptions,
        task: str,
        photometry_bands: tuple[str, ...],
        device: str,
        threads: int | None,
        plot_names: dict[int, str],
    ) -> None:
        import torch

        if threads is not None:
            torch.set_num_threads(threads)
        model = load(device=device)
        set_precision(model, options.precision)
        self.predictor = Predictor(model, options, task, photometry_bands, plot_names)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results: dict[int, dict[str, Any]] = {}
        prepared = []
        for index, payload, reject in zip(batch["index"], batch["prepared"], batch["reject"], strict=True):
            if reject:
                empty = self.predictor.empty_rows()
                results[int(index)] = {"units": 1, "predicted": 0, "rows": empty, "rejects": [json.loads(reject)]}
            else:
                prepared.append(pickle.loads(payload))
        for item, output in zip(prepared, self.predictor.infer(prepared), strict=True):
            rows = self.predictor.rows([item], [output])
            results[item.index] = {"units": 1, "predicted": 1, "rows": rows, "rejects": []}
        order = sorted(results)
        return {
            "index": np.asarray(order, dtype=np.int64),
            "result": np.asarray([json.dumps(results[k]) for k in order], dtype=object),
        }


def check_engine_args(num_workers: int | None, device: str) -> None:
    """Refuse what the Ray engine cannot do before anything is loaded or started."""
    if num_workers is not None and num_workers < 1:
        raise AstrodetInputError(f"--num-workers: expected a positive integer, got {num_workers}")
    if device not in DEVICES:
        raise AstrodetInputError(f"--device {device}: with --engine ray, one of {', '.join(DEVICES)}")


def actor_layout(
    resources: dict[str, float], num_workers: int | None, device: str, precision: str
) -> tuple[str, int, dict[str, Any], int | None]:
    """Device, actor count, per-actor Ray resources and torch threads for a cluster with ``resources``."""
    gpus, cpus = int(resources.get("GPU", 0)), max(int(resources.get("CPU", 1)), 1)
    if device == "cuda" or (device == "auto" and gpus):
        if not gpus:
            raise AstrodetInputError("--device cuda: the Ray cluster has no GPUs")
        workers = num_workers or gpus
        if workers > gpus:
            raise AstrodetInputError(f"--num-workers {workers}: the Ray cluster has {gpus} GPUs (one actor per GPU)")
        return "cuda", workers, {"num_gpus": 1}, None
    workers = num_workers or 1
    if workers > cpus:
        raise AstrodetInputError(f"--num-workers {workers}: the Ray cluster has {cpus} CPUs")
    check_precision(precision, "cpu")  # before any actor starts (each checks its own CPU again)
    threads = max(cpus // workers, 1)
    return "cpu", workers, {"num_cpus": threads}, threads


def first_predicted(
    preparer: InputPreparer, units: Sequence[InputUnit], names: Sequence[str], most: int
) -> dict[int, str]:
    """The inputs that ``--plot`` draws, as the single-process engine picks them (the first ``most`` predicted, in
    input order), each with its PNG name: found here by preparing inputs in order until that many succeed, because
    actors see inputs in no particular order and cannot know how many before theirs were rejected."""
    chosen: dict[int, str] = {}
    for index, unit in enumerate(units):
        if len(chosen) == most:
            break
        with contextlib.suppress(InputRejected):
            preparer.prepare(index, unit)
            chosen[index] = names[index]
    return chosen


def stream_results(
    ray: Any,
    load: Callable[..., Any],
    options: PredictOptions,
    units: list[InputUnit],
    todo: Sequence[int],
    predictor: Predictor,
    layout: tuple[str, int, dict[str, Any], int | None],
    plot_names: dict[int, str],
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(input index, result)`` for each input of ``todo`` as the actors finish them; a lost or repeated input is
    an error, never a silent gap."""
    from tqdm import tqdm

    device, workers, actor_resources, threads = layout
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # one bar, ours, counting inputs
    cpus = max(int(ray.cluster_resources().get("CPU", 1)), 1)
    rows = [{"index": i, "unit": pickle.dumps(absolute_paths(units[i]))} for i in todo]
    dataset = ray.data.from_items(rows).map(
        PrepareInput(predictor.preparer),
        # CPU actors hold the cores as Ray resources: decoding borrows them (no reservation), at most one task a core
        num_cpus=0 if device == "cpu" else 1,
        compute=ray.data.TaskPoolStrategy(size=cpus),
    )
    dataset = dataset.map_batches(
        ModelActor,
        fn_constructor_kwargs={
            "load": load, "options": options, "task": predictor.task, "photometry_bands": predictor.photometry_bands,
            "device": device, "threads": threads, "plot_names": plot_names,
        },
        batch_size=options.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers),
        **actor_resources,
    )  # fmt: skip
    seen: set[int] = set()
    total, finished = len(units), len(units) - len(todo)
    with tqdm(total=total, initial=finished, disable=not options.progress, unit="img", desc="predict (ray)") as bar:
        for row in dataset.iter_rows():
            index = int(row["index"])
            if index in seen:
                raise RuntimeError(f"input {index} ({units[index].file}) came back twice from the Ray workers")
            seen.add(index)
            yield index, json.loads(row["result"])
            bar.update(1)
    missing = [units[i].file for i in todo if i not in seen]
    if missing:
        raise RuntimeError(f"{len(missing)} inputs never came back from the Ray workers, e.g. {missing[0]}")


def start_ray(ray: Any, address: str | None) -> bool:
    """Connect to ``address`` or start a local cluster on this machine's cores, unless this process already did;
    returns whether it started here (and is shut down at the end)."""
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
    else:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level=logging.WARNING)
    return True


def run_predict_ray(
    load: Callable[..., Any],
    options: PredictOptions,
    address: str | None = None,
    num_workers: int | None = None,
    device: str = "auto",
) -> PredictSummary:
    """``run_predict`` on Ray: ``load(device=...)`` builds the model (once in the driver, on the CPU, for its
    classes, recipe and input size; once per actor); ``address`` an existing cluster (else a local one with this
    machine's cores); ``num_workers`` model actors (default: one per GPU, else one). With
    ``options.parquet_dataset`` the output is a folder of Parquet parts (:mod:`~astrodet.inference.parquet_dataset`),
    each written as soon as its inputs are done, and ``options.resume`` predicts only the missing parts' inputs."""
    ray = import_ray()
    options.check()
    check_engine_args(num_workers, device)
    if options.resume and not options.parquet_dataset:
        raise AstrodetInputError(
            "--resume: with --engine ray, continues a --parquet-dataset run only (a single catalogue is written at "
            "the end)"
        )
    model = load(device="cpu")
    plan = plan_run(model, options)
    created = utc_now()
    todo: Sequence[int] = range(len(plan.units))
    dataset = None
    if options.parquet_dataset:
        dataset = ParquetDataset(options.out, len(plan.units), options.chunk_size)
        created = dataset.start(run_key(run_settings(options, model, plan)), created, options.resume)
        done = dataset.done()
        todo = [i for k, part in enumerate(dataset.parts) if k not in done for i in part]
    if options.plot_dir is not None:  # the actors may not share this process's working folder
        options = dataclasses.replace(options, plot_dir=os.path.abspath(options.plot_dir))
    predictor = Predictor(model, options, plan.task, plan.photometry_bands)
    meta = run_meta(model, options, plan, predictor, created, "ray")
    plot_names = {}
    if plan.plot_names:
        plot_names = first_predicted(predictor.preparer, plan.units, plan.plot_names, options.plot_max)
    results: dict[int, dict[str, Any]] = {}
    if todo:
        started_here = start_ray(ray, address)
        try:
            layout = actor_layout(ray.cluster_resources(), num_workers, device, options.precision)
            stream = stream_results(ray, load, options, plan.units, todo, predictor, layout, plot_names)
            if dataset is not None:
                dataset.write_results(stream, predictor.columns, meta)
            else:
                results.update(stream)
        finally:
            if started_here:
                ray.shutdown()
    if dataset is None:
        return write_run(model, options, plan, predictor, [results[i] for i in range(len(plan.units))], created, "ray")
    totals = dataset.finish(predictor.columns, meta)
    if len(plan.units) != totals.predicted + len(totals.rejects):
        raise RuntimeError(f"input accounting broken: {len(plan.units)} inputs != {totals.predicted} + "
                           f"{len(totals.rejects)} rejected in {options.out}")  # fmt: skip
    return finish_run(options, plan, totals.rejects, totals.predicted, totals.rows)
