#!/usr/bin/env python
"""Train and evaluate an astrodet detector with Detectron2 (the project's main job).

    tools/train_net.py --config-file configs/frcnn_zoobot.yaml
    tools/train_net.py --config-file configs/frcnn_zoobot.yaml --eval-only \
        MODEL.WEIGHTS output/frcnn_zoobot/model_final.pth
    tools/train_net.py --config-file configs/frcnn_r50.yaml --num-gpus 2   # 2 GPUs, or 2 CPU processes (gloo)

With no dataset named in the config, the embedded default simulated Clump Scout set is generated on first use
(into $ASTRODET_CACHE, default ~/.cache/astrodet) and reused after. Runs on CUDA when a GPU is visible, else CPU.
Writes OUTPUT_DIR/report.json, report.md and PNG plots after the final evaluation. An OUTPUT_DIR that already
holds a run (report.json or last_checkpoint) is refused unless --resume continues it or --overwrite writes over it;
--eval-only writes into OUTPUT_DIR/eval_<checkpoint stem>/, never over the training run's config.yaml and report.
$ASTRODET_MAX_ITER caps SOLVER.MAX_ITER (quick checks, the documentation's tests); N CPU processes
(--num-gpus N without a GPU) get cores // N threads each.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from detectron2.config import CfgNode, get_cfg
from detectron2.engine import default_argument_parser, default_setup, launch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from astrodet.detectron2 import add_astrodet_config, prepare_datasets
from astrodet.detectron2.checkpoint import AstroCheckpointer
from astrodet.detectron2.trainer import resolve_device, trainer_class
from astrodet.errors import AstrodetInputError
from astrodet.runs import (
    cap_iterations,
    eval_folder,
    iteration_cap,
    last_checkpoint,
    refuse_to_overwrite,
    results_line,
    use_cpu_threads_per_process,
)


def merged_cfg(args) -> CfgNode:
    """The config the command line asks for; with --eval-only, OUTPUT_DIR is the eval folder inside the run's (and
    with --resume too, MODEL.WEIGHTS is the run's last checkpoint)."""
    cfg = get_cfg()
    add_astrodet_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    if args.eval_only:
        if args.resume:  # the run's newest checkpoint, which the checkpointer would find in the run's folder
            cfg.MODEL.WEIGHTS = last_checkpoint(cfg.OUTPUT_DIR) or cfg.MODEL.WEIGHTS
        cfg.OUTPUT_DIR = eval_folder(cfg.OUTPUT_DIR, cfg.MODEL.WEIGHTS)
    return cfg


def setup(args) -> CfgNode:
    cfg = merged_cfg(args)
    cfg.SOLVER.MAX_ITER = cap_iterations(cfg.SOLVER.MAX_ITER)
    resolve_device(cfg)
    cfg.freeze()
    default_setup(cfg, args)
    prepare_datasets(cfg)
    return cfg


def main(args):
    cfg = setup(args)
    trainer_cls = trainer_class(cfg)  # detection (AstroTrainer) or image classification, from META_ARCHITECTURE
    if args.eval_only:
        model = trainer_cls.build_model(cfg)
        run_folder = str(Path(cfg.OUTPUT_DIR).parent)  # eval_folder's parent: --resume reads its last_checkpoint
        AstroCheckpointer(model, save_dir=run_folder).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        return print_results(trainer_cls.test(cfg, model))
    trainer = trainer_cls(cfg)
    trainer.resume_or_load(resume=args.resume)
    trainer.train()
    return print_results(getattr(trainer, "_last_eval_results", None))  # set by DefaultTrainer's final evaluation


def main_or_exit(args):
    """``main`` for the command line: a refused input (a checkpoint, a config value) ends in one line, exit 2."""
    try:
        return main(args)
    except AstrodetInputError as err:
        print(f"train_net.py: error: {err}", file=sys.stderr, flush=True)
        sys.exit(2)


def print_results(results: dict | None) -> dict | None:
    """Close with the headline metrics on one scale: Detectron2's own table prints COCO AP in percent."""
    line = results_line(results)
    if line:
        print(f"{line} (Detectron2's table above: AP in percent)", flush=True)
    return results


def check_output_dir(args) -> None:
    """Refuse, before any process starts, to write over another run's report, checkpoints and config.yaml."""
    if args.overwrite or (args.resume and not args.eval_only):
        return
    refuse_to_overwrite(merged_cfg(args).OUTPUT_DIR, resumable=not args.eval_only)


if __name__ == "__main__":
    parser = default_argument_parser()
    overwrite_help = "write into an OUTPUT_DIR that already holds another run (its report.json or last_checkpoint)"
    parser.add_argument("--overwrite", action="store_true", help=overwrite_help)
    args = parser.parse_args()
    print("Command Line Args:", args)
    try:
        iteration_cap()  # a malformed $ASTRODET_MAX_ITER stops here, in one line, before any process starts
        check_output_dir(args)
    except AstrodetInputError as err:
        parser.exit(2, f"train_net.py: error: {err}\n")
    if args.num_gpus > 1 and not torch.cuda.is_available():
        use_cpu_threads_per_process(args.num_gpus)
    launch(
        main_or_exit,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
