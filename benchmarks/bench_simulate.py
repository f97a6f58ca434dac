"""Speed of ``astrodet simulate``: galaxies per minute with 1 and 2 worker processes, in the same run.

    .venv/bin/python benchmarks/bench_simulate.py               # 300 galaxies, full output (PNG + FITS + tables)
    .venv/bin/python benchmarks/bench_simulate.py --n 1000 --no-fits

Each setting writes a fresh dataset into a temporary folder (removed afterwards) with the same seed, so the runs
also check that the outputs are identical whatever the number of workers. Wall-clock time includes process start-up
and writing every file (atomic writes with fsync), i.e. what a user waits for.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astrodet.data.simulation import simulate_dataset

DEFAULT_GALAXIES = 300
QUICK_GALAXIES = 16  # enough for both worker counts to run several chunks, a few seconds each


@dataclass(frozen=True)
class SimulateRun:
    """One simulator run: how many workers, how long it took, and a digest of every file it wrote."""

    workers: int
    galaxies: int
    seconds: float
    galaxies_per_minute: float
    digest: str


def _digest(folder: Path) -> str:
    sha = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        sha.update(str(path.relative_to(folder)).encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()[:16]


def time_workers(n: int, seed: int, workers: Sequence[int], write_fits: bool) -> list[SimulateRun]:
    """Simulate the same ``n`` galaxies once per worker count, each into a fresh temporary folder removed after."""
    runs = []
    root = Path(tempfile.mkdtemp(prefix="astrodet-bench-"))
    try:
        for count in workers:
            out = root / f"w{count}"
            summary = simulate_dataset(out, n, seed, workers=count, progress=False, write_fits=write_fits)
            runs.append(
                SimulateRun(count, summary.n_galaxies, summary.seconds, summary.galaxies_per_minute, _digest(out))
            )
            shutil.rmtree(out.resolve())  # the published folder (``out`` is the link that switches to it)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return runs


def rows(quick: bool = False, seed: int = 1, write_fits: bool = True) -> list[dict[str, Any]]:
    """Result rows for ``benchmarks/run_all.py``: seconds and galaxies/min with 1 and 2 workers (1 is the baseline).

    Raises RuntimeError when the outputs differ between worker counts: a speed-up that changes the data is a bug.
    """
    runs = time_workers(QUICK_GALAXIES if quick else DEFAULT_GALAXIES, seed, (1, 2), write_fits)
    digests = {run.workers: run.digest for run in runs}
    if len(set(digests.values())) != 1:
        raise RuntimeError(f"bench_simulate: outputs differ across worker counts (digests {digests})")
    base = runs[0]
    out: list[dict[str, Any]] = []
    for run in runs:
        case = f"{run.workers} worker{'s' if run.workers > 1 else ''}, {run.galaxies} galaxies"
        for metric, value, baseline in (
            ("seconds", run.seconds, base.seconds),
            ("galaxies/min", run.galaxies_per_minute, base.galaxies_per_minute),
        ):
            ratio = value / baseline
            out.append(
                {"benchmark": "simulate", "case": case, "metric": metric, "value": value, "baseline_ratio": ratio}
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n", type=int, default=DEFAULT_GALAXIES, help=f"galaxies per setting (default {DEFAULT_GALAXIES})"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-fits", action="store_true", help="PNG and tables only")
    args = parser.parse_args(argv)
    runs = time_workers(args.n, args.seed, args.workers, write_fits=not args.no_fits)
    output = "PNG + tables" if args.no_fits else "PNG + FITS (g, r, i) + tables"
    print(f"astrodet simulate, {output}, seed {args.seed}, {os.cpu_count()} CPU cores")
    print("| workers | galaxies | seconds | galaxies/min | speed-up | output digest |")
    print("|---|---|---|---|---|---|")
    base = runs[0].galaxies_per_minute
    for run in runs:
        print(
            f"| {run.workers} | {run.galaxies} | {run.seconds:.1f} | {run.galaxies_per_minute:.0f} "
            f"| {run.galaxies_per_minute / base:.2f}x | {run.digest} |"
        )
    identical = len({run.digest for run in runs}) == 1
    print("outputs identical across worker counts:", "yes" if identical else "NO")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
