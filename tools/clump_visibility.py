"""How visible labelled clumps are, real against simulated, in the pictures the detector sees.

``python tools/clump_visibility.py --out DIR [--datasets default faint] [--s82-cut "alignment_z <= 3"]``

Why: the simulator's real-sky population (``astrodet.data.simulation.population``, ``faint``) sets its labelling
floors, clump sizes and display stretch from real images. This tool is that measurement, rerunnable: it converts
Mehta et al.'s (2021) Stripe 82 clumps of the galaxies passing ``--s82-cut`` (default: the 24 galaxies whose
alignment is NOT trusted, so that the 21 trusted ones that score the detector in ``tools/real_sky.py`` are never
looked at), shows each galaxy at the training PSF scale as the detector sees it (``astrodet predict --match-psf``'s
crop, resized to the model input), and measures the display statistics of
:mod:`astrodet.evaluation.visibility` at every catalogued clump, at ``--null-draws`` random positions on the same
galaxies (each clump's radius, a random azimuth: the disc without a clump) and at every labelled clump of each named
simulated set's ``--split``. Catalogued clumps whose step exceeds the null's 90th percentile are the ones that
"stand out": what a simulator should label. Writes ``DIR/report.md``, ``DIR/report.json`` and ``DIR/examples.png``
(six pictures per set as the model sees them: the catalogue's or the simulator's clump boxes, 1.5 PSF FWHM wide;
on Stripe 82 the clumps that stand out in the second colour).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from astrodet import cli  # noqa: E402
from astrodet.data import catalogue  # noqa: E402
from astrodet.errors import AstrodetInputError  # noqa: E402
from astrodet.evaluation.markdown import table  # noqa: E402
from astrodet.evaluation.plots import ImagePanel, plot_image_grid, save_small_png  # noqa: E402
from astrodet.evaluation.visibility import (  # noqa: E402
    QUANTILES,
    STATISTICS,
    clump_statistics,
    luminance,
    model_view,
    quantile_table,
    standing_out,
)
from astrodet.inference.scale_match import default_training_psf_px  # noqa: E402
from astrodet.io import atomic_write_json, atomic_write_text  # noqa: E402

DATA = REPO.parent / "shared" / "data"
INPUT_SIZE = 200  # the main job's model input (the simulated 200 px crops, unresized)
CALIBRATION_CUT = "alignment_z <= 3"  # the Stripe 82 galaxies tools/real_sky.py does not score (its trusted: > 3)
BOX_PER_FWHM = 1.5  # drawn box side in PSF FWHMs (Clump Scout's and the converter's)
PANELS_PER_SET = 6
MAX_PNG_BYTES = 400_000


def _convert_s82(data: Path, cut: str, out: Path) -> dict[str, Any]:
    """Mehta et al.'s clumps of the galaxies passing ``cut``, as COCO boxes on the JPEGs (``astrodet convert
    clumps``, as ``tools/real_sky.py`` does), read back."""
    folder = data / "s82_clumps_dev"
    argv = ["convert", "clumps", "--clumps", str(folder / "clumps.csv"), "--images", str(folder / "images")]
    argv += ["--galaxies", str(folder / "galaxies.csv"), "--scale-col", "pixel_scale_fitted"]
    argv += ["--pattern", "objID{id:020d}.jpg", "--out", str(out), "--galaxy-cut", cut]
    if cli.main(argv) != 0:
        raise AstrodetInputError(f"{folder}: astrodet convert clumps failed for --galaxy-cut {cut!r}")
    return json.loads(out.read_text(encoding="utf-8"))


def _by_image(coco: dict[str, Any], category: int | None = None) -> dict[int, list[dict[str, Any]]]:
    grouped: dict[int, list[dict[str, Any]]] = {}
    for ann in coco["annotations"]:
        if category is None or ann["category_id"] == category:
            grouped.setdefault(ann["image_id"], []).append(ann)
    return grouped


def real_rows(coco: dict[str, Any], images_dir: Path, target_psf_px: float, null_draws: int, seed: int = 0):
    """(rows at catalogued clumps, rows at null positions, the first galaxies' pictures with (x, y, step) of their
    clumps and PSF) on the Stripe 82 galaxies, as the model sees them."""
    rng = np.random.default_rng(seed)
    rows, null, panels = [], [], []
    for image in coco["images"]:
        anns = _by_image(coco).get(image["id"], [])
        if not anns:
            continue
        psf = float(np.median([a["psf_fwhm_r_arcsec"] for a in anns]))
        with Image.open(images_dir / Path(image["file_name"]).name) as im:
            seen = model_view(im, float(image["pixel_scale"]), psf, target_psf_px, INPUT_SIZE)
        view, psf_px, centres = luminance(seen.picture), seen.psf_px, []
        for ann in anns:
            x, y, w, h = ann["bbox"]
            cx, cy = seen.position(x + w / 2, y + h / 2)
            if (found := clump_statistics(view, cx, cy, psf_px)) is not None:
                rows.append(found)
                centres.append((cx, cy, found["step"]))
            radius = float(np.hypot(cx - INPUT_SIZE / 2, cy - INPUT_SIZE / 2))
            for angle in rng.uniform(0, 2 * np.pi, size=null_draws):
                px, py = INPUT_SIZE / 2 + radius * np.cos(angle), INPUT_SIZE / 2 + radius * np.sin(angle)
                if (found := clump_statistics(view, px, py, psf_px)) is not None:
                    null.append(found)
        if len(panels) < PANELS_PER_SET:
            panels.append((seen.picture, centres, psf_px, f"S82 {Path(image['file_name']).stem[-8:]}"))
    return rows, null, panels


def simulated_rows(name: str, split: str, limit: int) -> tuple[list[dict[str, float]], list[tuple]]:
    """Rows at the labelled clumps (class ``clump``) of the first ``limit`` images of a named simulated set's split,
    and the first images with clumps, as :func:`real_rows` gives them."""
    paths = catalogue.ensure(name, progress=False)
    if split not in paths:
        raise AstrodetInputError(f"--split: dataset {name!r} has splits {', '.join(paths)}, not {split!r}")
    coco_path = Path(paths[split])
    coco = json.loads(coco_path.read_text(encoding="utf-8"))
    with (coco_path.parent / "simulation" / "galaxies.csv").open(newline="", encoding="utf-8") as handle:
        psf_px = {row["local_ids"]: float(row["psf_fwhm_px"]) for row in csv.DictReader(handle)}
    grouped = _by_image(coco, category=1)
    rows, panels = [], []
    for image in coco["images"][:limit]:
        with Image.open(coco_path.parent / image["file_name"]) as im:
            rgb = np.asarray(im.convert("RGB"))
        view, psf, centres = luminance(rgb), psf_px[str(image["galaxy_id"])], []
        for ann in grouped.get(image["id"], []):
            x, y, w, h = ann["bbox"]
            if (found := clump_statistics(view, x + w / 2, y + h / 2, psf)) is not None:
                rows.append(found)
                centres.append((x + w / 2, y + h / 2, found["step"]))
        if centres and len(panels) < PANELS_PER_SET:
            panels.append((rgb, centres, psf, f"{name} {image['galaxy_id']}"))
    return rows, panels


def write_examples(panels: list[tuple], cut: float, path: Path) -> None:
    """The pictures with their clump boxes (class 0; 1 where the step exceeds ``cut``) as one grid PNG."""
    drawn = []
    for rgb, centres, psf, title in panels:
        half = BOX_PER_FWHM * psf / 2
        boxes = np.array([[x - half, y - half, x + half, y + half] for x, y, _ in centres]).reshape(-1, 4)
        classes = np.array([int(step > cut) for _, _, step in centres], dtype=int)
        drawn.append(ImagePanel(rgb, boxes, classes, np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=int), title))
    names = {0: "labelled clump", 1: f"step above the Stripe 82 null's 90th percentile ({cut:.3f})"}
    with tempfile.TemporaryDirectory() as scratch:
        grid = plot_image_grid(drawn, Path(scratch) / "grid.png", names, ncols=PANELS_PER_SET)
        save_small_png(grid, path, MAX_PNG_BYTES)


def render(report: dict[str, Any]) -> str:
    """The quantile tables as markdown, one row per set and statistic."""
    header = ["set", "clumps", "statistic", *(f"{q}%" for q in QUANTILES)]
    body = []
    for name, entry in report["sets"].items():
        for stat in STATISTICS:
            body.append([name, str(entry["n"]), stat, *(f"{v:.3f}" for v in entry["quantiles"][stat])])
    lines = [
        "# Clump visibility in the model's view: real Stripe 82 clumps against simulated labels",
        "",
        f"Stripe 82 galaxies: `{report['s82_cut']}` ({report['s82_galaxies']} galaxies), Mehta et al. 2021 clumps; "
        f"shown at the training PSF scale ({report['target_psf_px']:.2f} px in a {INPUT_SIZE} px input). "
        f"Null: the disc at {report['null_draws']} random azimuths per clump, at the clump's radius. "
        f"'stand out': catalogued clumps whose step exceeds the null's 90th percentile "
        f"({report['standing_out_cut']:.3f}). Simulated: labelled clumps (class clump) of the `{report['split']}` "
        f"split. Statistics: astrodet.evaluation.visibility.",
        "",
        *table(header, body),
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for report.md and report.json")
    parser.add_argument("--datasets", nargs="*", default=["default", "faint"], help="named simulated sets to measure")
    parser.add_argument("--split", default="val", help="split of the simulated sets (default val: not the test)")
    parser.add_argument("--limit", type=int, default=400, help="images per simulated set (default 400)")
    parser.add_argument("--s82-cut", default=CALIBRATION_CUT, help=f"Stripe 82 galaxies (default {CALIBRATION_CUT!r})")
    parser.add_argument(
        "--psf-px",
        type=float,
        default=None,
        help="PSF FWHM in model pixels to show real galaxies at (default: the default set's training median, built "
        "on first use)",
    )
    parser.add_argument("--null-draws", type=int, default=5, help="null positions per catalogued clump (default 5)")
    parser.add_argument("--data", type=Path, default=DATA, help=f"the shared data folder (default {DATA})")
    args = parser.parse_args(argv)
    if args.limit < 1 or args.null_draws < 1:
        parser.error("--limit and --null-draws: expected positive integers")
    if args.psf_px is not None and not args.psf_px > 0:
        parser.error(f"--psf-px: expected a positive number of pixels, got {args.psf_px}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        target = args.psf_px if args.psf_px is not None else default_training_psf_px(INPUT_SIZE)
        with tempfile.TemporaryDirectory() as scratch:
            coco = _convert_s82(args.data, args.s82_cut, Path(scratch) / "s82.json")
        rows, null, panels = real_rows(coco, args.data / "s82_clumps_dev" / "images", target, args.null_draws)
        if not rows:
            raise AstrodetInputError(f"--s82-cut {args.s82_cut!r}: no catalogued clump inside the pictures")
        visible = standing_out(rows, null)
        cut = float(np.percentile([r["step"] for r in null], 90))
        sets = {"s82 catalogued": rows, "s82 null (disc)": null, "s82 standing out": visible}
        for name in args.datasets:
            sets[f"simulated {name}"], shown = simulated_rows(name, args.split, args.limit)
            panels += shown
    except AstrodetInputError as error:
        print(f"clump_visibility: {error}", file=sys.stderr)
        return 2
    report = {
        "s82_cut": args.s82_cut,
        "s82_galaxies": len(coco["images"]),
        "target_psf_px": target,
        "null_draws": args.null_draws,
        "standing_out_cut": cut,
        "split": args.split,
        "quantiles_percent": list(QUANTILES),
        "sets": {name: {"n": len(r), "quantiles": quantile_table(r)} for name, r in sets.items()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "report.json", report, indent=2)
    atomic_write_text(args.out / "report.md", render(report))
    write_examples(panels, cut, args.out / "examples.png")
    print(render(report))
    print(f"wrote {args.out / 'report.md'}, report.json and examples.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
