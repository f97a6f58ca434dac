"""Time the Clump Scout conversion of the real box tables (annotation-only) and print rows per second.

Usage: python benchmarks/bench_convert.py [--data DIR] [--repeat N] [--frame crop|full]
The tables come from shared/data/clumpscout_boxes (Popp et al. 2024's train/valid boxes; see its README); the
shared/data folder is $ASTRODET_SHARED_DATA when set, as for astrodet's samples and the tests.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from astrodet.data.clumpscout import FRAMES, convert_clumpscout

SHARED_DATA = os.environ.get("ASTRODET_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_DATA = Path(SHARED_DATA) / "clumpscout_boxes"
TABLES = ("train", "valid")
QUICK_TABLES = ("valid",)  # the smaller real table (13,894 rows): enough to measure rows/s in a second


def find_tables(data: Path, names: Sequence[str] = TABLES) -> list[Path]:
    """The real box tables in ``data``; a missing one is an error naming every absent file."""
    tables = [data / f"clumpscout_boxes_{name}.csv" for name in names]
    missing = [str(t) for t in tables if not t.is_file()]
    if missing:
        raise FileNotFoundError(f"bench_convert: tables not found: {', '.join(missing)}")
    return tables


def time_tables(tables: Sequence[Path], repeat: int, frame: str) -> Iterator[tuple[Path, Any, float]]:
    """Convert each table ``repeat`` times; yield (table, the converter's summary, best seconds) as each finishes.

    The best of several runs is the least disturbed by other work on the machine.
    """
    with tempfile.TemporaryDirectory() as tmp:
        for table in tables:
            best = float("inf")
            for _ in range(max(1, repeat)):
                start = time.perf_counter()
                summary = convert_clumpscout(
                    table, Path(tmp) / f"{table.stem}.json", image_size=(400, 400), frame=frame
                )
                best = min(best, time.perf_counter() - start)
            yield table, summary, best


def rows(quick: bool = False, data: Path = DEFAULT_DATA, frame: str = "crop") -> list[dict[str, Any]]:
    """Result rows for ``benchmarks/run_all.py``: seconds and rows/s per table (no baseline: one converter)."""
    names, repeat = (QUICK_TABLES, 1) if quick else (TABLES, 3)
    out: list[dict[str, Any]] = []
    for table, summary, best in time_tables(find_tables(data, names), repeat, frame):
        case = f"{table.name} ({summary.rows_in:,} rows, {frame} frame)"
        for metric, value in (("seconds", best), ("rows/s", summary.rows_in / best)):
            out.append({"benchmark": "convert", "case": case, "metric": metric, "value": value, "baseline_ratio": None})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"folder of the tables ({DEFAULT_DATA})")
    parser.add_argument("--repeat", type=int, default=3, help="runs per table; the best is reported (3)")
    parser.add_argument("--frame", choices=FRAMES, default="crop")
    args = parser.parse_args(argv)
    try:
        tables = find_tables(args.data)
    except FileNotFoundError as error:
        print(error, file=sys.stderr)
        return 2
    for table, summary, best in time_tables(tables, args.repeat, args.frame):
        print(f"{table.name}: {summary.line()}")
        print(
            f"  {summary.images_out} images, {summary.categories}; best of {args.repeat}: {best:.3f} s, "
            f"{summary.rows_in / best:,.0f} rows/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
