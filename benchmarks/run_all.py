"""Run every benchmark in benchmarks/ and print one table: benchmark, case, metric, value, ratio to its baseline.

    .venv/bin/python benchmarks/run_all.py                          # full sizes (what `make bench` runs)
    .venv/bin/python benchmarks/run_all.py --quick                  # small sizes: about 2 minutes on 2 cores
    .venv/bin/python benchmarks/run_all.py --only convert --only simulate --json bench.json

Each benchmark module exposes ``rows(quick=False, ...)`` beside its own ``main()``; this script calls them in turn in
one process, cheapest first. One process because that is how bench_train already compares its configs (same machine
state for all), and because every benchmark measures in-process work with its own timers, so nothing needs isolating.
The simulator benchmark runs before the training one so that its worker processes are forked before torch is
imported. Standard output holds only the table (progress, logs and warnings go to standard error). A benchmark that
fails is reported under the table and makes the exit status 1; the others still run.

``compare_simulation.py`` is not run: it measures no speed; it regenerates docs/box_stats.md and
docs/simulated_vs_real.png (simulated vs real Clump Scout statistics), a documentation step after simulator changes.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from astrodet.io import atomic_write_json

# name -> module in this folder, in the order they run (cheapest first)
BENCHMARKS = {
    "convert": "bench_convert",
    "simulate": "bench_simulate",
    "predict": "bench_predict",
    "train": "bench_train",
}
COLUMNS = ("benchmark", "case", "metric", "value", "vs baseline")


def collect_rows(
    names: Sequence[str] = tuple(BENCHMARKS), quick: bool = False
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Run the named benchmarks; return their rows and, per failed benchmark, its error as one line.

    Modules are imported only when they run, so ``--only convert`` never imports torch.
    """
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    rows: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    for name in BENCHMARKS:  # fixed order whatever the order asked for
        if name not in names:
            continue
        print(f"running {name}{' (quick)' if quick else ''} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:  # stdout is for the table: whatever a benchmark prints or logs (Detectron2's trainer) goes to stderr
            with contextlib.redirect_stdout(sys.stderr):
                module = importlib.import_module(BENCHMARKS[name])
                rows.extend(module.rows(quick=quick))
        except Exception as error:  # one broken benchmark must not hide the others' numbers
            traceback.print_exc(file=sys.stderr)
            failed[name] = f"{type(error).__name__}: {error}"
        print(f"  {name}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return rows, failed


def format_value(value: float) -> str:
    """Three significant figures, thousands separated from 100 up (rows/s and galaxies/min are large)."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as one Markdown table; the ratio column reads ``-`` where a benchmark has no baseline."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        ratio = row["baseline_ratio"]
        cells = (row["benchmark"], row["case"], row["metric"], format_value(row["value"]))
        lines.append("| " + " | ".join((*cells, "-" if ratio is None else f"{ratio:.2f}x")) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few iterations (about 2 minutes)")
    parser.add_argument(
        "--only",
        action="append",
        choices=list(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also save the rows (and any failures) as JSON")
    args = parser.parse_args(argv)
    rows, failed = collect_rows(args.only or tuple(BENCHMARKS), quick=args.quick)
    print(f"astrodet benchmarks{' (quick)' if args.quick else ''}, {os.cpu_count()} CPU cores")
    print(format_table(rows))
    for name, error in failed.items():
        print(f"FAILED {name}: {error}")
    if args.json:
        record = {"quick": args.quick, "cpu_count": os.cpu_count(), "rows": rows, "failed": failed}
        atomic_write_json(args.json, record, indent=2)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
