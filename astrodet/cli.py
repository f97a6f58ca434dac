"""The ``astrodet`` command: one subcommand per job, each implemented by the core module that owns it.

Every subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int``; this file only wires them up,
so adding a subcommand is one line in ``_SUBCOMMANDS``. Errors in user input surface as :class:`AstrodetInputError`
and exit with status 2 and a message naming the file, row or field.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from astrodet.errors import AstrodetInputError

# name -> (module implementing it, one-line help)
_SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "simulate": ("astrodet.data.simulation", "generate a simulated clumpy-galaxy dataset (PNG, FITS, boxes.csv)"),
    "convert": ("astrodet.data.convert", "convert an astronomy catalogue into a COCO dataset"),
    "evaluate": ("astrodet.evaluation.command", "score predictions against a truth: completeness, purity, COCO AP"),
    "predict": ("astrodet.inference.command", "run a trained model over cutouts, COCO files or FITS frames"),
    "datasets": ("astrodet.data.datasets_command", "list the named datasets, or build one and print its COCO files"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="astrodet", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in _SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except AstrodetInputError as err:
        print(f"astrodet {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
