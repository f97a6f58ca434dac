"""Training speed of astrodet's Detectron2 configs on the embedded default data, measured in one run.

Usage: python benchmarks/bench_train.py [--iters N] [--configs A.yaml B.yaml ...]
Each case trains N iterations (after 5 warm-up iterations) in this process, in turn, so the numbers share one
machine state; frcnn_r50.yaml (Detectron2's own ResNet-50 FPN, fp32) is the baseline the others are compared with.
Besides each config as shipped, the default cases time frcnn_r50 and frcnn_zoobot with the backbone's training
precision (ASTRODET.SOLVER.PRECISION) switched, so a reader sees what bf16 brings to each.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from detectron2.config import get_cfg
from detectron2.utils.events import EventStorage

from astrodet.detectron2 import AstroTrainer, add_astrodet_config, prepare_datasets, resolve_device

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
DEFAULT = ("frcnn_r50.yaml", "frcnn_zoobot.yaml", "frcnn_zoobot_convnext.yaml", "frcnn_deepshadows.yaml")
BASELINE = "frcnn_r50.yaml"
# Extra cases of the full run: (config, precision override). The baseline stays frcnn_r50.yaml as shipped (fp32).
PRECISION_CASES = (("frcnn_r50.yaml", "bf16"), ("frcnn_zoobot.yaml", "fp32"), ("frcnn_zoobot_convnext.yaml", "bf16"))
WARMUP = 5
ITERS = 20
# Quick mode: the same models through their quick_schedules configs (the 60-galaxy tiny set, generated in seconds
# instead of the embedded default's 3 minutes; batch 2) and a few steps: checks the harness, numbers are rough.
QUICK = tuple(
    f"quick_schedules/{name}_quick.yaml" for name in ("frcnn_r50", "frcnn_zoobot", "frcnn_deepshadows")
)
QUICK_WARMUP = 1
QUICK_ITERS = 2


def seconds_per_iter(config: str, iters: int, warmup: int = WARMUP, precision: str = "") -> tuple[float, int]:
    """Mean seconds per optimiser step of ``config`` after ``warmup`` steps, and its trainable parameter count;
    ``precision`` overrides the config's ASTRODET.SOLVER.PRECISION."""
    cfg = get_cfg()
    add_astrodet_config(cfg)
    cfg.merge_from_file(str(CONFIGS / config))
    if precision:
        cfg.merge_from_list(["ASTRODET.SOLVER.PRECISION", precision])
    with tempfile.TemporaryDirectory() as out:
        cfg.merge_from_list(["OUTPUT_DIR", out, "DATASETS.TEST", ()])
        resolve_device(cfg)
        prepare_datasets(cfg)
        trainer = AstroTrainer(cfg)
        n_params = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
        inner = trainer._trainer  # detectron2's SimpleTrainer: one run_step() is one optimiser step
        with EventStorage(0) as storage:
            inner.storage = storage
            for _ in range(warmup):
                inner.run_step()
            start = time.perf_counter()
            for _ in range(iters):
                inner.run_step()
            return (time.perf_counter() - start) / iters, n_params


def cases(quick: bool = False) -> list[tuple[str, str]]:
    """(config, precision override) pairs, the baseline first: every config as shipped, then (full runs only) the
    precision switches."""
    shipped = [(config, "") for config in (QUICK if quick else DEFAULT)]
    return shipped if quick else shipped + list(PRECISION_CASES)


def case_name(config: str, precision: str) -> str:
    return f"{config} (precision {precision})" if precision else config


def rows(quick: bool = False) -> list[dict[str, Any]]:
    """Result rows for ``benchmarks/run_all.py``: s/iter and trainable parameters (M) per case, vs frcnn_r50."""
    iters, warmup = (QUICK_ITERS, QUICK_WARMUP) if quick else (ITERS, WARMUP)
    timed = {case_name(c, p): seconds_per_iter(c, iters, warmup, p) for c, p in cases(quick)}
    base_sec, base_params = next(iter(timed.values()))  # frcnn_r50 (or its quick schedule) comes first
    out: list[dict[str, Any]] = []
    for config, (sec, n_params) in timed.items():
        case = f"{config} ({iters} iter after {warmup} warm-up)"
        for metric, value, baseline in (
            ("s/iter", sec, base_sec),
            ("trainable parameters (M)", n_params / 1e6, base_params / 1e6),
        ):
            ratio = value / baseline
            out.append({"benchmark": "train", "case": case, "metric": metric, "value": value, "baseline_ratio": ratio})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=ITERS)
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT))
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.iters} iterations per config")
    asked = [(c, "") for c in args.configs] + (list(PRECISION_CASES) if args.configs == list(DEFAULT) else [])
    timings = [(case_name(c, p), *seconds_per_iter(c, args.iters, precision=p)) for c, p in asked]
    base = dict((c, s) for c, s, _ in timings).get(BASELINE)
    print("| config | trainable parameters | s/iter | vs frcnn_r50 |")
    print("|---|---|---|---|")
    for config, sec, n_params in timings:
        ratio = f"{sec / base:.2f}x" if base else "n/a"
        print(f"| {config} | {n_params / 1e6:.1f} M | {sec:.2f} | {ratio} |")


if __name__ == "__main__":
    main()
