"""``astrodet datasets``: the named datasets both frameworks know, and where their COCO files are.

Why a command: configs name datasets (``astrodet_default_fits_test``, ``dataset='default_fits'``), but tools that
take files (``astrodet predict``, ``astrodet evaluate``, your own scripts) need paths. ``astrodet datasets`` lists
the names; ``astrodet datasets NAME`` builds the dataset on first use (as training would) and prints one
``split<TAB>path`` line per split, or only the path with ``--split``, for use as ``$(astrodet datasets ...)``.
"""

from __future__ import annotations

import argparse
import sys

from astrodet.data import catalogue
from astrodet.errors import AstrodetInputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="a dataset name; without it, list every name")
    parser.add_argument("--split", help="print only this split's COCO file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar while building")


def run(args: argparse.Namespace) -> int:
    if args.name is None:
        if args.split:
            raise AstrodetInputError("--split needs a dataset name")
        for name in catalogue.names():
            recipe = catalogue.recipe(name)
            state = "built" if catalogue.is_built(name) else "built on first use"
            print(f"{name}\t{recipe.task}\t{state}\t{recipe.description}")
        return 0
    if args.name not in catalogue.names():
        raise AstrodetInputError(f"unknown dataset {args.name!r}; known: {', '.join(catalogue.names())}")
    recipe = catalogue.recipe(args.name)
    if args.split and args.split not in recipe.splits:
        raise AstrodetInputError(f"dataset {args.name!r} has splits {list(recipe.splits)}, not {args.split!r}")
    paths = catalogue.ensure(args.name, progress=not args.no_progress and sys.stderr.isatty())
    if args.split:
        print(paths[args.split])
    else:
        for split, path in paths.items():
            print(f"{split}\t{path}")
    return 0
