"""Inference speed of frcnn_zoobot, frcnn_deepshadows and frcnn_r50 through astrodet's predictors, in one run.

    .venv/bin/python benchmarks/bench_predict.py                        # both frameworks, 32 cutouts, 1000 px frame
    .venv/bin/python benchmarks/bench_predict.py --quick --frameworks detectron2

Every model is timed on the same inputs, in turn, in this process: cutouts (the tiny simulated set's 200 x 200 val
images, batched as ``astrodet predict`` batches them) and one large frame (a mosaic of those cutouts, cut into the
model's 200 px tiles and stitched back by predict's own tiling). The weights are each config's random
initialisation, saved and read back through ``load_model`` as a trained checkpoint would be: the speed of a forward
pass does not depend on the weights' values (the detection cap, 100 per image, bounds the work after the heads
either way). frcnn_r50 (each framework's ResNet-50 FPN) is the baseline of its framework.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from astrodet.data import catalogue
from astrodet.inference import load_model
from astrodet.inference.tiling import make_tiles, stitch, tile_views

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
MODELS = ("frcnn_r50", "frcnn_zoobot", "frcnn_deepshadows")  # the baseline first
FRAMEWORKS = ("detectron2", "mmdet")
BATCH = 8  # astrodet predict's default --batch-size
CUTOUTS, FRAME_SIDE = 32, 1000
QUICK_CUTOUTS, QUICK_FRAME_SIDE = 8, 400


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


def time_model(model: Any, cutouts: list[np.ndarray], frame: np.ndarray) -> dict[str, float]:
    """Cutouts per second and seconds per frame (tiles predicted in batches, then stitched), after one warm-up."""
    model.batch_size = BATCH
    model.predict(cutouts[:BATCH])  # warm-up: first-call allocations, lazy initialisation
    start = time.perf_counter()
    model.predict(cutouts)
    cutout_seconds = time.perf_counter() - start
    tiles = make_tiles(frame.shape[0], frame.shape[1], model.input_size)
    start = time.perf_counter()
    stitch(tiles, model.predict(tile_views(frame, tiles)))
    frame_seconds = time.perf_counter() - start
    return {"cutouts/s": len(cutouts) / cutout_seconds, "s/frame": frame_seconds, "tiles": float(len(tiles))}


def rows(quick: bool = False, frameworks: tuple[str, ...] = FRAMEWORKS) -> list[dict[str, Any]]:
    """Result rows for ``benchmarks/run_all.py``: cutouts/s and s per tiled frame per model, vs frcnn_r50."""
    n_cutouts, side = (QUICK_CUTOUTS, QUICK_FRAME_SIDE) if quick else (CUTOUTS, FRAME_SIDE)
    cutouts, frame = bench_inputs(n_cutouts, side)
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        for framework in frameworks:
            timed: dict[str, dict[str, float]] = {}
            for name in MODELS:
                config = config_path(framework, name)
                model = load_model(config, random_checkpoint(framework, config, Path(folder)), device="auto")
                timed[name] = time_model(model, cutouts, frame)
            for name, numbers in timed.items():
                tiles = int(numbers["tiles"])
                cases = {
                    "cutouts/s": f"{framework} {name} (random init): {n_cutouts} cutouts 200x200, batch {BATCH}",
                    "s/frame": f"{framework} {name} (random init): one {side}x{side} frame, {tiles} tiles",
                }
                for metric, case in cases.items():
                    ratio = numbers[metric] / timed[MODELS[0]][metric]
                    out.append(
                        {"benchmark": "predict", "case": case, "metric": metric, "value": numbers[metric],
                         "baseline_ratio": ratio}
                    )  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_CUTOUTS} cutouts and a {QUICK_FRAME_SIDE} px frame"
    )
    parser.add_argument("--frameworks", nargs="+", choices=FRAMEWORKS, default=list(FRAMEWORKS))
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, random-initialisation weights")
    print("| case | metric | value | vs frcnn_r50 |")
    print("|---|---|---|---|")
    for row in rows(quick=args.quick, frameworks=tuple(args.frameworks)):
        print(f"| {row['case']} | {row['metric']} | {row['value']:.3g} | {row['baseline_ratio']:.2f}x |")


if __name__ == "__main__":
    main()
