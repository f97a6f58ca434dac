#!/usr/bin/env python
"""Train and evaluate an astrodet detector with Detectron2 (the project's main job).

    tools/train_net.py --config-file configs/frcnn_zoobot.yaml
    tools/train_net.py --config-file configs/frcnn_zoobot.yaml --eval-only \
        MODEL.WEIGHTS output/frcnn_zoobot/model_final.pth
    tools/train_net.py --config-file configs/frcnn_r50.yaml --num-gpus 2   # 2 GPUs, or 2 CPU processes (gloo)

With no dataset named in the config, the embedded default simulated Clump Scout set is generated on first use
(into $ASTRODET_CACHE, default ~/.cache/astrodet) and reused after. Runs on CUDA when a GPU is visible, else CPU.
Writes OUTPUT_DIR/report.json, report.md and PNG plots after the final evaluation.
"""

from __future__ import annotations

import sys
from pathlib import Path

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import CfgNode, get_cfg
from detectron2.engine import default_argument_parser, default_setup, launch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from astrodet.detectron2 import add_astrodet_config, prepare_datasets
from astrodet.detectron2.trainer import resolve_device, trainer_class


def setup(args) -> CfgNode:
    cfg = get_cfg()
    add_astrodet_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
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
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        return trainer_cls.test(cfg, model)
    trainer = trainer_cls(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    print("Command Line Args:", args)
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
