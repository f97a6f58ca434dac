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
from pathlib import Path

from astrodet.data.simulate import simulate_dataset


def _digest(folder: Path) -> str:
    sha = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        sha.update(str(path.relative_to(folder)).encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="galaxies per setting (default 300)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-fits", action="store_true", help="PNG and tables only")
    args = parser.parse_args(argv)
    rows = []
    root = Path(tempfile.mkdtemp(prefix="astrodet-bench-"))
    try:
        for workers in args.workers:
            out = root / f"w{workers}"
            summary = simulate_dataset(
                out, args.n, args.seed, workers=workers, progress=False, write_fits=not args.no_fits
            )
            rows.append((workers, summary.n_galaxies, summary.seconds, summary.galaxies_per_minute, _digest(out)))
            shutil.rmtree(out)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    output = "PNG + tables" if args.no_fits else "PNG + FITS (g, r, i) + tables"
    print(f"astrodet simulate, {output}, seed {args.seed}, {os.cpu_count()} CPU cores")
    print("| workers | galaxies | seconds | galaxies/min | speed-up | output digest |")
    print("|---|---|---|---|---|---|")
    base = rows[0][3]
    for workers, n, seconds, per_min, digest in rows:
        print(f"| {workers} | {n} | {seconds:.1f} | {per_min:.0f} | {per_min / base:.2f}x | {digest} |")
    identical = len({r[4] for r in rows}) == 1
    print("outputs identical across worker counts:", "yes" if identical else "NO")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
