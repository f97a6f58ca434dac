"""Inference speed of frcnn_zoobot (+ its ConvNeXt form), frcnn_deepshadows and frcnn_r50 in one run.

    .venv/bin/python benchmarks/bench_predict.py                        # both frameworks, 32 cutouts, 1000 px frame
    .venv/bin/python benchmarks/bench_predict.py --quick --frameworks detectron2

Every model is timed on the same inputs, in turn, in this process: cutouts (the tiny simulated set's 200 x 200 val
images, batched as ``astrodet predict`` batches them) and one large frame (a mosaic of those cutouts, cut into the
model's 200 px tiles and stitched back by predict's own tiling). The weights are each config's random
initialisation, saved and read back through ``load_model`` as a trained checkpoint would be: the speed of a forward
pass does not depend on the weights' values (the detection cap, 100 per image, bounds the work after the heads
either way). frcnn_r50 (each framework's ResNet-50 FPN) is the baseline of its framework: every cutouts/s row's
ratio is to frcnn_r50's single-process fp32 cutouts/s.

Detectron2's models are also timed (MMDetection's rows stay fp32 single process, as before):

- single process, bf16: the same cutouts, the backbone under bf16 autocast (``astrodet.inference.precision``, as
  ``--precision bf16``); skipped, with a note, on a CPU without bf16 kernels;
- Ray, 2 workers: ``run_predict_ray`` (the ``--engine ray`` path) over the same cutouts written as PNG files, with
  ``num_workers=2`` on a local Ray cluster of this machine's cores, each model actor with cores / 2 torch threads
  (the engine sets them). The local cluster is started once before the Ray rows (``ray.init``, like a cluster that
  is up before jobs arrive): its startup is EXCLUDED. Everything else is INCLUDED in the timed call: loading the
  model in the driver and in each actor, starting the actors, reading and decoding the PNGs in Ray tasks,
  inference, post-processing and writing the catalogue. Rows: cutouts/s of the whole call, that rate per worker
  (divided by 2), the seconds of the same call over one cutout (the fixed cost of a call: actors importing the
  framework and loading the model), and the rate after that fixed cost, (N - 1) / (t_N - t_1), with its value per
  worker: what a long survey run approaches. The Ray calls take 256 cutouts (the 32 repeated; --quick: 8). One
  untimed one-cutout call first warms the file caches the actors import from.

The single-process rows time ``model.predict`` only (images already in memory, model loaded): compare the Ray rows
with them knowing that the Ray call also pays for its start and for reading the files.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from astrodet.data import catalogue
from astrodet.errors import AstrodetInputError
from astrodet.inference import load_model
from astrodet.inference.precision import set_precision
from astrodet.inference.runner import PredictOptions
from astrodet.inference.tiling import make_tiles, stitch, tile_views

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
MODELS = ("frcnn_r50", "frcnn_zoobot", "frcnn_zoobot_convnext", "frcnn_deepshadows")  # the baseline first
FRAMEWORKS = ("detectron2", "mmdet")
ENGINE_FRAMEWORKS = ("detectron2",)  # also timed in bf16 and on Ray (MMDetection: fp32, single process)
BATCH = 8  # astrodet predict's default --batch-size
RAY_WORKERS = 2
CUTOUTS, FRAME_SIDE = 32, 1000
QUICK_CUTOUTS, QUICK_FRAME_SIDE = 8, 400
# Ray calls pay a fixed cost of tens of seconds (actors import the framework, load the model): over 256 cutouts the
# rate after that cost, (N - 1) / (t_N - t_1), is measured on enough work to be stable.
RAY_CUTOUTS = 256


def config_path(framework: str, name: str) -> Path:
    return CONFIGS / f"{name}.yaml" if framework == "detectron2" else CONFIGS / "mmdet" / f"{name}.py"


def random_checkpoint(framework: str, config: Path, folder: Path) -> Path:
    """The config's model at its random initialisation, saved as the framework's trainer saves checkpoints."""
    torch.manual_seed(0)
    path = folder / f"{framework}_{config.stem}.pth"
    if framework == "detectron2":
        from detectron2.modeling import build_model

        from astrodet.detectron2.predictor import build_cfg

        torch.save({"model": build_model(build_cfg(config, "cpu")).state_dict()}, path)
    else:
        from mmdet.registry import MODELS as MMDET_MODELS
        from mmdet.utils import register_all_modules
        from mmengine.config import Config

        register_all_modules(init_default_scope=True)
        torch.save({"state_dict": MMDET_MODELS.build(Config.fromfile(str(config)).model).state_dict()}, path)
    return path


def bench_inputs(n_cutouts: int, frame_side: int) -> tuple[list[np.ndarray], np.ndarray]:
    """``n_cutouts`` 200 x 200 RGB cutouts of the tiny set (repeated if it has fewer) and a square mosaic of them."""
    json_file = catalogue.ensure("tiny", progress=False)["val"]
    files = [json_file.parent / image["file_name"] for image in json.loads(json_file.read_text())["images"]]
    cutouts = [np.asarray(Image.open(files[k % len(files)]).convert("RGB")) for k in range(n_cutouts)]
    side = cutouts[0].shape[0]
    per_row = -(-frame_side // side)
    rows = [
        np.concatenate([cutouts[(r * per_row + c) % n_cutouts] for c in range(per_row)], axis=1) for r in range(per_row)
    ]
    return cutouts, np.ascontiguousarray(np.concatenate(rows, axis=0)[:frame_side, :frame_side])


def cutouts_per_second(model: Any, cutouts: list[np.ndarray]) -> float:
    """``model.predict`` over the cutouts in batches, after one warm-up batch (first-call allocations)."""
    model.batch_size = BATCH
    model.predict(cutouts[:BATCH])
    start = time.perf_counter()
    model.predict(cutouts)
    return len(cutouts) / (time.perf_counter() - start)


def time_model(model: Any, cutouts: list[np.ndarray], frame: np.ndarray) -> dict[str, float]:
    """Cutouts per second and seconds per frame (tiles predicted in batches, then stitched), after one warm-up."""
    rate = cutouts_per_second(model, cutouts)
    tiles = make_tiles(frame.shape[0], frame.shape[1], model.input_size)
    start = time.perf_counter()
    stitch(tiles, model.predict(tile_views(frame, tiles)))
    frame_seconds = time.perf_counter() - start
    return {"cutouts/s": rate, "s/frame": frame_seconds, "tiles": float(len(tiles))}


def bf16_rate(model: Any, cutouts: list[np.ndarray]) -> float | None:
    """Cutouts per second with the backbone under bf16 autocast; None (and a note) where the device has no bf16."""
    try:
        set_precision(model, "bf16")
    except AstrodetInputError as err:
        print(f"bench_predict: no bf16 rows: {err}", file=sys.stderr)
        return None
    return cutouts_per_second(model, cutouts)


def write_pngs(cutouts: list[np.ndarray], folder: Path) -> Path:
    """The cutouts as PNG files, so that the Ray engine reads and decodes files as ``astrodet predict`` does."""
    folder.mkdir(parents=True)
    for k, cutout in enumerate(cutouts):
        Image.fromarray(cutout).save(folder / f"cutout_{k:04d}.png")
    return folder


def ray_seconds(config: Path, checkpoint: Path, images: Path, out: Path) -> float:
    """Seconds of one ``run_predict_ray`` call over the PNGs in ``images``, on the running local cluster."""
    from astrodet.inference.ray_engine import run_predict_ray

    inputs = len(list(images.iterdir()))
    options = PredictOptions([str(images)], str(out), batch_size=BATCH, progress=False)
    load = functools.partial(load_model, str(config), str(checkpoint))
    start = time.perf_counter()
    summary = run_predict_ray(load, options, num_workers=RAY_WORKERS, device="cpu")
    seconds = time.perf_counter() - start
    if summary.predicted != inputs:
        raise RuntimeError(f"Ray run over {images}: {summary.predicted} of {inputs} cutouts predicted")
    return seconds


def ray_timings(framework: str, checkpoints: dict[str, Path], cutouts: list[np.ndarray], work: Path) -> dict:
    """Per model: seconds of the Ray call over all cutouts and over one; empty (and a note) without Ray. The local
    cluster starts before and stops after the calls; one untimed call first warms the caches the actors import."""
    try:
        import ray
    except ImportError:
        print("bench_predict: no Ray rows: Ray is not installed (pip install 'astrodet[ray]')", file=sys.stderr)
        return {}
    every, one = write_pngs(cutouts, work / "pngs"), write_pngs(cutouts[:1], work / "png")
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level=logging.WARNING)
    try:
        first = MODELS[0]
        ray_seconds(config_path(framework, first), checkpoints[first], one, work / "warm-up.ecsv")
        return {
            name: {
                "all": ray_seconds(config_path(framework, name), checkpoints[name], every, work / f"{name}_all.ecsv"),
                "one": ray_seconds(config_path(framework, name), checkpoints[name], one, work / f"{name}_one.ecsv"),
            }
            for name in MODELS
        }
    finally:
        ray.shutdown()


def _row(case: str, metric: str, value: float, baseline: float | None) -> dict[str, Any]:
    ratio = None if baseline is None else value / baseline
    return {"benchmark": "predict", "case": case, "metric": metric, "value": value, "baseline_ratio": ratio}


def engine_rows(
    framework: str,
    n_cutouts: int,
    timed: dict[str, dict[str, float]],
    on_ray: dict[str, dict[str, float]],
    n_ray: int | None = None,
) -> list[dict[str, Any]]:
    """bf16 and Ray rows; cutouts/s ratios are to frcnn_r50's single-process fp32 cutouts/s."""
    baseline = timed[MODELS[0]]["cutouts/s"]
    threads = max((os.cpu_count() or 1) // RAY_WORKERS, 1)
    out: list[dict[str, Any]] = []
    for name in MODELS:
        label = f"{framework} {name} (random init)"
        prefix = f"{label}: {n_cutouts} cutouts 200x200, batch {BATCH}"
        if timed[name].get("bf16 cutouts/s"):
            out.append(_row(f"{prefix}, bf16", "cutouts/s", timed[name]["bf16 cutouts/s"], baseline))
        if name not in on_ray:
            continue
        seconds, n_ray = on_ray[name], n_ray or n_cutouts
        ray_case = (
            f"{label}: {n_ray} cutouts 200x200, Ray {RAY_WORKERS} workers x {threads} torch threads, PNG files, "
            "whole predict call"
        )
        rate = n_ray / seconds["all"]
        out.append(_row(ray_case, "cutouts/s", rate, baseline))
        out.append(_row(ray_case, "cutouts/s per worker", rate / RAY_WORKERS, baseline))
        out.append(_row(f"{label}: 1 cutout, Ray {RAY_WORKERS} workers, whole predict call", "s", seconds["one"], None))
        if seconds["all"] > seconds["one"] and n_ray > 1:
            steady = (n_ray - 1) / (seconds["all"] - seconds["one"])
            after = f"{label}: Ray {RAY_WORKERS} workers, after the call's fixed cost, (N - 1) / (t_N - t_1)"
            out.append(_row(after, "cutouts/s", steady, baseline))
            out.append(_row(after, "cutouts/s per worker", steady / RAY_WORKERS, baseline))
    return out


def rows(quick: bool = False, frameworks: tuple[str, ...] = FRAMEWORKS) -> list[dict[str, Any]]:
    """Result rows for ``benchmarks/run_all.py``: cutouts/s and s per tiled frame per model, vs frcnn_r50; for
    Detectron2 also bf16 and Ray (2 workers) cutouts/s."""
    n_cutouts, side = (QUICK_CUTOUTS, QUICK_FRAME_SIDE) if quick else (CUTOUTS, FRAME_SIDE)
    cutouts, frame = bench_inputs(n_cutouts, side)
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        for framework in frameworks:
            work = Path(folder) / framework
            work.mkdir()
            timed: dict[str, dict[str, float]] = {}
            checkpoints: dict[str, Path] = {}
            for name in MODELS:
                config = config_path(framework, name)
                checkpoints[name] = random_checkpoint(framework, config, work)
                model = load_model(config, checkpoints[name], device="auto")
                timed[name] = time_model(model, cutouts, frame)
                if framework in ENGINE_FRAMEWORKS:
                    rate = bf16_rate(model, cutouts)
                    if rate is not None:
                        timed[name]["bf16 cutouts/s"] = rate
            for name, numbers in timed.items():
                tiles = int(numbers["tiles"])
                cases = {
                    "cutouts/s": f"{framework} {name} (random init): {n_cutouts} cutouts 200x200, batch {BATCH}",
                    "s/frame": f"{framework} {name} (random init): one {side}x{side} frame, {tiles} tiles",
                }
                for metric, case in cases.items():
                    out.append(_row(case, metric, numbers[metric], timed[MODELS[0]][metric]))
            if framework in ENGINE_FRAMEWORKS:
                n_ray = n_cutouts if quick else RAY_CUTOUTS
                ray_inputs = [cutouts[k % len(cutouts)] for k in range(n_ray)]
                on_ray = ray_timings(framework, checkpoints, ray_inputs, work)
                out.extend(engine_rows(framework, n_cutouts, timed, on_ray, n_ray))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_CUTOUTS} cutouts and a {QUICK_FRAME_SIDE} px frame"
    )
    parser.add_argument("--frameworks", nargs="+", choices=FRAMEWORKS, default=list(FRAMEWORKS))
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, random-initialisation weights")
    print("| case | metric | value | vs frcnn_r50 fp32 |")
    print("|---|---|---|---|")
    for row in rows(quick=args.quick, frameworks=tuple(args.frameworks)):
        ratio = "-" if row["baseline_ratio"] is None else f"{row['baseline_ratio']:.2f}x"
        print(f"| {row['case']} | {row['metric']} | {row['value']:.3g} | {ratio} |")


if __name__ == "__main__":
    main()
