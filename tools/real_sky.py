"""The trained clump detector on real SDSS galaxies: Stripe 82 clumps, Galaxy Zoo 2 and Perseus cutouts.

``python tools/real_sky.py --config C --weights W --out DIR [--sets s82 gz2 perseus]``

Why a tool and not a command: one experiment over the real samples in ``../shared/data`` (their tables and framing
are fixed here), built from user commands: ``astrodet convert clumps`` (weak labels), ``astrodet predict``
(``--match-psf`` or ``--crop``) and ``astrodet evaluate``. Inputs are shown at the training scale (``scale_match``):

s82: the PSF at the training size; scored against Mehta et al.'s clumps (21 trusted galaxies; all 45, looser). gz2: no
pixel scale, framed as Clump Scout's frames, so the central half (212 px). perseus: 0.1"/px, SDSS median seeing.

Writes DIR/report.{json,md}, DIR/{s82,gz2,perseus}.png (what the model saw, boxes drawn), DIR/catalogues/,
DIR/truth/ and the evaluation reports in DIR/evaluate/.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from astrodet import cli  # noqa: E402
from astrodet.data import catalogue  # noqa: E402
from astrodet.data.wholeimage import centre_crop_box  # noqa: E402
from astrodet.errors import AstrodetInputError  # noqa: E402
from astrodet.evaluation.bootstrap import DEFAULT_BOOTSTRAP, percentile_interval, resamples  # noqa: E402
from astrodet.evaluation.detection import DEFAULT_SCORE_THRESHOLD  # noqa: E402
from astrodet.evaluation.markdown import fmt, table  # noqa: E402
from astrodet.evaluation.plots import ImagePanel, plot_image_grid, save_small_png  # noqa: E402
from astrodet.inference.model import load_model  # noqa: E402
from astrodet.inference.postprocess import PostProcessing  # noqa: E402
from astrodet.inference.rows import model_input_size  # noqa: E402
from astrodet.inference.runner import PredictOptions, run_predict  # noqa: E402
from astrodet.inference.scale_match import default_training_psf_px, plan_crop  # noqa: E402
from astrodet.io import atomic_path, atomic_write_json, atomic_write_text  # noqa: E402

SETS = ("s82", "gz2", "perseus")
DATA = REPO.parent / "shared" / "data"
GZ2_CROP = 212  # px of the 424 px GZ2 frames: the central half, as the training crop is of Clump Scout's 400 px frames
PERSEUS_PIXEL_SCALE = 0.1  # arcsec/px of the perseus_dev SDSS cutouts (../shared/data/README.md)
# SDSS median r-band seeing, 1.4" (Abazajian et al. 2009, ApJS 182, 543, the DR7 paper); the simulated set's median
# r PSF FWHM is 1.35", drawn from the same distribution
PERSEUS_PSF_ARCSEC = 1.4
# Catalogues keep detections down to Detectron2's SCORE_THRESH_TEST so AP50 sees the whole ranking; completeness,
# purity and detection counts are read at DEFAULT_SCORE_THRESHOLD (Popp et al.'s 0.3, the main-job report's)
CATALOGUE_SCORE = 0.05
# The model's star-forming class: Clump Scout (and the simulator) label foreground stars and red compact sources on a
# disc "odd clumps", which Mehta et al.'s star-forming clumps do not include
CLUMP_CLASS = "clump"
S82_TRUSTED = "alignment_z > 3"  # galaxies whose image scale and centre fit the catalogue (the README's cut)
# IoU 0.5 (the main job's rule); on the trusted set also a sky match within 1", the boxes' half side (0.75 x a 1.3"
# FWHM): a check of how much of the IoU result is the weak labels' position error, not a tuned operating point
S82_MATCHES = (("", "iou:0.5"), ("_sky", "radius:1.0arcsec"))
GRID = 12  # galaxies per figure
MAX_PNG_BYTES = 400_000
COUNT_BINS = ("0", "1", "2", "3", "4", "5+")


@dataclass(frozen=True)
class Galaxy:
    """One real cutout: its file, group (spiral, dE candidate ...), sky centre, pixel scale and PSF (arcsec)."""

    file: str
    group: str
    ra: float | None = None
    dec: float | None = None
    pixel_scale: float | None = None
    psf_fwhm: float | None = None


def _csv_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise AstrodetInputError(f"{path}: no such file (is --data the shared data folder?)")
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _number(row: dict[str, str], column: str, path: Path) -> float:
    try:
        return float(row[column])
    except (KeyError, TypeError, ValueError):
        raise AstrodetInputError(f"{path}: row id {row.get('id')}: column {column!r}: not a number") from None


def s82_galaxies(data: Path) -> list[Galaxy]:
    """The 45 Stripe 82 galaxies (group: trusted / untrusted alignment), PSF = median r FWHM of their clump rows."""
    folder = data / "s82_clumps_dev"
    psf: dict[str, list[float]] = {}
    for row in _csv_rows(folder / "clumps.csv"):
        psf.setdefault(row["id"], []).append(_number(row, "psf_fwhm_r_arcsec", folder / "clumps.csv"))
    galaxies = []
    for row in _csv_rows(folder / "galaxies.csv"):
        path = folder / "galaxies.csv"
        trusted = _number(row, "alignment_z", path) > 3
        galaxies.append(
            Galaxy(
                str(folder / "images" / f"objID{int(row['id']):020d}.jpg"),
                "trusted" if trusted else "untrusted",
                _number(row, "ra", path),
                _number(row, "dec", path),
                _number(row, "pixel_scale_fitted", path),
                statistics.median(psf[row["id"]]) if row["id"] in psf else None,
            )
        )
    return galaxies


def _catalogue_images(name: str) -> tuple[Path, dict[str, Any]]:
    test = Path(catalogue.ensure(name, progress=False)["test"])
    return test, json.loads(test.read_text(encoding="utf-8"))


def gz2_galaxies() -> list[Galaxy]:
    """The gz2 test split's 60 galaxies as their original 424 px JPEGs (the split's PNGs are 180 px crops)."""
    path, coco = _catalogue_images("gz2")
    label = {a["image_id"]: a["label_text"] for a in coco["annotations"]}
    return [Galaxy(str((path.parent / i["source_file_name"]).resolve()), label[i["id"]]) for i in coco["images"]]


def perseus_galaxies() -> list[Galaxy]:
    """The perseus_dev test split's 36 cutouts, grouped by the catalogue's dE/ETG-candidate label."""
    path, coco = _catalogue_images("perseus_dev")
    names = {c["id"]: c["name"] for c in coco["categories"]}
    label = {a["image_id"]: names[a["category_id"]] for a in coco["annotations"]}
    return [
        Galaxy(str(path.parent / i["file_name"]), label[i["id"]], i["ra"], i["dec"], PERSEUS_PIXEL_SCALE,
               PERSEUS_PSF_ARCSEC)
        for i in coco["images"]
    ]  # fmt: skip


def write_meta(galaxies: Sequence[Galaxy], path: Path) -> None:
    """``astrodet predict --meta``: filename, ra, dec, pixel_scale, psf_fwhm (galaxies without a PSF keep it empty
    and are rejected by predict, counted in the rejects table)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["filename", "ra", "dec", "pixel_scale", "psf_fwhm"])
    for g in galaxies:
        writer.writerow([g.file, g.ra, g.dec, g.pixel_scale, "" if g.psf_fwhm is None else g.psf_fwhm])
    atomic_write_text(path, buffer.getvalue())


