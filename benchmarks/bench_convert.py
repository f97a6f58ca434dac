"""Time the Clump Scout conversion of the real box tables (annotation-only) and print rows per second.

Usage: python benchmarks/bench_convert.py [--data DIR] [--repeat N] [--frame crop|full]
The tables come from shared/data/clumpscout_boxes (Popp et al. 2024's train/valid boxes; see its README).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from astrodet.data.clumpscout import FRAMES, convert_clumpscout

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "clumpscout_boxes"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"folder of the tables ({DEFAULT_DATA})")
    parser.add_argument("--repeat", type=int, default=3, help="runs per table; the best is reported (3)")
    parser.add_argument("--frame", choices=FRAMES, default="crop")
    args = parser.parse_args(argv)
    tables = [args.data / f"clumpscout_boxes_{name}.csv" for name in ("train", "valid")]
    missing = [str(t) for t in tables if not t.is_file()]
    if missing:
        print(f"bench_convert: tables not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        for table in tables:
            best = float("inf")
            for _ in range(max(1, args.repeat)):
                start = time.perf_counter()
                summary = convert_clumpscout(
                    table, Path(tmp) / f"{table.stem}.json", image_size=(400, 400), frame=args.frame
                )
                best = min(best, time.perf_counter() - start)
            print(f"{table.name}: {summary.line()}")
            print(
                f"  {summary.images_out} images, {summary.categories}; best of {args.repeat}: {best:.3f} s, "
                f"{summary.rows_in / best:,.0f} rows/s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
