"""``astrodet evaluate`` on a simulated tiny set: pixel and sky reports of the same predictions agree (the issue's
consistency check), the numbers equal the core API's, every catalogue format reads the same, bad input exits 2."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table

from astrodet.cli import main
from astrodet.data.clumpscout import convert_clumpscout
from astrodet.data.imaging import celestial_wcs, png_to_fits_pixel
from astrodet.data.simulation import simulate_dataset
from astrodet.evaluation.coco_params import run_coco_bbox
from astrodet.evaluation.detection import evaluate_coco_detections

N_GALAXIES = 20
FALSE_POSITIVE = (20.0, 20.0, 30.0, 30.0)  # a corner box, far from every simulated clump


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 simulated galaxies, converted to COCO in the whole-cutout frame and in Popp et al.'s crop frame."""
    root = tmp_path_factory.mktemp("sim")
    simulate_dataset(root, N_GALAXIES, seed=3, workers=1, progress=False, write_fits=False)
    for frame in ("full", "crop"):
        convert_clumpscout(
            root / "boxes.csv", root / f"{frame}.json", images_dir=root / "images",
            galaxies_csv=root / "galaxies.csv", frame=frame,
        )  # fmt: skip
    return root


def _sky(image: dict[str, Any], x: float, y: float) -> tuple[float, float]:
    """RA/Dec of a pixel of a cutout centred on the image's ra/dec at its pixel scale (north up, east left)."""
    wcs = celestial_wcs(image["ra"], image["dec"], image["pixel_scale"], (image["height"], image["width"]))
    ra, dec = wcs.pixel_to_world_values(*png_to_fits_pixel(x, y, image["height"]))
    return float(ra) % 360, float(dec)


def _catalogue(coco_path: Path, seed: int = 0, jitter: float = 0.6, p_miss: float = 0.15) -> Table:
    """Predictions as a predict catalogue: truth boxes shifted by ~``jitter`` px, some missed, some false positives."""
    gt = json.loads(coco_path.read_text())
    names = {c["id"]: c["name"] for c in gt["categories"]}
    rng = np.random.default_rng(seed)
    rows = []
    for index, image in enumerate(gt["images"]):
        boxes = []
        for ann in (a for a in gt["annotations"] if a["image_id"] == image["id"]):
            if rng.random() < p_miss:
                continue
            x, y, w, h = ann["bbox"]
            dx, dy = rng.normal(0, jitter, 2)
            boxes.append((x + dx, y + dy, x + w + dx, y + h + dy, names[ann["category_id"]]))
        if rng.random() < 0.5:
            boxes.append((*FALSE_POSITIVE, "clump"))
        for k, (x0, y0, x1, y1, name) in enumerate(boxes):
            ra, dec = _sky(image, (x0 + x1) / 2, (y0 + y1) / 2)
            rows.append({
                "file": str(coco_path.parent / image["file_name"]), "image_index": index, "object_index": k,
                "class_name": name, "class_id": 0 if name == "clump" else 1, "score": float(rng.uniform(0.35, 1)),
                "x_min": x0, "y_min": y0, "x_max": x1, "y_max": y1, "x": (x0 + x1) / 2, "y": (y0 + y1) / 2,
                "ra": ra, "dec": dec, "size_arcsec": float(np.sqrt((x1 - x0) * (y1 - y0)) * image["pixel_scale"]),
            })  # fmt: skip
    table = Table(rows=rows, names=list(rows[0]))
    table.meta.update({"config": "configs/frcnn_zoobot.yaml", "framework": "detectron2", "score_threshold": 0.3})
    table.meta.update({"inputs": len(gt["images"]), "rejected": 0})
    return table


def _evaluate(*args: Any) -> int:
    return main(["evaluate", *[str(a) for a in args]])


def _report(out: Path) -> dict[str, Any]:
    return json.loads((out / "report.json").read_text())


