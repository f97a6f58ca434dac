#!/usr/bin/env python
"""Train and evaluate an astrodet detector with MMDetection (mmengine's Runner), then test on the held-out split.

    tools/train_mmdet.py configs/mmdet/frcnn_zoobot.py
    tools/train_mmdet.py configs/mmdet/frcnn_zoobot.py --work-dir output/z --cfg-options train_cfg.max_iters=3000
    tools/train_mmdet.py configs/mmdet/frcnn_zoobot.py --resume              # from the work dir's last checkpoint
    python -m torch.distributed.run --nproc_per_node 2 tools/train_mmdet.py CONFIG --launcher pytorch

mmdet's tools/train.py conventions, plus three things astrodet needs:

- datasets whose ``ann_file`` is ``astrodet_default:<split>`` read the embedded default dataset named by the config's
  ``astrodet_default`` key, generated on first use into $ASTRODET_CACHE (default ~/.cache/astrodet);
- after training, the test split is evaluated and the report (report.json, report.md, PNG plots) is written into
  the work dir (``AstroDetectionMetric`` test evaluators with no ``output_dir`` of their own);
- with no GPU visible, mmengine itself runs on the CPU; for several CPU processes (``--launcher pytorch``) the gloo
  process group is started here, because mmengine's own start calls ``torch.cuda.set_device``, and DDP wraps the
  model without device ids. See docs/mmdet.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import os.path as osp
import sys
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import CheckpointLoader, Runner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from astrodet.mmdet.datasets import resolve_default_datasets

logger = logging.getLogger("astrodet.train_mmdet")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train an astrodet detector with MMDetection, then test it")
    parser.add_argument("config", help="train config file path")
    parser.add_argument("--work-dir", help="the dir to save logs, checkpoints and the report")
    parser.add_argument("--amp", action="store_true", help="automatic mixed precision (needs a GPU)")
    parser.add_argument("--auto-scale-lr", action="store_true", help="scale the lr to the actual total batch size")
    parser.add_argument(
        "--resume",
        nargs="?",
        type=str,
        const="auto",
        help="resume from this checkpoint, or with no value from the latest checkpoint in the work dir",
    )
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        help="override config settings as key=value pairs, e.g. train_cfg.max_iters=100",
    )
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none", help="job launcher")
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or --local_rank; torch.distributed.run sets the env.
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)
    args = parser.parse_args(argv)
    if "LOCAL_RANK" not in os.environ:
        os.environ["LOCAL_RANK"] = str(args.local_rank)
    return args


# astrodet metrics that write report.json / report.md / plots into the work dir.
REPORTING_METRICS = ("AstroDetectionMetric", "AstroClassificationMetric")


def _metric_cfgs(evaluator: Any) -> list[ConfigDict]:
    if evaluator is None:
        return []
    metrics = evaluator.get("metrics", evaluator) if isinstance(evaluator, dict) else evaluator
    metrics = metrics if isinstance(metrics, list | tuple) else [metrics]
    return [m for m in metrics if isinstance(m, dict) and m.get("type") in REPORTING_METRICS]


def configure_reports(cfg: Config, config_path: str) -> None:
    """The test evaluator writes its report into the work dir (one test set) or work_dir/<ann stem> (several)."""
    metrics = _metric_cfgs(cfg.get("test_evaluator"))
    meta = {
        "config": config_path,
        "backbone": cfg.model.get("backbone", {}).get("type"),
        "max_iters": cfg.get("train_cfg", {}).get("max_iters"),
        "batch_size": cfg.get("train_dataloader", {}).get("batch_size"),
    }
    for metric in metrics:
        if metric.get("output_dir") is None:
            stem = Path(str(metric.get("ann_file", "test"))).stem
            metric["output_dir"] = cfg.work_dir if len(metrics) == 1 else osp.join(cfg.work_dir, stem)
        metric["meta"] = {**meta, **dict(metric.get("meta") or {})}


def configure_device(cfg: Config) -> None:
    """CUDA when a GPU is visible, else the CPU (mmengine picks the device itself); make CPU multi-process work."""
    if torch.cuda.is_available():
        return
    logger.info("No GPU visible: mmengine runs on the CPU")
    if cfg.launcher == "none":
        return
    if cfg.launcher != "pytorch":
        raise SystemExit(
            f"--launcher {cfg.launcher} needs GPUs (mmengine's {cfg.launcher} start divides by the GPU count or calls "
            "torch.cuda.set_device); for several CPU processes use torch.distributed.run with --launcher pytorch"
        )
    cfg.env_cfg.setdefault("dist_cfg", {})["backend"] = "gloo"
    if not dist.is_initialized():
        # mmengine's init_dist('pytorch') calls torch.cuda.set_device(LOCAL_RANK) first, which fails without a GPU;
        # the Runner skips its own start when a process group exists. RANK/WORLD_SIZE/MASTER_* come from the launcher.
        dist.init_process_group(backend="gloo")
    # DistributedDataParallel refuses device_ids for a CPU module; mmengine passes [LOCAL_RANK] unless told otherwise.
    wrapper = cfg.get("model_wrapper_cfg") or {}
    wrapper.setdefault("type", "MMDistributedDataParallel")
    wrapper.setdefault("device_ids", None)
    wrapper.setdefault("broadcast_buffers", False)
    wrapper.setdefault("find_unused_parameters", cfg.get("find_unused_parameters", False))
    cfg.model_wrapper_cfg = wrapper


def trust_run_checkpoints(cfg: Config) -> None:
    """Let mmengine read the checkpoints this run resumes or loads in full (not ``weights_only``).

    mmengine 0.10.7 calls ``torch.load`` with its default, which torch 2.6 turned to ``weights_only=True``; mmengine's
    own checkpoints hold the message hub's history buffers and numpy arrays, so ``--resume`` fails with "Unsupported
    global: mmengine.logging.history_buffer.HistoryBuffer" (open-mmlab/mmengine#1655; fix pending in #1650). Files in
    the work dir, the one its ``last_checkpoint`` names and the ``load_from`` file the user named are trusted, as they
    were before torch 2.6; any other checkpoint (e.g. a backbone's init_cfg) keeps torch's default.
    """
    work_dir = Path(cfg.work_dir).expanduser().resolve()
    named = {Path(cfg.load_from).expanduser().resolve()} if cfg.get("load_from") else set()
    if (work_dir / "last_checkpoint").is_file():
        named.add(Path((work_dir / "last_checkpoint").read_text().strip()).expanduser().resolve())
    default_loader = CheckpointLoader._get_checkpoint_loader("")

    def load_from_local_trusted(filename: str, map_location: Any = None) -> Any:
        path = Path(filename).expanduser().resolve()
        if path not in named and work_dir not in path.parents:
            return default_loader(filename, map_location)
        if not path.is_file():
            raise FileNotFoundError(f"{filename} can not be found.")
        return torch.load(path, map_location=map_location, weights_only=False)

    CheckpointLoader.register_scheme(prefixes="", loader=load_from_local_trusted, force=True)


def build_cfg(args: argparse.Namespace) -> Config:
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    # work_dir: command line > config > ./work_dirs/<config name>, as mmdet's tools/train.py
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get("work_dir") is None:
        cfg.work_dir = osp.join("./work_dirs", osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        cfg.optim_wrapper.type = "AmpOptimWrapper"
        cfg.optim_wrapper.loss_scale = "dynamic"
    if args.auto_scale_lr:
        if "base_batch_size" not in cfg.get("auto_scale_lr", {}):
            raise SystemExit("--auto-scale-lr needs auto_scale_lr.base_batch_size in the config")
        cfg.auto_scale_lr.enable = True
    if args.resume == "auto":
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    if cfg.get("resume") or cfg.get("load_from"):
        trust_run_checkpoints(cfg)
    resolve_default_datasets(cfg)
    configure_reports(cfg, args.config)
    configure_device(cfg)
    return cfg


def main(argv: list[str] | None = None) -> dict[str, Any]:
    logging.basicConfig(level=logging.INFO)
    args = parse_args(argv)
    cfg = build_cfg(args)
    runner = Runner.from_cfg(cfg) if "runner_type" not in cfg else RUNNERS.build(cfg)
    try:
        runner.train()
        return runner.test()
    finally:
        if dist.is_initialized():
            # Left to interpreter shutdown, gloo's threads abort the process ("terminate called without an active
            # exception") after a successful run.
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