def predict(model: Any, galaxies: Sequence[Galaxy], out: Path, match_psf: float | None, meta: Path | None) -> Table:
    """``astrodet predict`` over ``galaxies`` (``--match-psf`` with ``--meta``, else ``--crop GZ2_CROP`` as one
    view); returns the catalogue."""
    framing: dict[str, Any] = {"match_psf": match_psf} if match_psf else {"crop": GZ2_CROP, "tile_size": GZ2_CROP}
    options = PredictOptions(
        inputs=[g.file for g in galaxies],
        out=str(out),
        meta=str(meta) if meta else None,
        post=PostProcessing(score_threshold=CATALOGUE_SCORE),
        progress=False,
        **framing,
    )
    options.check()
    print(run_predict(model, options).line())
    return Table.read(str(out))


def convert_s82(data: Path, out: Path, cut: str | None) -> Path:
    """Mehta et al.'s clumps as COCO boxes (1.5 x PSF FWHM) on the JPEGs, through ``astrodet convert clumps``."""
    folder = data / "s82_clumps_dev"
    argv = ["convert", "clumps", "--clumps", str(folder / "clumps.csv"), "--images", str(folder / "images")]
    argv += ["--galaxies", str(folder / "galaxies.csv"), "--scale-col", "pixel_scale_fitted"]
    argv += ["--pattern", "objID{id:020d}.jpg", "--out", str(out)]
    if cut:
        argv += ["--galaxy-cut", cut]
    if cli.main(argv) != 0:
        raise RuntimeError(f"astrodet convert clumps failed for {out}")
    return out