def _results(table: Table, coco_path: Path) -> list[dict[str, Any]]:
    """The same predictions as COCO results of the truth's images."""
    gt = json.loads(coco_path.read_text())
    ids = {str(coco_path.parent / img["file_name"]): img["id"] for img in gt["images"]}
    cats = {c["name"]: c["id"] for c in gt["categories"]}
    return [
        {"image_id": ids[r["file"]], "category_id": cats[r["class_name"]], "score": float(r["score"]),
         "bbox": [r["x_min"], r["y_min"], r["x_max"] - r["x_min"], r["y_max"] - r["y_min"]]}
        for r in table
    ]  # fmt: skip


def test_pixel_report_equals_the_core_api(sim: Path, tmp_path: Path) -> None:
    table = _catalogue(sim / "full.json")
    table.write(tmp_path / "pred.ecsv")
    assert _evaluate("--truth", sim / "full.json", "--pred", tmp_path / "pred.ecsv", "--out", tmp_path / "r") == 0
    report = _report(tmp_path / "r")
    gt, results = json.loads((sim / "full.json").read_text()), _results(table, sim / "full.json")
    detection = evaluate_coco_detections(gt, results, max_detections=100)
    for key in ("completeness", "purity", "f1", "n_true", "n_pred", "n_matched", "per_class", "curves", "bins"):
        assert report[key] == detection[key], key
    coco = run_coco_bbox(gt, results)
    for key in ("AP", "AP50", "per_class", "params"):
        assert report["coco"][key] == coco[key], key
    boot = report["bootstrap"]
    assert boot["unit"] == "image" and boot["n_resamples"] == 1000
    assert boot["AP50"][0] <= report["coco"]["AP50"] <= boot["AP50"][1]
    assert report["meta"]["truth_kind"] == "coco" and report["meta"]["config"] == "configs/frcnn_zoobot.yaml"
    assert set(report["plots"]) == {"pr_curve", "threshold_curves", "bins", "examples"}
    for name in report["plots"].values():
        assert (tmp_path / "r" / name).stat().st_size > 0
    assert "[brackets]: 95 % bootstrap intervals" in (tmp_path / "r" / "report.md").read_text()


def test_sky_against_clumps_csv_equals_the_pixel_report(sim: Path, tmp_path: Path) -> None:
    """The issue's check: on the same images, radius matching against clumps.csv gives the pixel report's numbers."""
    _catalogue(sim / "full.json", seed=1).write(tmp_path / "pred.ecsv")
    pred = tmp_path / "pred.ecsv"
    assert _evaluate("--truth", sim / "full.json", "--pred", pred, "--out", tmp_path / "pixel", "--bootstrap", 0) == 0
    sky_args = ("--truth", sim / "clumps.csv", "--pred", pred, "--match", "radius:1.5arcsec", "--bootstrap", 50)
    assert _evaluate(*sky_args, "--out", tmp_path / "sky") == 0
    pixel, sky = _report(tmp_path / "pixel"), _report(tmp_path / "sky")
    assert sky["n_true"] == pixel["n_true"] and sky["n_images"] == pixel["n_images"] == N_GALAXIES
    for key in ("completeness", "purity", "f1"):
        assert abs(sky[key] - pixel[key]) <= 0.01, key
    for name, row in pixel["per_class"].items():
        assert abs(sky["per_class"][name]["completeness"] - row["completeness"]) <= 0.01
    assert sky["matching"]["kind"] == "sky" and sky["bootstrap"]["unit"] == "object" and sky["coco"] is None
    assert set(sky["bins"]) == {"purity_by_size", "completeness_by_mag_r"}  # clumps.csv: no boxes, mag_r


def test_catalogue_positions_agree_with_the_simulator_sky(sim: Path) -> None:
    """The pixel -> sky convention (TAN about the cutout centre) reproduces clumps.csv's positions from its WCS."""
    table = _catalogue(sim / "full.json", jitter=0.0, p_miss=0.0)
    table = table[table["x_min"] != FALSE_POSITIVE[0]]
    truth = Table.read(sim / "clumps.csv")
    found = SkyCoord(table["ra"], table["dec"], unit="deg")
    _, sep, _ = found.match_to_catalog_sky(SkyCoord(truth["ra"], truth["dec"], unit="deg"))
    assert len(table) == len(truth) and sep.arcsec.max() < 0.01


