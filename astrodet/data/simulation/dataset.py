"""Orchestration of a simulated dataset: galaxies in chunks over worker processes, then tables, config and cleanup.

Why a module of its own: this is the one entry point (:func:`simulate_dataset`, and the ``astrodet simulate``
command) and the only code that knows about processes and folders. Galaxies are independent, so they are rendered
in chunks by a process pool and their rows gathered in index order; the output depends only on
``(n, seed, write_fits, negative_fraction, bands, ...)``, never on ``workers``. The folder is one unit
(:mod:`astrodet.data.outputs`): staged whole in a hidden sibling and switched in with one rename, so an interrupted
rerun never leaves new images beside old tables.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from astrodet.data.imaging import write_png
from astrodet.data.outputs import OutputUnit
from astrodet.data.simulation.galaxy import BOX_SIDE_PER_FWHM, NEGATIVE_FRACTION, Galaxy
from astrodet.data.simulation.optics import BANDS, CROP_OFFSET, EXTRA_BANDS, FRAME, SDSS_BANDS, SDSS_PIXEL
from astrodet.data.simulation.population import DEFAULT_POPULATION, POPULATIONS, population
from astrodet.data.simulation.sources import DISK_MIN_SNR, FAINT_MAX_FRACTION, LABEL_MARGIN
from astrodet.data.simulation.writers import (
    BOXES_COLUMNS,
    CLUMP_COLUMNS,
    GALAXY_COLUMNS,
    csv_text,
    cutout_surface_brightness,
    png_image,
    source_rows,
    table_columns,
    write_band_fits,
    write_crop_cube,
    write_cutout_fits,
)
from astrodet.errors import AstrodetInputError
from astrodet.io import atomic_write_json, atomic_write_text, clone, clone_tree
from astrodet.workers import die_with_parent

MAX_GALAXIES = 10_000_000
CUTOUT_FITS_DIR = "fits_cutout"  # per-band FITS of the PNG's own frame (write_cutout_fits=True)
CROP_CUBES_DIR = "fits_crop"  # one multi-band cube of the 200x200 training crop per galaxy (write_crop_cubes=True)
TABLES = {"boxes": "boxes.csv", "clumps": "clumps.csv", "galaxies": "galaxies.csv", "config": "simulation.json"}
# Everything a run writes in its folder: a rerun replaces these and carries anything else over.
OUTPUT_NAMES = frozenset({"images", "fits", CUTOUT_FITS_DIR, CROP_CUBES_DIR, *TABLES.values()})


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


def simulate_galaxy(
    seed: int,
    index: int,
    negative_fraction: float = NEGATIVE_FRACTION,
    bands: Sequence[str] = BANDS,
    source_population: str = DEFAULT_POPULATION,
) -> dict[str, Any]:
    """Render galaxy ``index`` of dataset ``seed`` in memory (no files): native ``images`` per band, ``png`` array,
    and its ``galaxy`` / ``boxes`` / ``clumps`` rows. For inspection, tests and custom writers."""
    galaxy = Galaxy(seed, index, negative_fraction, band_tuple(bands), population(source_population))
    noisy, labelled, row = galaxy.render()
    boxes, clumps = source_rows(galaxy, labelled, row)
    return {"images": noisy, "png": png_image(galaxy, noisy), "galaxy": row, "boxes": boxes, "clumps": clumps}


@dataclass(frozen=True)
class _Plan:
    """Everything that decides the bytes of a run (``workers`` never does)."""

    n: int
    seed: int
    write_fits: bool
    negative_fraction: float
    cutout_fits: bool
    crop_cubes: bool
    bands: tuple[str, ...]
    population: str = DEFAULT_POPULATION


def _simulate_chunk(task: tuple[_Plan, list[int], str]) -> list[tuple[dict, list[dict], list[dict]]]:
    """Worker: simulate and write the galaxies ``task[1]`` into the folder ``task[2]``; return their table rows."""
    plan, indices, folder = task
    out = Path(folder)
    results = []
    for index in indices:
        galaxy = Galaxy(plan.seed, index, plan.negative_fraction, plan.bands, plan.population)
        noisy, labelled, row = galaxy.render()
        sb = cutout_surface_brightness(galaxy, noisy)
        write_png(out / row["filename"], png_image(galaxy, noisy, sb))
        if plan.write_fits:
            write_band_fits(galaxy, noisy, out / "fits")
        if plan.cutout_fits:
            write_cutout_fits(galaxy, sb, out / CUTOUT_FITS_DIR)
        if plan.crop_cubes:
            write_crop_cube(galaxy, sb, out / CROP_CUBES_DIR / f"{galaxy.local_id}.fits")
        boxes, clumps = source_rows(galaxy, labelled, row)
        results.append((row, boxes, clumps))
    return results


def _chunks(n: int, size: int) -> Iterator[list[int]]:
    for start in range(0, n, size):
        yield list(range(start, min(start + size, n)))


def band_tuple(bands: str | Sequence[str]) -> tuple[str, ...]:
    """The bands to simulate in wavelength order, from ``"ugriz"`` or ``["u", "g", ...]``: g, r and i (the PNG's)
    and optionally u and z. Anything else is an :class:`AstrodetInputError` naming the bad band."""
    given = list(bands)
    for band in given:
        if band not in SDSS_BANDS:
            raise AstrodetInputError(f"--bands: unknown band {band!r}; choose from {''.join(SDSS_BANDS)}")
    if len(set(given)) != len(given):
        raise AstrodetInputError(f"--bands: a band is given twice in {''.join(given)!r}")
    missing = [b for b in BANDS if b not in given]
    if missing:
        raise AstrodetInputError(f"--bands: g, r and i are always simulated (the PNG's colours); missing {missing}")
    return tuple(b for b in SDSS_BANDS if b in given)


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
    if not Path(os.path.abspath(out_dir)).name:
        raise AstrodetInputError(f"--out {out_dir}: expected a folder below the file system's root")


def simulate_dataset(
    out_dir: str | os.PathLike[str],
    n: int,
    seed: int,
    workers: int | None = None,
    progress: bool = True,
    write_fits: bool = True,
    negative_fraction: float = NEGATIVE_FRACTION,
    write_cutout_fits: bool = False,
    bands: str | Sequence[str] = BANDS,
    write_crop_cubes: bool = False,
    atomic: bool = True,
    source_population: str = DEFAULT_POPULATION,
) -> SimulationSummary:
    """Write ``n`` simulated clumpy galaxies (PNG, FITS, boxes/clumps/galaxies CSV) into ``out_dir``.

    This is the one entry point for code that needs astrodet's embedded training data: output depends only on the
    arguments below ``workers``, never on ``workers`` itself (default: all CPU cores), so a dataset can be
    rebuilt byte for byte anywhere. ``write_cutout_fits`` also writes ``fits_cutout/<local_id>_<band>.fits``: the
    PNG's 400x400 frame per band in nanomaggies per arcsec^2 with its TAN WCS (what inference on FITS is checked
    against); off by default, and the other outputs are the same bytes either way. ``bands`` adds u and/or z to
    g, r, i (``"ugriz"``): each extra band gets its own PSF, sky and noise, and its FITS files and table columns
    (``flux_u``, ``mag_u``, ...) are added, while every g, r, i pixel, the PNGs and the boxes stay the bytes of a
    g, r, i run. ``write_crop_cubes`` writes ``fits_crop/<local_id>.fits``: the 200x200 training crop of every
    band as one float32 cube (``BAND1..BANDC``, ``BUNIT``, WCS; FITS row order).
    ``source_population`` picks which clumps are drawn and labelled and how the colour image is stretched
    (:mod:`astrodet.data.simulation.population`; ``faint`` is the real-sky one; the default keeps its bytes).

    The folder is published as one unit (:class:`astrodet.data.outputs.OutputUnit`): the run writes a hidden
    sibling and switches ``out_dir`` to it with one rename, so a reader, or a rerun killed at any moment, sees the
    complete previous set or the complete new one, never new images beside old tables; what a killed run left is
    removed by the next. Files in ``out_dir`` that the simulator does not write are kept. ``atomic=False`` writes
    in place into a new or empty folder instead, for a caller that publishes the whole folder itself (the dataset
    cache, whose COCO files record the paths they were made from). Raises :class:`AstrodetInputError` on bad
    arguments.
    """
    visible = Path(out_dir)
    _check_arguments(visible, n, seed, workers, negative_fraction)
    plan = _Plan(
        int(n), int(seed), bool(write_fits), float(negative_fraction), bool(write_cutout_fits),
        bool(write_crop_cubes), band_tuple(bands), population(source_population).name,
    )  # fmt: skip
    n_workers = min(int(workers) if workers is not None else max(1, os.cpu_count() or 1), plan.n)
    if not atomic:
        if visible.is_dir() and any(visible.iterdir()):
            raise AstrodetInputError(f"{visible}: writing in place (atomic=False) needs a new or empty folder")
        visible.mkdir(parents=True, exist_ok=True)
        return _simulate_into(visible, visible, plan, n_workers, progress)
    out = Path(os.path.abspath(visible))
    with OutputUnit(out.parent, f"{out.name}.simulation", f"astrodet simulate --out {visible}") as unit:
        staged = unit.staged(out)
        staged.mkdir()
        _carry_over(out, staged)
        summary = _simulate_into(staged, visible, plan, n_workers, progress)
        unit.publish()
    return summary


def _carry_over(out: Path, staged: Path) -> None:
    """Give the new folder what the old one holds besides simulator outputs (a user's notes, a conversion written
    inside it), as hard links: a rerun replaces only what the simulator writes."""
    if not out.is_dir():
        return
    for entry in os.scandir(out):
        if entry.name in OUTPUT_NAMES:
            continue
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), staged / entry.name)
        elif entry.is_dir():
            clone_tree(entry.path, staged / entry.name)
        else:
            clone(entry.path, staged / entry.name)


def _simulate_into(folder: Path, visible: Path, plan: _Plan, n_workers: int, progress: bool) -> SimulationSummary:
    """Write the run into ``folder``; the summary names the files as they will be seen, under ``visible``."""
    subfolders = {"images": True, "fits": plan.write_fits, CUTOUT_FITS_DIR: plan.cutout_fits}
    for sub, wanted in {**subfolders, CROP_CUBES_DIR: plan.crop_cubes}.items():
        if wanted:
            (folder / sub).mkdir()
    chunk = max(1, min(16, plan.n // (n_workers * 4) or 1))
    tasks = [(plan, indices, str(folder)) for indices in _chunks(plan.n, chunk)]
    from tqdm import tqdm

    start = time.perf_counter()
    results: list[tuple[dict, list[dict], list[dict]]] = []
    with tqdm(total=plan.n, disable=not progress, unit="galaxy", desc="simulate") as bar:
        if n_workers == 1:
            for task in tasks:
                results.extend(_simulate_chunk(task))
                bar.update(len(task[1]))
        else:
            # Workers die with this process, so a killed run leaves none writing into the folder a rerun rebuilds.
            pool = ProcessPoolExecutor(n_workers, initializer=die_with_parent, initargs=(os.getpid(),))
            with pool:
                for task, done in zip(tasks, pool.map(_simulate_chunk, tasks), strict=True):
                    results.extend(done)
                    bar.update(len(task[1]))
    galaxies = [r[0] for r in results]
    boxes = [b for r in results for b in r[1]]
    clumps = [c for r in results for c in r[2]]
    extra = [b for b in plan.bands if b in EXTRA_BANDS]
    atomic_write_text(folder / "boxes.csv", csv_text(BOXES_COLUMNS, boxes))
    atomic_write_text(folder / "clumps.csv", csv_text(table_columns(CLUMP_COLUMNS, "flux_", extra), clumps))
    atomic_write_text(folder / "galaxies.csv", csv_text(table_columns(GALAXY_COLUMNS, "mag_", extra), galaxies))
    atomic_write_json(folder / "simulation.json", _config(plan), indent=2)
    seconds = time.perf_counter() - start
    return SimulationSummary(
        out_dir=str(visible),
        n_galaxies=plan.n,
        n_boxes=len(boxes),
        n_clumps=sum(b["label"] == 1 for b in boxes),
        n_odd=sum(b["label"] == 2 for b in boxes),
        n_without_clumps=sum(g["n_boxes"] == 0 for g in galaxies),
        seconds=seconds,
        galaxies_per_minute=60.0 * plan.n / seconds if seconds > 0 else float("inf"),
        files={key: str(visible / name) for key, name in TABLES.items()},
    )


def _config(plan: _Plan) -> dict[str, Any]:
    from astrodet import __version__

    config = {
        "generator": "astrodet.data.simulation",
        "astrodet_version": __version__,
        "n": plan.n,
        "seed": plan.seed,
        "write_fits": plan.write_fits,
        "negative_fraction": plan.negative_fraction,
        "frame_px": FRAME,
        "crop_offset_px": CROP_OFFSET,
        "bands": list(plan.bands),
        "native_pixel_arcsec": SDSS_PIXEL,
        "min_contrast": population(plan.population).min_contrast,
        "min_snr": population(plan.population).min_snr,
        "disk_min_snr": DISK_MIN_SNR,
        "label_margin": LABEL_MARGIN,
        "faint_max_fraction": FAINT_MAX_FRACTION,
        "box_side_per_fwhm": BOX_SIDE_PER_FWHM,
        "units": {"fits": "nanomaggy per 0.396 arcsec pixel", "png": "Lupton asinh of nanomaggy/arcsec^2 (i,r,g)"},
        "calibration": "clump counts and box sides from Galaxy Zoo: Clump Scout boxes (Popp et al. 2024), train split",
    }
    if plan.population != DEFAULT_POPULATION:  # only when asked, so that default datasets keep their bytes
        config["population"] = population(plan.population).config()
    if plan.cutout_fits:  # only when asked, so that datasets made without it keep their bytes
        config["write_cutout_fits"] = True
        config["units"]["fits_cutout"] = "nanomaggy/arcsec^2 on the PNG's grid, rows flipped to FITS order"
    if plan.crop_cubes:
        config["write_crop_cubes"] = True
        config["units"]["fits_crop"] = "nanomaggy/arcsec^2 of the 200x200 crop, all bands, rows in FITS order"
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
    parser.add_argument(
        "--bands",
        default="".join(BANDS),
        help="bands to simulate: gri (default) or ugriz (u and z with their own PSF and noise; g, r, i unchanged)",
    )
    parser.add_argument(
        "--crop-cubes",
        action="store_true",
        help=f"also write {CROP_CUBES_DIR}/<id>.fits: the 200x200 training crop of every band as one float32 cube",
    )
    parser.add_argument(
        "--population",
        default=DEFAULT_POPULATION,
        choices=tuple(POPULATIONS),
        help="which clumps are drawn and labelled, and the colour stretch: clump_scout (default: Clump Scout's "
        "volunteers on SDSS cutouts) or faint (fainter, broader clumps, unlabelled nuclei, brighter discs: real sky)",
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
        bands=args.bands,
        write_crop_cubes=args.crop_cubes,
        source_population=args.population,
    )
    print(
        f"simulated {summary.n_galaxies} galaxies into {summary.out_dir}: {summary.n_boxes} boxes "
        f"({summary.n_clumps} clumps, {summary.n_odd} odd), {summary.n_without_clumps} galaxies without clumps; "
        f"{summary.galaxies_per_minute:.0f} galaxies/min"
    )
    return 0