def evaluate(truth: Path, catalogue_path: Path, out: Path, n_bootstrap: int, match: str) -> dict[str, Any]:
    """``astrodet evaluate --match MATCH`` (class-agnostic: the weak labels have no odd clumps); its numbers."""
    argv = ["evaluate", "--truth", str(truth), "--pred", str(catalogue_path), "--out", str(out), "--overwrite"]
    argv += ["--class-agnostic", "--examples", "0", "--bootstrap", str(n_bootstrap), "--match", match]
    if cli.main(argv) != 0:
        raise RuntimeError(f"astrodet evaluate failed for {truth}")
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    boot = report.get("bootstrap") or {}
    keys = ("completeness", "purity", "f1", "n_true", "n_pred", "n_matched", "n_images")
    summary = {key: report[key] for key in keys}
    intervals = {key: boot.get(key) for key in ("completeness", "purity", "AP50")}
    return summary | {"AP50": (report.get("coco") or {}).get("AP50"), "intervals": intervals}


def counts_by_file(
    found: Table, galaxies: Sequence[Galaxy], threshold: float, class_name: str | None = None
) -> dict[str, int]:
    """Detections scoring >= ``threshold`` (of ``class_name`` only, if given) per input file (0 for none)."""
    keep = np.asarray(found["score"]) >= threshold if len(found) else np.zeros(0, dtype=bool)
    if class_name is not None and len(found):
        keep &= np.asarray([str(c) == class_name for c in found["class_name"]])
    kept = found[keep]
    files = [str(f) for f in kept["file"]] if len(kept) else []
    return {g.file: files.count(g.file) for g in galaxies}


def count_summary(counts: Sequence[int], n_bootstrap: int, seed: int = 0) -> dict[str, Any]:
    """Mean detections per galaxy with a bootstrap interval over galaxies, and the distribution (0 .. 5+)."""
    values = np.asarray(counts, dtype=float)
    means = [float(values[idx].mean()) for idx in resamples(len(values), n_bootstrap, seed)]
    histogram = [int(np.count_nonzero(values == k)) for k in range(5)] + [int(np.count_nonzero(values >= 5))]
    return {
        "galaxies": len(values),
        "mean": float(values.mean()) if len(values) else None,
        "mean_interval": percentile_interval(means, 0.95),
        "with_none": int(np.count_nonzero(values == 0)),
        "distribution": dict(zip(COUNT_BINS, histogram, strict=True)),
    }


def crop_side(galaxy: Galaxy, width: int, height: int, target: float | None, input_size: int) -> tuple[int, bool]:
    """The window the model saw (``--match-psf``'s plan, else GZ2's fixed crop) and whether it is the whole image."""
    if target is None:
        return min(GZ2_CROP, width, height), GZ2_CROP >= min(width, height)
    plan = plan_crop(width, height, float(galaxy.pixel_scale), float(galaxy.psf_fwhm), target, input_size)
    return plan.side, plan.whole_image


def crop_stats(galaxies: Sequence[Galaxy], target: float, input_size: int) -> dict[str, Any]:
    """How the scale rule cropped: sides (px) and how many inputs were used whole (the rule wanted more)."""
    sides, whole = [], 0
    for g in galaxies:
        with Image.open(g.file) as im:
            side, is_whole = crop_side(g, im.width, im.height, target, input_size)
        sides.append(side)
        whole += is_whole
    return {"n": len(sides), "whole_image": whole, "side_min": min(sides), "side_median": statistics.median(sides),
            "side_max": max(sides)}  # fmt: skip


