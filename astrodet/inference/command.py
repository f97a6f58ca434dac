"""``astrodet predict``: a trained model over cutouts, COCO files or FITS frames, to a catalogue.

``astrodet predict --config CONFIG --weights MODEL INPUT... --out CATALOGUE [--meta TABLE] [--plot DIR] [--resume]
[--precision fp32|bf16|fp16] [--engine ray [--ray-address ADDRESS] [--num-workers N] [--parquet-dataset]]``.
The framework comes from the config (Detectron2 YAML or MMDetection .py). Exit status: 0 when the catalogue was
written (rejected inputs are listed in ``<stem>_rejects.csv``), 1 with ``--strict`` when any input was rejected, 2
on bad command-line input (a one-line message naming the file or option).
"""

from __future__ import annotations

import argparse
import functools
import os

from astrodet.errors import AstrodetInputError
from astrodet.inference.model import load_model
from astrodet.inference.plot import DEFAULT_PLOT_MAX
from astrodet.inference.postprocess import MATCH_METRICS, MERGE_MODES, PostProcessing
from astrodet.inference.precision import PRECISIONS
from astrodet.inference.runner import PredictOptions, run_predict
from astrodet.inference.scale_match import default_training_psf_px
from astrodet.inference.tiling import DEFAULT_OVERLAP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``astrodet predict``."""
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="PNG/JPEG files, folders, globs, COCO .json files, FITS files (frames, cubes, <id>_<band>.fits "
        "groups) or a path with {band} (e.g. 'fields/f1_{band}.fits')",
    )
    parser.add_argument("--config", required=True, help="Detectron2 YAML or MMDetection .py config of the model")
    parser.add_argument("--weights", required=True, help="trained weights (.pth)")
    parser.add_argument("--out", required=True, help="catalogue: .fits, .ecsv, .csv or .parquet")
    parser.add_argument("--meta", help="table of filename, ra, dec, pixel_scale for PNG/JPEG cutouts (image centres)")
    parser.add_argument("--device", default="auto", help="auto (a GPU when visible), cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="the backbone's precision (autocast; heads and post-processing stay fp32): bf16 on CPUs with "
        "AVX-512/AMX and on GPUs, fp16 on GPUs",
    )
    post = parser.add_argument_group("post-processing (Popp et al. 2024)")
    post.add_argument("--score-threshold", type=float, default=0.3, help="keep detections scoring at least this")
    post.add_argument("--nms-iou", type=float, default=0.2, help="overlap above which duplicates are removed")
    post.add_argument("--merge", choices=MERGE_MODES, default="nms", help="suppress duplicates (nms) or merge them")
    post.add_argument("--match-metric", choices=MATCH_METRICS, default="iou", help="IoU or intersection/smaller")
    post.add_argument("--class-agnostic", action="store_true", help="duplicates across classes too")
    post.add_argument("--merge-touching", action="store_true", help="merge detections of one class that touch")
    post.add_argument("--touch-gap", type=float, default=1.0, help="px between boxes that still count as touching")
    post.add_argument(
        "--drop-centre", type=float, metavar="RADIUS_PX", help="drop detections centred this close to the image centre"
    )
    frames = parser.add_argument_group("frames and FITS")
    frames.add_argument("--tile-size", type=int, help="tile side for large frames (default: the model's input size)")
    frames.add_argument("--tile-overlap", type=float, default=DEFAULT_OVERLAP, help="tile overlap, fraction of a side")
    frames.add_argument("--crop", type=int, metavar="N", help="predict only the central N x N pixels of each input")
    frames.add_argument(
        "--match-psf",
        nargs="?",
        const="default",
        metavar="PX",
        help="crop each input so its PSF spans PX model-input pixels, as in training (default: the embedded "
        "simulated set's median); needs --meta columns pixel_scale and psf_fwhm (arcsec); docs/real_sky.md",
    )
    frames.add_argument("--bands", nargs="+", help="band names of per-band FITS files (default: the model's bands)")
    frames.add_argument("--cube-bands", nargs="+", help="band of each plane of FITS cubes, in plane order")
    frames.add_argument("--zeropoint", type=float, help="AB zero point of FITS data (overrides the header)")
    frames.add_argument("--aperture", type=float, metavar="RADIUS_PX", help="fixed photometry radius (default: box)")
    pictures = parser.add_argument_group("pictures")
    pictures.add_argument(
        "--plot", metavar="DIR", help="write DIR/<input stem>.png: each input as the model saw it, detections boxed"
    )
    pictures.add_argument(
        "--plot-max",
        type=int,
        metavar="N",
        help=f"with --plot: pictures of the first N predicted inputs only (default {DEFAULT_PLOT_MAX})",
    )
    run_group = parser.add_argument_group("long runs")
    run_group.add_argument("--batch-size", type=int, default=8, help="images (or tiles) per model call")
    run_group.add_argument("--chunk-size", type=int, default=64, help="inputs per resumable chunk")
    run_group.add_argument("--resume", action="store_true", help="keep the finished chunks of an interrupted run")
    run_group.add_argument(
        "--parquet-dataset",
        action="store_true",
        help="with --engine ray: --out RUN.parquet is a folder of Parquet parts (one per --chunk-size inputs, each "
        "written when its inputs are done; --resume continues it) instead of one file",
    )
    run_group.add_argument("--strict", action="store_true", help="exit 1 when any input was rejected")
    run_group.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    engine = parser.add_argument_group("engine")
    engine.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this process; ray: decoding in Ray tasks, the model in Ray actors (pip install 'astrodet[ray]')",
    )
    engine.add_argument("--ray-address", metavar="ADDRESS", help="an existing Ray cluster (default: start a local one)")
    engine.add_argument(
        "--num-workers", type=int, metavar="N", help="model actors (default: one per GPU, else one using every core)"
    )


def _match_psf(value: str | None) -> float | None:
    """``--match-psf``'s PSF FWHM in model-input pixels: the number given, or the default training set's median."""
    if value is None:
        return None
    if value == "default":
        return default_training_psf_px()
    try:
        return float(value)
    except ValueError:
        raise AstrodetInputError(f"--match-psf: expected a number of pixels, got {value!r}") from None


def options_from_args(args: argparse.Namespace) -> PredictOptions:
    if args.plot_max is not None and args.plot is None:
        raise AstrodetInputError("--plot-max: only with --plot DIR")
    if args.engine != "ray" and (args.ray_address is not None or args.num_workers is not None):
        raise AstrodetInputError("--ray-address, --num-workers: only with --engine ray")
    if args.engine != "ray" and args.parquet_dataset:
        raise AstrodetInputError("--parquet-dataset: works with --engine ray only (the local engine writes one file)")
    post = PostProcessing(
        score_threshold=args.score_threshold,
        nms_iou=args.nms_iou,
        merge=args.merge,
        match_metric=args.match_metric,
        class_agnostic=args.class_agnostic,
        merge_touching=args.merge_touching,
        touch_gap=args.touch_gap,
        drop_centre=args.drop_centre,
    )
    return PredictOptions(
        inputs=list(args.inputs),
        out=args.out,
        config=args.config,
        weights=args.weights,
        meta=args.meta,
        post=post,
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
        tile_size=args.tile_size,
        tile_overlap=args.tile_overlap,
        crop=args.crop,
        match_psf=_match_psf(args.match_psf),
        bands=tuple(args.bands) if args.bands else None,
        cube_bands=tuple(args.cube_bands) if args.cube_bands else None,
        zeropoint=args.zeropoint,
        aperture=args.aperture,
        resume=args.resume,
        progress=not args.no_progress,
        plot_dir=args.plot,
        plot_max=DEFAULT_PLOT_MAX if args.plot_max is None else args.plot_max,
        precision=args.precision,
        parquet_dataset=args.parquet_dataset,
    )


def run(args: argparse.Namespace) -> int:
    """``astrodet predict``: load the model, predict, write the catalogue and print one summary line."""
    options = options_from_args(args)
    options.check()
    if args.engine == "ray":
        from astrodet.inference.ray_engine import run_predict_ray

        # absolute paths: the model actors may not share this process's working folder
        load = functools.partial(load_model, os.path.abspath(args.config), os.path.abspath(args.weights))
        summary = run_predict_ray(load, options, args.ray_address, args.num_workers, args.device)
    else:
        model = load_model(args.config, args.weights, device=args.device)
        summary = run_predict(model, options)
    print(summary.line())
    return 1 if args.strict and sum(summary.rejected.values()) else 0
