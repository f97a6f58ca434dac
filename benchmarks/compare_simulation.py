"""Compare astrodet's simulated clumpy galaxies with real SDSS data and real Clump Scout boxes.

Writes ``docs/box_stats.md`` (box statistics of the real Clump Scout train and valid tables next to a simulated
set) and ``docs/simulated_vs_real.png`` (simulated cutouts next to real SDSS galaxies). Re-run after changing the
simulator:

    .venv/bin/python benchmarks/compare_simulation.py            # 2000 galaxies, seed 2024
    .venv/bin/python benchmarks/compare_simulation.py --n 5000 --workers 2

Real data (see shared/data/README.md): Galaxy Zoo: Clump Scout boxes as used by Popp et al. 2024
(ou-astrophysics/Faster-R-CNN-for-Galaxy-Zoo-Clump-Scout @ 3841421, GPL-3.0); Galaxy Zoo 2 Kaggle SDSS images
(isi-mube/Cosmic-Compendium @ 05482aa); SDSS DR16 cutouts of the Perseus Cluster Catalogue sample (Wittmann et al.
2019; Json-To-String/JPAstro @ 16e453c).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from astrodet.data.boxstats import box_stats, markdown_table, read_boxes_csv
from astrodet.data.simulation import CROP_OFFSET, CROP_SIDE, simulate_dataset
from astrodet.io import atomic_open, atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
N_TILES = 6


def _real_tables(shared: Path) -> dict[str, Path]:
    folder = shared / "clumpscout_boxes"
    tables = {
        "real train (Clump Scout)": folder / "clumpscout_boxes_train.csv",
        "real valid (Clump Scout)": folder / "clumpscout_boxes_valid.csv",
    }
    missing = [str(p) for p in tables.values() if not p.is_file()]
    if missing:
        sys.exit(f"real Clump Scout tables not found: {', '.join(missing)} (see shared/data/README.md)")
    return tables


def _percentiles(values: list[float]) -> str:
    p5, p50, p95 = np.percentile(values, [5, 50, 95])
    return f"{p50:.3g} ({p5:.3g}-{p95:.3g})"


def _clump_notes(sim_dir: Path) -> list[str]:
    with (sim_dir / "clumps.csv").open(newline="") as handle:
        clumps = list(csv.DictReader(handle))
    with (sim_dir / "galaxies.csv").open(newline="") as handle:
        galaxies = list(csv.DictReader(handle))
    kinds = {k: sum(c["kind"] == k for c in clumps) for k in ("sf_clump", "star", "red_compact")}
    sf = [c for c in clumps if c["kind"] == "sf_clump"]
    lines = [
        f"- simulated labelled sources by kind: {kinds['sf_clump']} star-forming clumps (label 1), "
        f"{kinds['star']} foreground stars and {kinds['red_compact']} red compact sources (label 2, odd)",
        "- star-forming clumps, median (5th-95th percentile): g-band flux ratio to the galaxy "
        f"{_percentiles([float(c['flux_ratio_g']) for c in sf])}, r magnitude "
        f"{_percentiles([float(c['mag_r']) for c in sf])}, peak contrast over the local galaxy light "
        f"{_percentiles([float(c['contrast']) for c in sf])}, PSF S/N {_percentiles([float(c['snr']) for c in sf])}",
        f"- simulated galaxies: r magnitude {_percentiles([float(g['mag_r']) for g in galaxies])}, pixel scale "
        f"{_percentiles([float(g['pixel_scale']) for g in galaxies])} arcsec/px, PSF FWHM "
        f"{_percentiles([float(g['psf_fwhm_px']) for g in galaxies])} px",
    ]
    return lines


def write_stats(sim_dir: Path, n: int, seed: int, shared: Path, out_path: Path) -> str:
    columns = {name: box_stats(read_boxes_csv(path)) for name, path in _real_tables(shared).items()}
    columns[f"simulated (n={n}, seed={seed})"] = box_stats(read_boxes_csv(sim_dir / "boxes.csv"), n_galaxies_total=n)
    table = markdown_table(columns)
    text = "\n".join(
        [
            "# Simulated vs real Clump Scout box statistics",
            "",
            "Produced by `benchmarks/compare_simulation.py` (re-run it after changing `astrodet/data/simulation/`).",
            "Boxes are in pixels of the central 200x200 crop of the 400x400 cutout (the frame Popp et al. 2024",
            "trained on). Boxes-per-galaxy numbers are over galaxies with at least one box, because the real tables",
            "only list those; the simulated set also holds galaxies with no clumps (last statistic).",
            "",
            table,
            "Notes:",
            "",
            *_clump_notes(sim_dir),
            "- calibration: clump and odd-clump counts are drawn from the real train table's joint distribution, and",
            "  the per-galaxy box side from its distribution for the galaxy's box count (box side = 1.5 r-band PSF",
            "  FWHM sets the pixel scale). Box positions are not drawn from the table: they follow from the disk",
            "  model, whose size in pixels and clump radius distribution were tuned by hand to the real centre",
            "  distances, and from the visibility rule (only clumps visible above the local disk and the noise are",
            "  placed and labelled). The valid table is not used for calibration.",
            "",
            "The figure `docs/simulated_vs_real.png` (same script) shows simulated cutouts and training crops next to",
            "real SDSS galaxies.",
            "",
            "Sources:",
            "",
            "- Galaxy Zoo: Clump Scout volunteer-consensus boxes as used by Popp et al. 2024, RASTI 3, 174",
            "  (ou-astrophysics/Faster-R-CNN-for-Galaxy-Zoo-Clump-Scout @ 3841421, `imageGroups_{train,valid}.pkl`",
            "  exported to CSV in shared/data/clumpscout_boxes; GPL-3.0).",
            "- Figure, real images: Galaxy Zoo 2 Kaggle Galaxy Challenge SDSS gri JPEGs (isi-mube/Cosmic-Compendium",
            "  @ 05482aa, data/galaxies/train/; Kaggle competition data) and SDSS DR16 cutouts of the Perseus Cluster",
            "  Catalogue sample (Wittmann et al. 2019, ApJS 245, 10; Json-To-String/JPAstro @ 16e453c), both from",
            "  shared/data.",
            "",
        ]
    )
    atomic_write_text(out_path, text)
    return table


def _gz2_images(shared: Path) -> list[Path]:
    labels = shared / "gz2_kaggle" / "labels.csv"
    with labels.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["label"] == "spirals"]
    rows.sort(key=lambda r: int(r["galaxy_id"]))
    return [shared / "gz2_kaggle" / r["file"] for r in rows[:N_TILES]]


def _perseus_images(shared: Path) -> list[Path]:
    """The brightest late-type ('Cluster or background LTG') objects of the Perseus sample (visible disks)."""
    folder = shared / "perseus_sample"
    picks = []
    for line in (folder / "PCC_cat_sample.txt").read_text().splitlines():
        fields = line.split()
        if len(fields) > 4 and "Cluster or background LTG" in line and fields[4] != "N/A":
            path = folder / "images" / f"sdss_ra={fields[2]}_dec={fields[3]}.png"
            if path.is_file():
                picks.append((float(fields[4]), path))
    picks.sort()
    return [p for _, p in picks[:N_TILES]]


def _draw_boxes(image: np.ndarray, boxes: list[dict[str, str]]) -> np.ndarray:
    out = image.copy()
    for box in boxes:
        colour = (255, 60, 60) if box["label"] == "1" else (60, 220, 255)
        x1, x2 = (round(float(box[k])) for k in ("x1", "x2"))
        y1, y2 = (round(float(box[k])) for k in ("y1", "y2"))
        x1, y1 = max(x1, 0), max(y1, 0)
        x2, y2 = min(x2, out.shape[1] - 1), min(y2, out.shape[0] - 1)
        if x1 >= x2 or y1 >= y2:
            continue
        out[y1, x1 : x2 + 1] = colour
        out[y2, x1 : x2 + 1] = colour
        out[y1 : y2 + 1, x1] = colour
        out[y1 : y2 + 1, x2] = colour
    return out


def _load(paths: list[Path]) -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]


def write_figure(sim_dir: Path, shared: Path, out_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with (sim_dir / "galaxies.csv").open(newline="") as handle:
        galaxies = [g for g in csv.DictReader(handle) if int(g["n_boxes"]) > 0][:N_TILES]
    with (sim_dir / "boxes.csv").open(newline="") as handle:
        boxes = list(csv.DictReader(handle))
    sim_full = [np.asarray(Image.open(sim_dir / g["filename"]).convert("RGB")) for g in galaxies]
    lo, hi = CROP_OFFSET, CROP_OFFSET + CROP_SIDE
    sim_crops = [a[lo:hi, lo:hi] for a in sim_full]
    sim_boxed = [
        _draw_boxes(crop, [b for b in boxes if b["local_ids"] == g["local_ids"]])
        for crop, g in zip(sim_crops, galaxies, strict=True)
    ]
    rows = [
        ("simulated (astrodet), 400x400 cutout", sim_full),
        ("real SDSS: Galaxy Zoo 2 (Kaggle), 424x424", _load(_gz2_images(shared))),
        ("simulated, central 200x200 training crop", sim_crops),
        ('real SDSS: Perseus sample, 200x200 at 0.1"/px', _load(_perseus_images(shared))),
        ("simulated crop with its boxes (red: clump, cyan: odd)", sim_boxed),
    ]
    fig, axes = plt.subplots(len(rows), N_TILES, figsize=(2.2 * N_TILES, 2.45 * len(rows)), squeeze=False)
    for r, (title, images) in enumerate(rows):
        for c in range(N_TILES):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                ax.imshow(images[c], interpolation="nearest")
            if c == 0:
                ax.set_title(title, loc="left", fontsize=9)
    fig.suptitle("astrodet simulated clumpy galaxies vs real SDSS cutouts", fontsize=11)
    fig.tight_layout()
    with atomic_open(out_path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="simulated galaxies (default 2000)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--shared", type=Path, default=SHARED, help="shared data folder (default ../shared/data)")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs")
    parser.add_argument("--keep", type=Path, default=None, help="keep the simulated set in this folder")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="astrodet-sim-"))  # the simulator switches its folder in beside it
    work = args.keep or scratch / "sim"
    try:
        summary = simulate_dataset(work, args.n, args.seed, workers=args.workers, write_fits=False)
        print(f"simulated {summary.n_galaxies} galaxies in {summary.seconds:.1f} s")
        table = write_stats(work, args.n, args.seed, args.shared, args.docs / "box_stats.md")
        print(table)
        write_figure(work, args.shared, args.docs / "simulated_vs_real.png")
        print(f"wrote {args.docs / 'box_stats.md'} and {args.docs / 'simulated_vs_real.png'}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