def panel(galaxy: Galaxy, found: Table, truth: np.ndarray, target: float | None, input_size: int) -> ImagePanel:
    """The crop as the model saw it (resized to its input), predictions (class id + 1) and truths (class 0)."""
    with Image.open(galaxy.file) as im:
        rgb = im.convert("RGB")
    side, _ = crop_side(galaxy, rgb.width, rgb.height, target, input_size)
    left, top, right, bottom = centre_crop_box(rgb.width, rgb.height, side)
    view = np.asarray(rgb.crop((left, top, right, bottom)).resize((input_size, input_size), Image.BILINEAR))
    scale, shift = input_size / side, np.array([left, top, left, top], dtype=float)
    rows = found[np.asarray([str(f) == galaxy.file for f in found["file"]], dtype=bool)] if len(found) else found
    boxes = np.stack([np.asarray(rows[c], dtype=float) for c in ("x_min", "y_min", "x_max", "y_max")], axis=1)
    boxes, truth = boxes.reshape(-1, 4), truth.reshape(-1, 4)
    title = f"{Path(galaxy.file).stem[-8:]} {galaxy.group} ({side} px)"
    scores = np.asarray(rows["score"] if len(rows) else [], dtype=float)
    classes = np.asarray(rows["class_id"] if len(rows) else [], dtype=int) + 1
    truth_classes = np.zeros(len(truth), dtype=int)
    return ImagePanel(view, (truth - shift) * scale, truth_classes, (boxes - shift) * scale, scores, classes, title)


def write_grid(
    panels: Sequence[ImagePanel], path: Path, classes: Sequence[str], threshold: float, truth: str | None
) -> None:
    """The grid (astrodet's report grid; ``truth`` names the catalogue boxes: class 0 in every figure, so the
    colours agree), re-encoded with a 256-colour palette to keep the PNG small."""
    names = {0: truth or "catalogue: none for this set"} | {k + 1: f"predicted {c}" for k, c in enumerate(classes)}
    with tempfile.TemporaryDirectory() as scratch:
        drawn = plot_image_grid(panels, Path(scratch) / "grid.png", names, min_score=threshold, ncols=6)
        save_small_png(drawn, path, MAX_PNG_BYTES)


def _truth_boxes(coco_path: Path) -> dict[str, np.ndarray]:
    coco = json.loads(coco_path.read_text(encoding="utf-8"))
    by_id = {i["id"]: str((coco_path.parent / i["file_name"]).resolve()) for i in coco["images"]}
    boxes: dict[str, list[list[float]]] = {f: [] for f in by_id.values()}
    for a in coco["annotations"]:
        x, y, w, h = a["bbox"]
        boxes[by_id[a["image_id"]]].append([x, y, x + w, y + h])
    return {f: np.asarray(b, dtype=float).reshape(-1, 4) for f, b in boxes.items()}


def _first_per_group(galaxies: Sequence[Galaxy], n: int | None) -> list[Galaxy]:
    """Up to ``n`` galaxies (None: all), alternating between groups in order, so a figure shows each group."""
    if n is None:
        return list(galaxies)
    groups: dict[str, list[Galaxy]] = {}
    for g in galaxies:
        groups.setdefault(g.group, []).append(g)
    picked: list[Galaxy] = []
    for k in range(n):
        for members in groups.values():
            if k < len(members) and len(picked) < n:
                picked.append(members[k])
    return picked


def _truth_for(coco_path: Path, galaxies: Sequence[Galaxy]) -> Path:
    """The converted truth restricted to the galaxies predicted on (all of them unless ``--limit``)."""
    coco = json.loads(coco_path.read_text(encoding="utf-8"))
    wanted = {str(Path(g.file).resolve()) for g in galaxies}
    images = [i for i in coco["images"] if str((coco_path.parent / i["file_name"]).resolve()) in wanted]
    if len(images) == len(coco["images"]):
        return coco_path
    ids = {i["id"] for i in images}
    coco.update(images=images, annotations=[a for a in coco["annotations"] if a["image_id"] in ids])
    subset = coco_path.with_name(coco_path.stem + "_predicted.json")
    atomic_write_json(subset, coco)
    return subset


