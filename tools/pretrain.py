#!/usr/bin/env python
"""Self-supervised pretraining of an astrodet encoder on unlabelled images, for finetuning in either framework.

    tools/pretrain.py ../shared/data/gz2_kaggle --arch convnext_nano --out output/pretrain/gz2.pth --iters 2000
    tools/pretrain.py "$(astrodet datasets default_fits --split train)" --bands u g r i z --arch convnext_nano \\
        --out output/pretrain/fits.pth --iters 2000
    tools/pretrain.py IMAGES --arch deepshadows --out output/pretrain/ds.pth --iters 2000 --input-size 64
    tools/pretrain.py IMAGES --arch resnet18 --out output/pretrain/r18.pth --iters 4000 --resume  # go on
    python -m torch.distributed.run --nproc_per_node 2 tools/pretrain.py IMAGES --arch resnet18 --out ... --iters N

INPUT: folders (searched recursively) of PNG/JPEG cutouts and/or FITS images, single files, or COCO .json files (the
images they list, e.g. only a training split). The checkpoint loads where a Zoobot encoder does:
``MODEL.ZOOBOT.CHECKPOINT`` (Detectron2) or ``TimmEncoder(checkpoint=...)`` / ``init_cfg=dict(type='Pretrained',
...)`` (MMDetection); a DeepShadows trunk through ``MODEL.DEEPSHADOWS.CHECKPOINT`` or
``DeepShadowsTrunk(checkpoint=...)``. docs/pretraining.md explains the choices. Bad input exits with status 2 and
one line naming the file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from astrodet.errors import AstrodetInputError
from astrodet.inference.model import ImageRecipe
from astrodet.pretraining.inputs import DETECTION_PIXEL_MEAN, DETECTION_PIXEL_STD, PixelRecipe
from astrodet.pretraining.methods import DEEPSHADOWS, METHODS
from astrodet.pretraining.train import PretrainSettings, default_workers, pretrain


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Self-supervised pretraining of an astrodet encoder (SimCLR or BYOL, from lightly)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="folders, image files or COCO .json files")
    arch_help = f"a timm architecture (convnext_nano, resnet18, ...) or {DEEPSHADOWS}"
    parser.add_argument("--arch", required=True, help=arch_help)
    parser.add_argument("--out", required=True, type=Path, help="the encoder checkpoint to write (.pth)")
    parser.add_argument("--iters", required=True, type=int, help="training steps ($ASTRODET_MAX_ITER caps them)")
    parser.add_argument("--method", choices=METHODS, default="simclr", help="self-supervised objective")
    parser.add_argument("--batch-size", type=int, default=32, help="images per step and process (2 views each)")
    parser.add_argument("--input-size", type=int, default=128, help="images are centre-cropped and resized to this")
    parser.add_argument("--lr", type=float, default=1e-3, help="AdamW peak learning rate (linear warmup, cosine)")
    parser.add_argument("--weight-decay", type=float, default=0.05, help="AdamW weight decay")
    parser.add_argument("--warmup", type=int, default=100, help="warmup steps (at most a tenth of --iters)")
    parser.add_argument("--seed", type=int, default=0, help="initial weights, image order and views")
    fits = parser.add_argument_group("FITS inputs (normalised as the FITS configs' ASTRODET.IMAGE_RECIPE)")
    fits.add_argument("--bands", nargs="+", help="bands in channel order, as the FITS headers name them")
    fits.add_argument("--stretch", default="asinh", help="float normalisation of the bands (with --bands)")
    fits.add_argument("--recipe", type=Path, help="instead of --bands/--stretch: an image recipe JSON (kind float)")
    pictures = parser.add_argument_group("PNG/JPEG inputs: (pixel - mean) / std, as the configs' PIXEL_MEAN/STD")
    pictures.add_argument("--pixel-mean", nargs=3, type=float, default=DETECTION_PIXEL_MEAN, metavar=("R", "G", "B"))
    pictures.add_argument("--pixel-std", nargs=3, type=float, default=DETECTION_PIXEL_STD, metavar=("R", "G", "B"))
    parser.add_argument("--checkpoint-period", type=int, default=100, help="steps between state files")
    parser.add_argument("--resume", action="store_true", help="continue from the state file beside --out")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out and its state file")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: a GPU if visible")
    parser.add_argument("--num-workers", type=int, default=None, help="processes reading and augmenting images")
    return parser.parse_args(argv)


def fits_recipe(args: argparse.Namespace) -> ImageRecipe | None:
    """The FITS image recipe from ``--recipe`` or ``--bands``/``--stretch`` (None: no FITS input expected)."""
    if args.recipe is not None:
        if args.bands:
            raise AstrodetInputError("give either --recipe or --bands, not both")
        try:
            recipe = ImageRecipe.from_dict(json.loads(args.recipe.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as err:
            raise AstrodetInputError(f"--recipe {args.recipe}: not a readable JSON file ({err})") from None
        if recipe.kind != "float":
            raise AstrodetInputError(f"--recipe {args.recipe}: kind {recipe.kind!r}, FITS inputs need kind 'float'")
        return recipe
    if not args.bands:
        return None
    return ImageRecipe(kind="float", bands=tuple(args.bands), stretch=args.stretch, channels=len(args.bands))


def settings_from_args(args: argparse.Namespace) -> PretrainSettings:
    pixels = PixelRecipe(fits_recipe(args), tuple(args.pixel_mean), tuple(args.pixel_std))
    return PretrainSettings(
        inputs=tuple(args.inputs),
        arch=args.arch,
        out=args.out,
        iters=args.iters,
        method=args.method,
        batch_size=args.batch_size,
        input_size=args.input_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup=args.warmup,
        seed=args.seed,
        pixels=pixels,
        checkpoint_period=args.checkpoint_period,
        resume=args.resume,
        overwrite=args.overwrite,
        device=args.device,
        num_workers=default_workers() if args.num_workers is None else args.num_workers,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        pretrain(settings_from_args(args))
    except AstrodetInputError as err:
        print(f"pretrain: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
