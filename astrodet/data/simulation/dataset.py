"""Orchestration of a simulated dataset: galaxies in chunks over worker processes, then tables, config and cleanup.

Why a module of its own: this is the one entry point (:func:`simulate_dataset`, and the ``astrodet simulate``
command) and the only code that knows about processes and folders. Galaxies are independent, so they are rendered
in chunks by a process pool and their rows gathered in index order; the output depends only on
``(n, seed, write_fits, negative_fraction)``, never on ``workers``. Tables and ``simulation.json`` are written
atomically, and files of an earlier, larger run in the same folder are removed.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from astrodet.data.imaging import write_png
from astrodet.data.simulation.galaxy import BOX_SIDE_PER_FWHM, NEGATIVE_FRACTION, Galaxy
from astrodet.data.simulation.optics import BANDS, CROP_OFFSET, FRAME, SDSS_PIXEL
from astrodet.data.simulation.sources import DISK_MIN_SNR, FAINT_MAX_FRACTION, LABEL_MARGIN, MIN_CONTRAST, MIN_SNR
from astrodet.data.simulation.writers import (
    BOXES_COLUMNS,
    CLUMP_COLUMNS,
    GALAXY_COLUMNS,
    csv_text,
    cutout_surface_brightness,
    png_image,
    source_rows,
    write_band_fits,
    write_cutout_fits,
)
from astrodet.errors import AstrodetInputError
from astrodet.io import atomic_write_json, atomic_write_text
from astrodet.workers import die_with_parent

MAX_GALAXIES = 10_000_000
CUTOUT_FITS_DIR = "fits_cutout"  # per-band FITS of the PNG's own frame (write_cutout_fits=True)


@dataclass(frozen=True)
class SimulationSummary:
    """What :func:`simulate_dataset` wrote: counts, paths and speed (for logs and the dataset builder)."""

    out_dir: str
    n_galaxies: int
    n_boxes: int
    n_clumps: int
    n_odd: int
    n_without_clumps: int
    seconds: float
    galaxies_per_minute: float
    files: dict[str, str] = field(default_factory=dict)


def simulate_galaxy(seed: int, index: int, negative_fraction: float = NEGATIVE_FRACTION) -> dict[str, Any]:
    """Render galaxy ``index`` of dataset ``seed`` in memory (no files): native ``images`` per band, ``png`` array,
    and its ``galaxy`` / ``boxes`` / ``clumps`` rows. For inspection, tests and custom writers."""
    galaxy = Galaxy(seed, index, negative_fraction)
    noisy, labelled, row = galaxy.render()
    boxes, clumps = source_rows(galaxy, labelled, row)
    return {"images": noisy, "png": png_image(galaxy, noisy), "galaxy": row, "boxes": boxes, "clumps": clumps}


def _simulate_chunk(
    task: tuple[int, Sequence[int], str, bool, float, bool],
) -> list[tuple[dict, list[dict], list[dict]]]:
    """Worker: simulate and write the galaxies of one chunk; return their table rows."""
    seed, indices, out_dir, write_fits, negative_fraction, cutout_fits = task
    out = Path(out_dir)
    results = []
    for index in indices:
        galaxy = Galaxy(seed, index, negative_fraction)
        noisy, labelled, row = galaxy.render()
        sb = cutout_surface_brightness(galaxy, noisy)
        write_png(out / row["filename"], png_image(galaxy, noisy, sb))
        if write_fits:
            write_band_fits(galaxy, noisy, out / "fits")
        if cutout_fits:
            write_cutout_fits(galaxy, sb, out / CUTOUT_FITS_DIR)
        boxes, clumps = source_rows(galaxy, labelled, row)
        results.append((row, boxes, clumps))
    return results


def _chunks(n: int, size: int) -> Iterator[list[int]]:
    for start in range(0, n, size):
        yield list(range(start, min(start + size, n)))


_OUR_IMAGE = re.compile(r"^\d{12}\.png$")
_OUR_FITS = re.compile(r"^\d{12}_[gri]\.fits$")


def _remove_stale(folder: Path, pattern: re.Pattern[str], keep: set[str]) -> None:
    """Delete outputs of an earlier run that this run did not write (so a rerun leaves a clean dataset)."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.is_file() and pattern.match(entry.name) and entry.name not in keep:
            entry.unlink()


