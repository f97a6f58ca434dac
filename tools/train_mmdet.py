#!/usr/bin/env python
"""Train an astrodet model with MMDetection (mmengine's Runner), then test it; or only test a checkpoint.

    tools/train_mmdet.py configs/mmdet/frcnn_zoobot.py
    tools/train_mmdet.py configs/mmdet/frcnn_zoobot.py --work-dir output/z --cfg-options train_cfg.max_iters=3000
    tools/train_mmdet.py configs/mmdet/frcnn_zoobot.py --resume              # from the work dir's last checkpoint
    tools/train_mmdet.py configs/mmdet/frcnn_zoobot.py --eval-only --checkpoint output/z/iter_1500.pth
    python -m torch.distributed.run --nproc_per_node 2 tools/train_mmdet.py CONFIG --launcher pytorch

mmdet's tools/train.py conventions, and the configs run unchanged under mmdet's own tools/train.py and tools/test.py
too (their datasets build the named catalogue data, their AstroReportHook writes the test report into the work
dir). What this tool adds:

- after training, the test split is evaluated (the report lands in the work dir); ``--eval-only --checkpoint FILE``
  does only that, as Detectron2's ``tools/train_net.py --eval-only`` and mmdet's ``tools/test.py``;
- with no GPU visible, mmengine itself runs on the CPU; for several CPU processes (``--launcher pytorch``) the gloo
  process group is started here (:func:`astrodet.mmdet.compat.configure_device`) and each process gets
  cores // processes threads. See docs/mmdet.md.
- a work dir that already holds a run (report.json or last_checkpoint) is refused unless ``--resume`` continues it
  or ``--overwrite`` writes over it; ``--eval-only`` writes into ``<work dir>/eval_<checkpoint stem>/``;
  ``$ASTRODET_MAX_ITER`` caps ``train_cfg.max_iters`` (quick checks, the documentation's tests).
- every config gets :class:`~astrodet.mmdet.hooks.AstroCheckpointHook` (astrodet's configs list it already): a
  checkpoint none of whose weights fits the model is refused with one line naming it, exit status 2.
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
from mmengine.config import Config, DictAction
from mmengine.dist import is_main_process
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from astrodet.errors import AstrodetInputError
from astrodet.mmdet.compat import configure_device, shutdown_process_group
from astrodet.mmdet.hooks import with_checkpoint_hook
from astrodet.runs import (
    cap_iterations,
    eval_folder,
    refuse_to_overwrite,
    results_line,
    use_cpu_threads_per_process,
)

logger = logging.getLogger("astrodet.train_mmdet")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train an astrodet model with MMDetection, then test it")
    parser.add_argument("config", help="train config file path")
    parser.add_argument("--work-dir", help="the dir to save logs, checkpoints and the report")
    parser.add_argument("--eval-only", action="store_true", help="only test the --checkpoint and write the report")
    parser.add_argument("--checkpoint", help="with --eval-only: the checkpoint file to test")
    parser.add_argument("--amp", action="store_true", help="automatic mixed precision (needs a GPU)")
    overwrite_help = "write into a work dir that already holds another run (its report.json or last_checkpoint)"
    parser.add_argument("--overwrite", action="store_true", help=overwrite_help)
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
    if args.eval_only != (args.checkpoint is not None):
        parser.error("--eval-only and --checkpoint go together: --eval-only --checkpoint FILE")
    if args.eval_only and args.resume is not None:
        parser.error("--eval-only tests --checkpoint FILE; it does not resume training")
    if args.amp and not torch.cuda.is_available():  # mmengine's CPU autocast fails with a bare assertion
        parser.error("--amp needs a GPU (mixed precision runs on CUDA here) and none is visible: drop --amp")
    if "LOCAL_RANK" not in os.environ:
        os.environ["LOCAL_RANK"] = str(args.local_rank)
    return args


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
    if args.eval_only:  # beside the training run, never over its config dump, logs and report
        cfg.work_dir = eval_folder(cfg.work_dir, args.checkpoint)
    if not args.overwrite and (args.eval_only or args.resume is None):
        refuse_to_overwrite(cfg.work_dir, resumable=not args.eval_only)
    if "max_iters" in cfg.get("train_cfg", {}):
        cfg.train_cfg.max_iters = cap_iterations(cfg.train_cfg.max_iters)
    if args.amp:
        cfg.optim_wrapper.type = "AmpOptimWrapper"
        cfg.optim_wrapper.loss_scale = "dynamic"
    if args.auto_scale_lr:
        if "base_batch_size" not in cfg.get("auto_scale_lr", {}):
            raise SystemExit("--auto-scale-lr needs auto_scale_lr.base_batch_size in the config")
        cfg.auto_scale_lr.enable = True
    if args.eval_only:  # as mmdet's tools/test.py: the weights to test
        cfg.resume = False
        cfg.load_from = args.checkpoint
    elif args.resume == "auto":
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    with_checkpoint_hook(cfg)  # a load_from / --checkpoint / --resume file that fits none of the model is refused
    configure_device(cfg)
    return cfg


def main(argv: list[str] | None = None) -> dict[str, Any]:
    logging.basicConfig(level=logging.INFO)
    args = parse_args(argv)
    try:
        cfg = build_cfg(args)
    except AstrodetInputError as err:  # a work dir holding another run, a malformed $ASTRODET_MAX_ITER
        logger.error("%s", err)
        raise SystemExit(2) from None
    if args.launcher == "pytorch" and not torch.cuda.is_available():
        use_cpu_threads_per_process(int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    runner = Runner.from_cfg(cfg) if "runner_type" not in cfg else RUNNERS.build(cfg)
    try:
        if not args.eval_only:
            runner.train()
        metrics = runner.test()
        line = results_line(metrics)
        if line and is_main_process():
            print(line, flush=True)
        return metrics
    except AstrodetInputError as err:  # a bad file the user named (a refused checkpoint, ...): its message, no trace
        logger.error("%s", err)
        raise SystemExit(2) from None
    finally:
        shutdown_process_group()


if __name__ == "__main__":
    main()