@dataclass
class Run:
    """One invocation: the model, where results go, the scale rule's target and the run's settings."""

    model: Any
    out: Path
    data: Path
    target: float
    input_size: int
    n_bootstrap: int
    limit: int | None
    threshold: float = DEFAULT_SCORE_THRESHOLD

    def grid(self, name: str, galaxies: Sequence[Galaxy], found: Table, target: float | None,
             truths: dict[str, np.ndarray] | None = None) -> str:  # fmt: skip
        empty, chosen = np.zeros((0, 4)), _first_per_group(galaxies, GRID)
        panels = [panel(g, found, (truths or {}).get(str(Path(g.file).resolve()), empty), target, self.input_size)
                  for g in chosen]  # fmt: skip
        truth = "catalogue (Mehta et al. 2021)" if truths else None
        write_grid(panels, self.out / f"{name}.png", self.model.classes, self.threshold, truth)
        return f"{name}.png"

    def by_group(self, galaxies: Sequence[Galaxy], found: Table) -> dict[str, Any]:
        """Per group (and ``all``): every detection, and the star-forming ``clump`` class alone (``clump_*``)."""
        counts = counts_by_file(found, galaxies, self.threshold)
        clumps = counts_by_file(found, galaxies, self.threshold, CLUMP_CLASS)
        groups = {"all": list(galaxies)} | {g.group: [] for g in galaxies}
        for g in galaxies:
            groups[g.group].append(g)
        out = {}
        for name, members in groups.items():
            only = count_summary([clumps[g.file] for g in members], self.n_bootstrap)
            out[name] = count_summary([counts[g.file] for g in members], self.n_bootstrap) | {
                "clump_mean": only["mean"], "clump_mean_interval": only["mean_interval"]}  # fmt: skip
        return out

    def s82(self) -> dict[str, Any]:
        galaxies = _first_per_group(sorted(s82_galaxies(self.data), key=lambda g: g.group != "trusted"), self.limit)
        meta = self.out / "catalogues" / "s82_meta.csv"
        write_meta(galaxies, meta)
        catalogues = {"": self.out / "catalogues" / "s82.ecsv", "_clump": self.out / "catalogues" / "s82_clump.ecsv"}
        found = predict(self.model, galaxies, catalogues[""], self.target, meta)
        clump_rows = found[np.asarray([str(c) == CLUMP_CLASS for c in found["class_name"]], dtype=bool)]
        with atomic_path(catalogues["_clump"]) as scratch:  # the provenance (meta) travels in the ECSV header
            clump_rows.write(scratch, format="ascii.ecsv", overwrite=True)
        result: dict[str, Any] = {"crops": crop_stats(galaxies, self.target, self.input_size)}
        truths: dict[str, np.ndarray] = {}
        for name, cut in (("trusted", S82_TRUSTED), ("all", None)):
            converted = convert_s82(self.data, self.out / "truth" / f"s82_{name}" / "clumps.json", cut)
            truth = _truth_for(converted, galaxies)
            truths |= _truth_boxes(truth)
            for (kind, path), (rule, match) in product(catalogues.items(), S82_MATCHES[: 1 + (name == "trusted")]):
                key = f"{name}{kind}{rule}"  # trusted, trusted_clump, trusted_sky, ... all_clump
                result[key] = evaluate(truth, path, self.out / "evaluate" / f"s82_{key}", self.n_bootstrap, match)
        result["detections_per_galaxy"] = self.by_group(galaxies, found)
        trusted = [g for g in galaxies if g.group == "trusted"]
        result["figure"] = self.grid("s82", trusted or galaxies, found, self.target, truths)
        return result

    def gz2(self) -> dict[str, Any]:
        galaxies = _first_per_group(gz2_galaxies(), self.limit)
        found = predict(self.model, galaxies, self.out / "catalogues" / "gz2.ecsv", None, None)
        return {"crop": GZ2_CROP, "detections_per_galaxy": self.by_group(galaxies, found),
                "figure": self.grid("gz2", galaxies, found, None)}  # fmt: skip

    def perseus(self) -> dict[str, Any]:
        galaxies = _first_per_group(perseus_galaxies(), self.limit)
        meta = self.out / "catalogues" / "perseus_meta.csv"
        write_meta(galaxies, meta)
        found = predict(self.model, galaxies, self.out / "catalogues" / "perseus.ecsv", self.target, meta)
        return {"pixel_scale": PERSEUS_PIXEL_SCALE, "psf_fwhm_arcsec": PERSEUS_PSF_ARCSEC,
                "crops": crop_stats(galaxies, self.target, self.input_size),
                "detections_per_galaxy": self.by_group(galaxies, found),
                "figure": self.grid("perseus", galaxies, found, self.target)}  # fmt: skip


def _interval(value: Any, ci: Sequence[float] | None) -> str:
    return fmt(value) + (f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else "")