def test_crop_frame_counts_the_clumps_outside_its_margin_as_missed(sim: Path, tmp_path: Path) -> None:
    """The documented rule difference: clumps.csv lists every clump of the cutout, the crop frame only those inside
    its margin, so against clumps.csv the predictions on crops miss exactly the rejected ones."""
    _catalogue(sim / "crop.json", seed=2).write(tmp_path / "pred.ecsv")
    pred = tmp_path / "pred.ecsv"
    assert _evaluate("--truth", sim / "crop.json", "--pred", pred, "--out", tmp_path / "pixel", "--bootstrap", 0) == 0
    sky_args = ("--truth", sim / "clumps.csv", "--pred", pred, "--match", "radius:1.5arcsec", "--bootstrap", 0)
    assert _evaluate(*sky_args, "--out", tmp_path / "sky") == 0
    pixel, sky = _report(tmp_path / "pixel"), _report(tmp_path / "sky")
    rejected = json.loads((sim / "crop.json").read_text())["info"]["conversion"]["rejected"]["outside_crop_margin"]
    assert sky["n_true"] == pixel["n_true"] + rejected and rejected > 0
    assert (sky["n_matched"], sky["n_pred"]) == (pixel["n_matched"], pixel["n_pred"])


@pytest.mark.parametrize("suffix", [".fits", ".csv", ".parquet"])
def test_every_catalogue_format_reads_the_same(sim: Path, tmp_path: Path, suffix: str) -> None:
    table = _catalogue(sim / "full.json", seed=3)
    table.write(tmp_path / "pred.ecsv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FITS: HIERARCH cards for the long meta keys
        table.write(tmp_path / f"pred{suffix}")
    numbers = []
    for name in ("pred.ecsv", f"pred{suffix}"):
        out = tmp_path / name.replace(".", "_")
        args = ("--truth", sim / "clumps.csv", "--pred", tmp_path / name, "--match", "sky:1", "--out", out)
        assert _evaluate(*args, "--bootstrap", 20) == 0
        numbers.append({k: _report(out)[k] for k in ("completeness", "purity", "per_class", "bootstrap")})
    assert numbers[0] == numbers[1]


def test_coco_results_and_the_catalogue_give_the_same_report(sim: Path, tmp_path: Path) -> None:
    table = _catalogue(sim / "full.json", seed=4)
    table.write(tmp_path / "pred.ecsv")
    (tmp_path / "results.json").write_text(json.dumps(_results(table, sim / "full.json")))
    reports = []
    for name in ("pred.ecsv", "results.json"):
        out = tmp_path / name.replace(".", "_")
        args = ("--truth", sim / "full.json", "--pred", tmp_path / name, "--match", "radius:1.2arcsec", "--out", out)
        assert _evaluate(*args, "--bootstrap", 20, "--examples", 0) == 0
        reports.append(_report(out))
    for key in ("completeness", "purity", "per_class", "curves", "coco", "bootstrap"):
        assert reports[0][key] == reports[1][key], key


def test_rows_link_to_images_by_file_name_when_paths_differ(sim: Path, tmp_path: Path, capsys) -> None:
    table = _catalogue(sim / "full.json", seed=5)
    table["file"] = [Path(f).name for f in table["file"]]
    table.write(tmp_path / "pred.ecsv")
    assert _evaluate("--truth", sim / "full.json", "--pred", tmp_path / "pred.ecsv", "--out", tmp_path / "r") == 0
    assert "linked to the truth by file name" in capsys.readouterr().out


def _bad_catalogue(tmp: Path, change: str) -> Path:
    table = Table({"file": ["a.png"], "class_name": ["clump"], "score": [0.9], "x_min": [1.0], "y_min": [1.0],
                   "x_max": [5.0], "y_max": [5.0], "ra": [np.nan], "dec": [np.nan]})  # fmt: skip
    if change == "no_score":
        del table["score"]
    if change == "classification":
        table = Table({"file": ["a.png"], "class_name": ["clump"], "score": [0.9], "p_clump": [0.9]})
    path = tmp / f"{change}.ecsv"
    table.write(path)
    return path


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_truth", "no such COCO file"),
        ("missing_pred", "no such catalogue"),
        ("no_score", "no 'score' column"),
        ("classification", "classification catalogue"),
        ("no_match_rule", "give --match radius"),
        ("pixel_rule_on_table", "match on the sky"),
        ("results_on_table", "COCO results name images of a COCO truth"),
        ("no_sky_positions", "has no RA/Dec"),
        ("bad_unit", "with a unit"),
        ("wrong_class_names", "is a class of the truth"),
        ("no_image_in_truth", "is an image of"),
        ("no_ra_column", "no RA column"),
    ],
)
def test_bad_input_exits_2_with_a_one_line_message(sim: Path, tmp_path: Path, capsys, case: str, message: str) -> None:
    good = tmp_path / "good.ecsv"
    _catalogue(sim / "full.json").write(good)
    renamed = _catalogue(sim / "full.json")
    renamed["class_name"] = ["galaxy"] * len(renamed)
    renamed.write(tmp_path / "renamed.ecsv")
    Table({"dec": [1.0], "label": [1]}).write(tmp_path / "no_ra.csv")
    table, coco, sky = sim / "clumps.csv", sim / "full.json", ("--match", "radius:1arcsec")
    no_sky = _bad_catalogue(tmp_path, "nan")
    args = {
        "missing_truth": ("--truth", tmp_path / "none.json", "--pred", good),
        "missing_pred": ("--truth", coco, "--pred", tmp_path / "none.fits"),
        "no_score": ("--truth", coco, "--pred", _bad_catalogue(tmp_path, "no_score")),
        "classification": ("--truth", coco, "--pred", _bad_catalogue(tmp_path, "classification")),
        "no_match_rule": ("--truth", table, "--pred", good),
        "pixel_rule_on_table": ("--truth", table, "--pred", good, "--match", "iou:0.5"),
        "results_on_table": ("--truth", table, "--pred", _write_results(tmp_path), *sky),
        "no_sky_positions": ("--truth", table, "--pred", no_sky, *sky),
        "bad_unit": ("--truth", table, "--pred", good, "--match", "radius:1.5"),
        "wrong_class_names": ("--truth", coco, "--pred", tmp_path / "renamed.ecsv"),
        "no_image_in_truth": ("--truth", coco, "--pred", no_sky),
        "no_ra_column": ("--truth", tmp_path / "no_ra.csv", "--pred", good, *sky),
    }[case]
    assert _evaluate(*args, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("astrodet evaluate: error: ") and message in err and "\n" not in err
    assert not (tmp_path / "out" / "report.json").exists()


def _write_results(tmp: Path) -> Path:
    path = tmp / "results.json"
    path.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], "score": 0.9}]))
    return path


