#!/usr/bin/env python
"""Finetune one detector or classifier twice, from random weights and from a pretrained encoder, and compare them.

    tools/compare_backbones.py --config-file configs/frcnn_zoobot.yaml --checkpoint encoder.pth --eval-period 100
    tools/compare_backbones.py --config-file configs/cls_zoobot_gz.yaml --checkpoint encoder.pth \
        --output-dir output/compare_gz2 SOLVER.MAX_ITER 300

Popp et al.'s comparison, on a user's own data: the same config, data, seed and schedule, trained by
``tools/train_net.py`` (one process each, in turn) into OUTPUT/random and OUTPUT/pretrained; the only difference is
the encoder checkpoint key of the config's backbone (``MODEL.ZOOBOT.CHECKPOINT`` for the timm encoder): empty for
one run, ``--checkpoint`` for the other. Then the side-by-side table of both reports' headline metrics is printed
and written to OUTPUT/comparison.md and comparison.json (astrodet.evaluation.comparison). ``--eval-period N``
evaluates every N iterations (``TEST.EVAL_PERIOD``) and adds, for a detector, the first iteration at which
completeness and purity both reach 0.8 (``--target``). ``--pretrained-norm`` sets the pretrained run's encoder
norm layers (e.g. ``frozen_bn``: keep the BatchNorm statistics the encoder was pretrained with, while the random run
keeps the config's norm, GroupNorm in the main job, which trains from scratch at small batches): the way each start
is used in practice, recorded in the comparison's settings.

Rerunning the same command resumes: a finished run (its report of the final weights is there) is not trained
again, an interrupted one continues with ``--resume``. OUTPUT/compare_settings.json records what the runs were
trained with; a rerun with another config, options or checkpoint is refused instead of mixing two comparisons.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

from detectron2.config import CfgNode, get_cfg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from astrodet.detectron2.config import add_astrodet_config
from astrodet.errors import AstrodetInputError
from astrodet.evaluation.comparison import DEFAULT_TARGET, compare_runs, read_mapping, run_finished, write_comparison
from astrodet.io import atomic_write_json
from astrodet.models.norms import NORM_KINDS
from astrodet.runs import previous_run

TRAIN_NET = Path(__file__).resolve().parent / "train_net.py"
SETTINGS_JSON = "compare_settings.json"
# The config key each encoder backbone loads its starting weights from, by Detectron2 backbone builder name.
TIMM_KEY, DEEPSHADOWS_KEY = "MODEL.ZOOBOT.CHECKPOINT", "MODEL.DEEPSHADOWS.CHECKPOINT"
ENCODER_KEYS = {
    "build_timm_backbone": TIMM_KEY,
    "build_timm_fpn_backbone": TIMM_KEY,
    "build_zoobot_backbone": TIMM_KEY,
    "build_zoobot_fpn_backbone": TIMM_KEY,
    "build_deepshadows_backbone": DEEPSHADOWS_KEY,
    "build_deepshadows_fpn_backbone": DEEPSHADOWS_KEY,
}
# The norm key beside each encoder checkpoint key (``--pretrained-norm``).
NORM_KEYS = {TIMM_KEY: "MODEL.ZOOBOT.NORM", DEEPSHADOWS_KEY: "MODEL.DEEPSHADOWS.NORM"}
RUNS = ("random", "pretrained")


def has_key(cfg: CfgNode, dotted: str) -> bool:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, CfgNode) or part not in node:
            return False
        node = node[part]
    return True


def opt_keys(opts: list[str]) -> list[str]:
    """The keys of Detectron2's ``KEY VALUE ...`` command-line list."""
    return [opts[i] for i in range(0, len(opts), 2)]


def check_setup(args: argparse.Namespace) -> tuple[str, CfgNode]:
    """The encoder checkpoint key of the config's backbone, after refusing what would make the two runs differ in
    more than their encoder weights, or make the comparison unreadable."""
    config = Path(args.config_file)
    if not config.is_file():
        raise AstrodetInputError(f"--config-file {config}: no such file")
    checkpoint = Path(args.checkpoint)
    if not checkpoint.is_file():
        raise AstrodetInputError(f"--checkpoint {checkpoint}: no such file (the pretrained encoder's weights)")
    if len(args.opts) % 2:
        raise AstrodetInputError(f"config options come in KEY VALUE pairs, got {len(args.opts)} words: {args.opts}")
    cfg = get_cfg()
    add_astrodet_config(cfg)
    try:
        cfg.merge_from_file(str(config))
        cfg.merge_from_list(list(args.opts))
    except (KeyError, ValueError, AssertionError) as err:
        raise AstrodetInputError(f"{config}: {err}") from None
    backbone = cfg.MODEL.BACKBONE.NAME
    key = ENCODER_KEYS.get(backbone)
    if key is None:
        known = ", ".join(sorted(ENCODER_KEYS))
        raise AstrodetInputError(
            f"{config}: backbone {backbone} has no encoder checkpoint key to start from; compare a config whose "
            f"backbone is one of {known}"
        )
    if not has_key(cfg, key):
        raise AstrodetInputError(
            f"{config}: backbone {backbone} has no encoder checkpoint key in this astrodet ({key} is not a config key)"
        )
    if args.pretrained_norm is not None and args.pretrained_norm not in NORM_KINDS:
        raise AstrodetInputError(f"--pretrained-norm {args.pretrained_norm!r}: expected one of {', '.join(NORM_KINDS)}")
    ours = {key, "OUTPUT_DIR", "TEST.EVAL_PERIOD"}
    clash = sorted(ours & set(opt_keys(args.opts)))
    if clash:
        raise AstrodetInputError(
            f"{', '.join(clash)}: compare_backbones.py sets it (--checkpoint, --output-dir, --eval-period), not options"
        )
    if cfg.MODEL.WEIGHTS:
        raise AstrodetInputError(
            f"{config}: MODEL.WEIGHTS is {cfg.MODEL.WEIGHTS!r}: both runs would start from that whole model; "
            "pass MODEL.WEIGHTS '' to compare encoder starts"
        )
    if cfg.SEED < 0:
        raise AstrodetInputError(f"{config}: SEED {cfg.SEED} draws a seed per run; set a fixed SEED to compare")
    if len(cfg.DATASETS.TEST) != 1:
        raise AstrodetInputError(f"{config}: DATASETS.TEST names {len(cfg.DATASETS.TEST)} test sets; compare on one")
    return key, cfg