def _check_arguments(out_dir: Path, n: int, seed: int, workers: int | None, negative_fraction: float) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_GALAXIES:
        raise AstrodetInputError(f"--n: expected an integer number of galaxies from 1 to {MAX_GALAXIES}, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise AstrodetInputError(f"--seed: expected a non-negative integer, got {seed!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1):
        raise AstrodetInputError(f"--workers: expected a positive integer (processes), got {workers!r}")
    if not 0.0 <= negative_fraction < 1.0:
        raise AstrodetInputError(f"negative_fraction: expected a fraction in [0, 1), got {negative_fraction!r}")
    if out_dir.exists() and not out_dir.is_dir():
        raise AstrodetInputError(f"--out {out_dir}: expected a directory (created if missing), found an existing file")
    for sub in ("images", "fits", CUTOUT_FITS_DIR):
        if (out_dir / sub).exists() and not (out_dir / sub).is_dir():
            raise AstrodetInputError(f"--out {out_dir}: expected {sub}/ to be a directory, found a file")


def simulate_dataset(
    out_dir: str | os.PathLike[str],
    n: int,
    seed: int,
    workers: int | None = None,
    progress: bool = True,
    write_fits: bool = True,
    negative_fraction: float = NEGATIVE_FRACTION,
    write_cutout_fits: bool = False,
) -> SimulationSummary:
    """Write ``n`` simulated clumpy galaxies (PNG, FITS, boxes/clumps/galaxies CSV) into ``out_dir``.

    This is the one entry point for code that needs astrodet's embedded training data: output depends only on
    ``(n, seed, write_fits, negative_fraction)``, not on ``workers`` (default: all CPU cores), so a dataset can be
    rebuilt byte for byte anywhere. ``write_cutout_fits`` also writes ``fits_cutout/<local_id>_<band>.fits``: the
    PNG's 400x400 frame per band in nanomaggies per arcsec^2 with its TAN WCS (what inference on FITS is checked
    against); off by default, and the other outputs are the same bytes either way. Rerunning into the same folder
    overwrites it cleanly (stale images of a larger earlier run are removed). Raises :class:`AstrodetInputError`
    on bad arguments.
    """
    out = Path(out_dir)
    _check_arguments(out, n, seed, workers, negative_fraction)
    n, seed = int(n), int(seed)
    n_workers = int(workers) if workers is not None else max(1, os.cpu_count() or 1)
    n_workers = min(n_workers, n)
    (out / "images").mkdir(parents=True, exist_ok=True)
    if write_fits:
        (out / "fits").mkdir(parents=True, exist_ok=True)
    if write_cutout_fits:
        (out / CUTOUT_FITS_DIR).mkdir(parents=True, exist_ok=True)
    chunk = max(1, min(16, n // (n_workers * 4) or 1))
    tasks = [
        (seed, idx, str(out), write_fits, float(negative_fraction), write_cutout_fits) for idx in _chunks(n, chunk)
    ]
    from tqdm import tqdm

    start = time.perf_counter()
    results: list[tuple[dict, list[dict], list[dict]]] = []
    with tqdm(total=n, disable=not progress, unit="galaxy", desc="simulate") as bar:
        if n_workers == 1:
            for task in tasks:
                results.extend(_simulate_chunk(task))
                bar.update(len(task[1]))
        else:
            # Workers die with this process, so a killed build leaves none writing into the folder a rerun rebuilds.
            pool = ProcessPoolExecutor(n_workers, initializer=die_with_parent, initargs=(os.getpid(),))
            with pool:
                for task, done in zip(tasks, pool.map(_simulate_chunk, tasks), strict=True):
                    results.extend(done)
                    bar.update(len(task[1]))
    galaxies = [r[0] for r in results]
    boxes = [b for r in results for b in r[1]]
    clumps = [c for r in results for c in r[2]]
    files = {
        "boxes": str(out / "boxes.csv"),
        "clumps": str(out / "clumps.csv"),
        "galaxies": str(out / "galaxies.csv"),
        "config": str(out / "simulation.json"),
    }
    atomic_write_text(files["boxes"], csv_text(BOXES_COLUMNS, boxes))
    atomic_write_text(files["clumps"], csv_text(CLUMP_COLUMNS, clumps))
    atomic_write_text(files["galaxies"], csv_text(GALAXY_COLUMNS, galaxies))
    atomic_write_json(files["config"], _config(n, seed, write_fits, negative_fraction, write_cutout_fits), indent=2)
    keep_png = {f"{g['local_ids']}.png" for g in galaxies}
    keep_fits = {f"{g['local_ids']}_{b}.fits" for g in galaxies for b in BANDS} if write_fits else set()
    _remove_stale(out / "images", _OUR_IMAGE, keep_png)
    _remove_stale(out / "fits", _OUR_FITS, keep_fits)
    if write_cutout_fits:
        _remove_stale(out / CUTOUT_FITS_DIR, _OUR_FITS, {f"{g['local_ids']}_{b}.fits" for g in galaxies for b in BANDS})
    seconds = time.perf_counter() - start
    return SimulationSummary(
        out_dir=str(out),
        n_galaxies=n,
        n_boxes=len(boxes),
        n_clumps=sum(b["label"] == 1 for b in boxes),
        n_odd=sum(b["label"] == 2 for b in boxes),
        n_without_clumps=sum(g["n_boxes"] == 0 for g in galaxies),
        seconds=seconds,
        galaxies_per_minute=60.0 * n / seconds if seconds > 0 else float("inf"),
        files=files,
    )


def _config(n: int, seed: int, write_fits: bool, negative_fraction: float, cutout_fits: bool) -> dict[str, Any]:
    from astrodet import __version__

    config = {
        "generator": "astrodet.data.simulation",
        "astrodet_version": __version__,
        "n": n,
        "seed": seed,
        "write_fits": write_fits,
        "negative_fraction": negative_fraction,
        "frame_px": FRAME,
        "crop_offset_px": CROP_OFFSET,
        "bands": list(BANDS),
        "native_pixel_arcsec": SDSS_PIXEL,
        "min_contrast": MIN_CONTRAST,
        "min_snr": MIN_SNR,
        "disk_min_snr": DISK_MIN_SNR,
        "label_margin": LABEL_MARGIN,
        "faint_max_fraction": FAINT_MAX_FRACTION,
        "box_side_per_fwhm": BOX_SIDE_PER_FWHM,
        "units": {"fits": "nanomaggy per 0.396 arcsec pixel", "png": "Lupton asinh of nanomaggy/arcsec^2 (i,r,g)"},
        "calibration": "clump counts and box sides from Galaxy Zoo: Clump Scout boxes (Popp et al. 2024), train split",
    }
    if cutout_fits:  # only when asked, so that datasets made without it keep their bytes
        config["write_cutout_fits"] = True
        config["units"]["fits_cutout"] = "nanomaggy/arcsec^2 on the PNG's grid, rows flipped to FITS order"
    return config


# ------------------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``astrodet simulate``."""
    parser.add_argument("--out", required=True, help="dataset folder (created; rerunning overwrites it cleanly)")
    parser.add_argument("--n", type=int, required=True, help="number of galaxies")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed -> identical files)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: all CPU cores)")
    parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    parser.add_argument("--no-fits", action="store_true", help="write PNGs and tables only (no per-band FITS)")
    parser.add_argument(
        "--cutout-fits",
        action="store_true",
        help=f"also write {CUTOUT_FITS_DIR}/<id>_<band>.fits: the PNG's 400x400 frame per band with its WCS",
    )


def run(args: argparse.Namespace) -> int:
    """``astrodet simulate``: write the dataset and print one summary line."""
    summary = simulate_dataset(
        args.out,
        args.n,
        args.seed,
        workers=args.workers,
        progress=not args.no_progress,
        write_fits=not args.no_fits,
        write_cutout_fits=args.cutout_fits,
    )
    print(
        f"simulated {summary.n_galaxies} galaxies into {summary.out_dir}: {summary.n_boxes} boxes "
        f"({summary.n_clumps} clumps, {summary.n_odd} odd), {summary.n_without_clumps} galaxies without clumps; "
        f"{summary.galaxies_per_minute:.0f} galaxies/min"
    )
    return 0

