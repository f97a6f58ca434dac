"""``astrodet convert SOURCE``: catalogues -> COCO, one sub-subcommand per source.

Why a table of converters: each source module owns its options and conversion and exposes
``add_arguments(parser)`` and ``run(args) -> ConversionSummary``; this file adds the options every converter shares
(--out, --split, --seed, --rejects, --strict), prints the row accounting and applies --strict. Adding a source is one
line in ``CONVERTERS``. A converter's options are a dataclass (a :class:`astrodet.data.toolkit.ConverterOptions`)
whose field names are the dests of its flags; ``run`` fills it with :func:`astrodet.data.toolkit.options_from_args`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from astrodet.data.rejects import ConversionSummary

# source name -> (module implementing it, one-line help)
CONVERTERS: dict[str, tuple[str, str]] = {
    "clumpscout": ("astrodet.data.clumpscout", "Galaxy Zoo: Clump Scout clump boxes (Popp et al. 2024 frame)"),
    "galaxyzoo": ("astrodet.data.galaxyzoo", "Galaxy Zoo 2 vote tables or labelled lists -> whole-image classes"),
    "catalog": ("astrodet.data.catalog", "survey catalogue + cutouts (files, FITS or .npz) -> whole-image classes"),
    "field": ("astrodet.data.field", "source list over wide FITS frames -> overlapping COCO detection tiles"),
    "clumps": ("astrodet.data.clumps", "RA/Dec clump catalogue + FITS (WCS) or centred cutouts -> clump boxes"),
}


def _add_common_arguments(parser: argparse.ArgumentParser) -> None:
    out_help = "output COCO file; with --split, <stem>_<split>.json are written instead"
    parser.add_argument("--out", required=True, type=Path, metavar="FILE.json", help=out_help)
    split_help = "split by galaxy, stratified, e.g. train=0.7,val=0.2,test=0.1"
    parser.add_argument("--split", metavar="NAME=FRAC,...", help=split_help)
    parser.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    rejects_help = "rejected-rows report (default <out stem>_rejects.csv)"
    parser.add_argument("--rejects", dest="rejects_csv", type=Path, metavar="FILE.csv", help=rejects_help)
    strict_help = "exit with status 1 if any input row was rejected (outputs are still written)"
    parser.add_argument("--strict", action="store_true", help=strict_help)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="source", required=True, metavar="SOURCE")
    for name, (module_name, help_text) in CONVERTERS.items():
        module = importlib.import_module(module_name)
        source_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(source_parser)
        _add_common_arguments(source_parser)
        source_parser.set_defaults(_convert=module.run)


def run(args: argparse.Namespace) -> int:
    summary: ConversionSummary = args._convert(args)
    print(summary.line())
    for note in summary.notes:
        print(note)
    counts = ", ".join(f"{name}: {n}" for name, n in summary.categories.items())
    print(f"{summary.images_out} images, boxes by category ({counts})")
    for name, path in summary.outputs.items():
        print(f"wrote {name}: {path}")
    if summary.rejects_csv is not None:
        print(f"rejects: {summary.rejects_csv}")
    if args.strict and summary.n_rejected:
        print(f"astrodet convert {args.source}: --strict: {summary.n_rejected} rows rejected", file=sys.stderr)
        return 1
    return 0