def settings_of(args: argparse.Namespace, key: str) -> dict[str, Any]:
    """What decides the two runs' results; recorded with them, compared on a rerun."""
    checkpoint = Path(args.checkpoint).resolve()
    return {
        "config_file": str(Path(args.config_file).resolve()),
        "options": list(args.opts),
        "encoder_key": key,
        "checkpoint": str(checkpoint),
        "checkpoint_bytes": checkpoint.stat().st_size,
        "eval_period": args.eval_period,
        "pretrained_norm": args.pretrained_norm,
    }


def check_settings(output: Path, settings: dict[str, Any]) -> None:
    """Record ``settings`` in a new comparison folder; refuse a folder whose runs were trained with others."""
    record = output / SETTINGS_JSON
    if not record.exists():
        output.mkdir(parents=True, exist_ok=True)
        atomic_write_json(record, settings, indent=2)
        return
    before = read_mapping(record, "comparison settings record")
    changed = [k for k in settings if before.get(k) != settings[k]]
    if changed:
        diff = "; ".join(f"{k}: {before.get(k)!r} then, {settings[k]!r} now" for k in changed)
        raise AstrodetInputError(
            f"{output} holds a comparison trained with other settings ({diff}): choose another --output-dir, or "
            "delete that folder to start over"
        )


def run_options(name: str, args: argparse.Namespace, key: str, weights: str) -> list[str]:
    """The config options of one run: the shared ones, then its own start (and, pretrained, its norm)."""
    options = [*args.opts, key, weights]
    if name == "pretrained" and args.pretrained_norm is not None:
        options += [NORM_KEYS[key], args.pretrained_norm]
    return options


def train(name: str, folder: Path, args: argparse.Namespace, key: str, weights: str) -> None:
    """Train (or resume, or skip) one run with ``tools/train_net.py``; a failed run ends the comparison."""
    if run_finished(folder):
        print(f"compare_backbones: {name}: finished run in {folder}, not trained again", flush=True)
        return
    resume = previous_run(folder) is not None
    command = [sys.executable, str(TRAIN_NET), "--config-file", args.config_file]
    command += ["--resume"] if resume else []
    command += ["--num-gpus", str(args.num_gpus)] if args.num_gpus > 1 else []
    command += [*run_options(name, args, key, weights), "OUTPUT_DIR", str(folder)]
    command += ["TEST.EVAL_PERIOD", str(args.eval_period)] if args.eval_period else []
    what = "resuming" if resume else "training"
    print(f"compare_backbones: {name}: {what} into {folder}: {' '.join(command[1:])}", flush=True)
    code = subprocess.run(command, check=False).returncode
    if code != 0:
        message = f"compare_backbones.py: error: the {name} run failed (exit {code}); see {folder}/log.txt"
        print(message, file=sys.stderr)
        sys.exit(code)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", required=True, metavar="FILE", help="Detectron2 config (frcnn_*, cls_*)")
    parser.add_argument("--checkpoint", required=True, metavar="FILE", help="the pretrained encoder's weights")
    parser.add_argument("--output-dir", metavar="DIR", help="default: output/compare_backbones/<config name>")
    parser.add_argument("--eval-period", type=int, default=0, metavar="N", help="evaluate every N iterations")
    parser.add_argument(
        "--target", type=float, default=DEFAULT_TARGET, help="completeness and purity to reach (default 0.8)"
    )
    parser.add_argument("--num-gpus", type=int, default=1, help="processes per run, as tools/train_net.py")
    parser.add_argument(
        "--pretrained-norm",
        metavar="NORM",
        help=f"the pretrained run's encoder norm ({', '.join(NORM_KINDS)}; frozen_bn keeps the pretraining's "
        "BatchNorm statistics); default: the config's, in both runs",
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config options for both runs: KEY VALUE ...")
    args = parser.parse_args(argv)
    if args.eval_period < 0:
        parser.error("--eval-period must be >= 0")
    args.output_dir = Path(args.output_dir or Path("output") / "compare_backbones" / Path(args.config_file).stem)
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    try:
        key, _ = check_setup(args)
        settings = settings_of(args, key)
        check_settings(args.output_dir, settings)
        weights = {"random": "", "pretrained": settings["checkpoint"]}
        for name in RUNS:
            train(name, args.output_dir / name, args, key, weights[name])
        folders = {name: args.output_dir / name for name in RUNS}
        result = compare_runs(folders, eval_period=args.eval_period, target=args.target, settings=settings)
    except AstrodetInputError as err:
        print(f"compare_backbones.py: error: {err}", file=sys.stderr)
        sys.exit(2)
    print(write_comparison(args.output_dir, result), flush=True)
    return result


if __name__ == "__main__":
    main()