def test_class_agnostic_accepts_other_class_names(sim: Path, tmp_path: Path) -> None:
    table = _catalogue(sim / "full.json", seed=6)
    table["class_name"] = ["object"] * len(table)
    table.write(tmp_path / "pred.ecsv")
    args = ("--truth", sim / "full.json", "--pred", tmp_path / "pred.ecsv", "--class-agnostic")
    assert _evaluate(*args, "--out", tmp_path / "r") == 0
    report = _report(tmp_path / "r")
    assert report["matching"]["class_aware"] is False and report["n_matched"] > 0
    assert report["confusion"]["clump"]["object"] > 0


def test_an_existing_report_is_kept_unless_overwrite(sim: Path, tmp_path: Path, capsys) -> None:
    _catalogue(sim / "full.json").write(tmp_path / "pred.ecsv")
    args = ("--truth", sim / "full.json", "--pred", tmp_path / "pred.ecsv", "--out", tmp_path / "r", "--bootstrap", 0)
    assert _evaluate(*args) == 0
    before = (tmp_path / "r" / "report.json").read_bytes()
    assert _evaluate(*args, "--score-threshold", 0.8) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "r" / "report.json").read_bytes() == before
    assert _evaluate(*args, "--score-threshold", 0.8, "--overwrite") == 0
    assert _report(tmp_path / "r")["score_threshold"] == 0.8