def render(report: dict[str, Any]) -> str:
    """report.md: the rule, the scores with their intervals, detections per galaxy, the figures."""
    m = report["model"]
    lines = [
        "# The detector on real sky",
        "",
        f"Model: `{m['config']}` with `{m['weights']}` (input {m['input_size']} px). Scale rule: each crop is resized "
        f"so the PSF FWHM spans {m['training_psf_px']:.2f} model pixels, the training split's median. Score "
        f"threshold {m['score_threshold']:g} (Popp et al.'s, the main-job report's); catalogues keep >= "
        f"{CATALOGUE_SCORE:g} for AP50. Intervals: 95% bootstrap over galaxies ({report['n_bootstrap']} resamples).",
        "",
    ]
    s82 = report.get("s82")
    if s82:
        keys = [f"{n}{k}{r}" for n in ("trusted", "all") for r, _ in S82_MATCHES for k in ("", "_clump")]
        rows = [
            [key.split("_")[0], "clump only" if "_clump" in key else "any", "sky 1\"" if "_sky" in key else "IoU 0.5",
             s82[key]["n_images"], s82[key]["n_true"], s82[key]["n_pred"]]
            + [_interval(s82[key][m], s82[key]["intervals"][m]) for m in ("completeness", "purity", "AP50")]
            for key in keys if key in s82
        ]  # fmt: skip
        c = s82["crops"]
        lines += ["## Stripe 82 clumps (Mehta et al. 2021, weak labels)", ""]
        header = ["galaxies", "class", "match", "images", "clumps", "detections", "completeness", "purity", "AP50"]
        lines += table(header, rows)
        lines += ["", f"Crops: {c['side_min']}-{c['side_max']} px (median {c['side_median']}); "
                  f"{c['whole_image']} of {c['n']} used whole. Class-agnostic matching.", ""]  # fmt: skip
    for name, title in (("s82", "Stripe 82"), ("gz2", "Galaxy Zoo 2 test"), ("perseus", "Perseus dev test")):
        part = report.get(name)
        if not part:
            continue
        rows = [
            [group, s["galaxies"], _interval(s["mean"], s["mean_interval"]), s["with_none"],
             " / ".join(str(s["distribution"][b]) for b in COUNT_BINS),
             _interval(s["clump_mean"], s["clump_mean_interval"])]
            for group, s in part["detections_per_galaxy"].items()
        ]  # fmt: skip
        lines += [f"## {title}: detections per galaxy (score >= {m['score_threshold']:g})", ""]
        lines += table(["group", "galaxies", "mean", "none", "0 / 1 / 2 / 3 / 4 / 5+", "clump class: mean"], rows)
        lines += ["", f"![{name}]({part['figure']})", ""]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the detector's config (Detectron2 YAML or mmdet .py)")
    parser.add_argument("--weights", required=True, help="its trained weights (.pth)")
    parser.add_argument("--out", required=True, type=Path, help="results folder")
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS), help="which real samples")
    parser.add_argument("--data", type=Path, default=DATA, help=f"the shared data folder (default {DATA})")
    parser.add_argument("--psf-px", type=float, help="training PSF FWHM in model pixels (default: the default set's)")
    parser.add_argument("--bootstrap", type=int, default=DEFAULT_BOOTSTRAP, help="bootstrap resamples")
    parser.add_argument("--limit", type=int, help="at most N galaxies per set (a quick look; not for the numbers)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda ...")
    args = parser.parse_args(argv)
    psf_given_ok = args.psf_px is None or args.psf_px > 0
    for bad, message in ((args.limit is not None and args.limit < 1, f"--limit: expected >= 1, got {args.limit}"),
                         (not psf_given_ok, f"--psf-px: expected > 0, got {args.psf_px}"),
                         (args.bootstrap < 0, f"--bootstrap: expected >= 0, got {args.bootstrap}")):  # fmt: skip
        if bad:
            parser.error(message)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if not args.data.is_dir():
            raise AstrodetInputError(f"--data {args.data}: no such folder")
        model = load_model(args.config, args.weights, device=args.device)
        input_size = model_input_size(model)
        if input_size is None:
            raise AstrodetInputError(f"--config {args.config}: the model has no fixed input size to match scales at")
        target = args.psf_px or default_training_psf_px(input_size)
        run = Run(model, args.out, args.data, target, input_size, args.bootstrap, args.limit)
        report: dict[str, Any] = {
            "model": {"config": str(args.config), "weights": str(args.weights), "input_size": input_size,
                      "training_psf_px": target, "score_threshold": run.threshold},
            "n_bootstrap": args.bootstrap,
            "limit": args.limit,
        }
        for name in args.sets:
            report[name] = getattr(run, name)()
    except AstrodetInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    atomic_write_json(args.out / "report.json", report, indent=2)
    atomic_write_text(args.out / "report.md", render(report) + "\n")
    print(f"wrote {args.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
