"""Catalogue converter: the Perseus recipe on the real sample, cuts and class mappings, cutout matching, FITS
cutouts (synthetic and real frames), .npz cutouts (DeepShadows); every bad input gives its reason or a clear error."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.wcs import WCS
from PIL import Image

from astrodet import cli
from astrodet.data.catalog import convert_catalog
from astrodet.data.coco import load_coco, resolve_image_path
from astrodet.data.cutouts import red_percent
from astrodet.data.cuts import Cut, build_mapping, load_config
from astrodet.data.imaging import celestial_wcs, write_fits_image
from astrodet.data.npzcutouts import convert_npz
from astrodet.data.rejects import read_rejects_csv
from astrodet.data.tables import read_pcc
from astrodet.data.wholeimage import load_cutout, read_classification_coco
from astrodet.errors import AstrodetInputError

SCHEMAS = Path(__file__).resolve().parents[2] / "astrodet" / "data" / "schemas"
PERSEUS_CONFIG = SCHEMAS / "perseus_binary.yaml"


def _rejects(summary) -> list[tuple[int, str]]:
    return [(int(r["row"]), r["reason"]) for r in read_rejects_csv(summary.rejects_csv)]


def _csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _png(path: Path, rgb=(90, 90, 90), size: int = 20) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), rgb, dtype=np.uint8)).save(path)


# --- cuts and class mappings ---------------------------------------------------------------------------------------


def test_cuts_parse_compare_and_fail_on_missing_values() -> None:
    cut = Cut.parse("mag_v <= 19.4")
    assert (cut.column, cut.op, cut.value, cut.reason) == ("mag_v", "<=", 19.4, "cut:mag_v<=19.4")
    assert cut.check(19.4) is None and cut.check("19.40") is None
    assert "fails" in cut.check(19.41)
    assert "missing" in cut.check(None) and "missing" in cut.check("N/A") and "missing" in cut.check(float("nan"))
    text = Cut.parse("type == 'GALAXY'")
    assert text.check("GALAXY ") is None and text.check("STAR") is not None
    for bad in ("mag_v", "mag << 3", "mag < abc", "19 < mag"):
        with pytest.raises(AstrodetInputError, match="cut"):
            Cut.parse(bad)


def test_class_mapping_values_where_and_drop() -> None:
    mapping = build_mapping(
        {"label_column": "cls", "classes": {"pos": ["A  b", 1], "neg": ["C"]}, "drop": ["D"]}, "test"
    )
    assert mapping is not None
    assert mapping.classify({"cls": "A b"}) == ("pos", "", "")  # whitespace-normalised
    assert mapping.classify({"cls": 1.0})[0] == "pos" and mapping.classify({"cls": "1"})[0] == "pos"
    assert mapping.classify({"cls": "D"})[1] == "dropped_class"
    assert mapping.classify({"cls": "E"})[1] == "unknown_class"
    assert mapping.classify({"cls": None})[1] == "missing_label"
    where = build_mapping({"classes": {"star": {"where": "cs >= 0.8"}, "galaxy": {"where": "cs < 0.8"}}})
    assert where is not None and where.classify({"cs": 0.9})[0] == "star" and where.classify({"cs": 0.1})[0] == "galaxy"
    assert where.classify({"cs": None})[1] == "unknown_class"
    with pytest.raises(AstrodetInputError, match="both mapped and dropped"):
        build_mapping({"label_column": "c", "classes": {"a": ["x"]}, "drop": ["x"]})
    with pytest.raises(AstrodetInputError, match="label_column"):
        build_mapping({"classes": {"a": ["x"]}})


def test_config_files_refuse_unknown_keys(tmp_path) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("cutz: ['mag < 3']\n")
    with pytest.raises(AstrodetInputError, match="unknown key"):
        load_config(bad)
    assert load_config(PERSEUS_CONFIG)["cuts"] == ["mag_v <= 19.4", "red_percent <= 50"]


# --- the Perseus catalogue -----------------------------------------------------------------------------------------


def test_pcc_text_parser_reports_bad_lines(tmp_path) -> None:
    good = (
        "N/A  PCC-0041  49.2517  41.4381  20.76   N/A   3.08   N/A  25.19  2.49   N/A    N/A   N/A  0.41  N/A   0.56"
        "    0.4   0.49    N/A                                Likely dE/ETGcluster candidate                   "
        "Non-nucleated  http://dc.zah.uni-heidelberg.de/pcc/q/stamp/dlget?ID=PCC-0041"
    )
    bad_number = good.replace("25.19", "25,19")
    short = "N/A  PCC-0042  49.2  41.4  20.1  Cluster or background LTG  http://x"
    path = tmp_path / "pcc.txt"
    path.write_text("\n".join([good, "", bad_number, short]) + "\n")
    cat = read_pcc(path, ["mag_v", *[f"c{i}" for i in range(2, 16)]])
    assert cat.rows_in == 3 and len(cat.rows) == 1 and cat.numbers == [1]
    row = cat.rows[0]
    assert row["pcc_id"] == "PCC-0041" and row["mag_v"] == 20.76 and row["c2"] is None
    assert row["pcc_class"] == "Likely dE/ETGcluster candidate" and row["pcc_note"] == "Non-nucleated"
    assert row["url"].endswith("ID=PCC-0041")
    rejects = [(r.row, r.reason, r.message) for r in cat.ledger]
    assert rejects[0][:2] == (3, "malformed_line") and "c5: '25,19'" in rejects[0][2]
    assert rejects[1][:2] == (4, "malformed_line")


def test_perseus_recipe_on_the_real_sample(tmp_path, shared_data) -> None:
    sample = shared_data / "perseus_sample"
    out = tmp_path / "perseus.json"
    summary = convert_catalog(
        sample / "PCC_cat_sample.txt",
        out,
        config=PERSEUS_CONFIG,
        cutouts=sample / "images",
        copy_images=True,
        pixel_scale=0.1,
        split={"train": 0.5625, "val": 0.1875, "test": 0.25},
    )
    # 301 objects: 3 mergers dropped, 285 fainter than V = 19.4, no red image among the rest
    assert summary.rows_in == 301
    assert summary.rejected == {"cut:mag_v<=19.4": 285, "dropped_class": 3}
    assert summary.categories == {"other": 8, "dE_ETG_candidate": 5}
    assert [n for n in summary.notes if "red_percent" in n] == [
        "selection: cut red_percent <= 50: 13 -> 13 (removed 0)"
    ]
    records = [r for path in summary.outputs.values() for r in read_classification_coco(path)[0]]
    assert len(records) == 13
    data = load_coco(summary.outputs["train"])
    img = data["images"][0]
    ann = data["annotations"][0]
    assert img["file_name"].startswith("perseus_images/PCC-") and img["file_name"].endswith(".jpg")  # real format
    assert img["pixel_scale"] == 0.1 and 49 < img["ra"] < 51 and 41 < img["dec"] < 42
    source = sample / "images" / f"sdss_ra={ann['catalog']['ra']:g}_dec={ann['catalog']['dec']:g}.png"
    assert resolve_image_path(summary.outputs["train"], img["file_name"]).read_bytes() == source.read_bytes()
    assert ann["catalog"]["mag_v"] <= 19.4 and "red_percent" in ann and ann["label_text"]
    assert data["info"]["selection"][2]["step"] == "cut mag_v <= 19.4"
    # the rejects report names the rows of the catalogue
    reasons = {int(r["row"]): r["reason"] for r in read_rejects_csv(summary.rejects_csv)}
    assert reasons[1] == "cut:mag_v<=19.4"  # PCC-0017, V = 23.09
    assert sum(1 for v in reasons.values() if v == "dropped_class") == 3


def test_perseus_without_the_magnitude_cut_balances_classes(tmp_path, shared_data) -> None:
    sample = shared_data / "perseus_sample"
    config = load_config(PERSEUS_CONFIG)
    config["cuts"] = ["red_percent <= 50"]
    summary = convert_catalog(
        sample / "PCC_cat_sample.txt", tmp_path / "p.json", config=config, cutouts=sample / "images", balance=True
    )
    assert summary.categories["other"] == summary.categories["dE_ETG_candidate"] == 27
    assert summary.rejected["balanced_out"] == 298 - 54 - summary.rejected.get("cut:red_percent<=50", 0)
    again = convert_catalog(
        sample / "PCC_cat_sample.txt", tmp_path / "q.json", config=config, cutouts=sample / "images", balance=True
    )
    ids = lambda s: sorted(i["object_id"] for i in load_coco(s.outputs["all"])["images"])  # noqa: E731
    assert ids(summary) == ids(again)


def test_red_percent_counts_strongly_red_pixels(tmp_path) -> None:
    pixels = np.full((10, 10, 3), 128, dtype=np.uint8)
    pixels[:5] = (200, 10, 10)  # red, saturated, bright
    Image.fromarray(pixels).save(tmp_path / "r.png")
    assert red_percent(tmp_path / "r.png") == 50.0


# --- matching existing cutouts -------------------------------------------------------------------------------------


def test_cutouts_matched_by_coordinates_and_every_image_problem(tmp_path) -> None:
    cut = tmp_path / "cutouts"
    _png(cut / "obj_ra=10.0001_dec=-5.png")  # 0.36 arcsec from row 2
    _png(cut / "obj_ra=20.0000_dec=1.0000.png")  # two files within 1 arcsec of row 3
    _png(cut / "obj_ra=20.0001_dec=1.0000.png")
    (cut / "obj_ra=40_dec=4.png").write_bytes(b"garbage")
    rows = [
        ["a", "10.0", "-5.0", "E"],  # row 2: matched by coordinates
        ["b", "20.0", "1.0", "E"],  # row 3: ambiguous_image
        ["c", "30.0", "2.0", "S"],  # row 4: missing_image
        ["d", "10.00005", "-5.0", "S"],  # row 5: shared_image (the file row 2 took)
        ["e", "", "3.0", "S"],  # row 6: missing_coordinates
        ["f", "40.0", "4.0", "S"],  # row 7: unreadable_image
        ["g", "500", "4.0", "S"],  # row 8: bad_coordinates
        ["a", "1", "1", "S"],  # row 9: duplicate_id
        ["h", "10", "-5.0", ""],  # row 10: missing_label
    ]
    table = _csv(tmp_path / "cat.csv", ["id", "ra", "dec", "morph"], rows)
    summary = convert_catalog(
        table, tmp_path / "o.json", cutouts=cut, pattern="obj_ra={ra}_dec={dec}.png", match="coords", label_col="morph"
    )
    assert sorted(_rejects(summary)) == [
        (3, "ambiguous_image"),
        (4, "missing_image"),
        (5, "shared_image"),
        (6, "missing_coordinates"),
        (7, "unreadable_image"),
        (8, "bad_coordinates"),
        (9, "duplicate_id"),
        (10, "missing_label"),
    ]
    data = load_coco(summary.outputs["all"])
    assert len(data["images"]) == 1 and data["images"][0]["file_name"] == "cutouts/obj_ra=10.0001_dec=-5.png"
    # by name: only rows whose text builds an existing file name; here none, and an empty dataset is a failure
    with pytest.raises(AstrodetInputError, match=r"cat\.csv: no image to write \(9 rows in = 0 images out"):
        name_only = {"pattern": "obj_ra={ra}_dec={dec}.png", "match": "name", "label_col": "morph"}
        convert_catalog(table, tmp_path / "n.json", cutouts=cut, **name_only)
    assert not list(tmp_path.glob("n*"))


def test_catalogue_errors_are_clear(tmp_path) -> None:
    table = _csv(tmp_path / "cat.csv", ["id", "ra", "dec", "morph"], [["a", "1", "2", "E"]])
    cut = tmp_path / "c"
    cut.mkdir()
    common = {"cutouts": cut, "pattern": "{id}.png", "label_col": "morph"}
    with pytest.raises(AstrodetInputError, match=r"cut/class column\(s\) \['mag'\]"):
        convert_catalog(table, tmp_path / "o.json", cuts=["mag < 3"], **common)
    with pytest.raises(AstrodetInputError, match="no such catalogue"):
        convert_catalog(tmp_path / "none.csv", tmp_path / "o.json", **common)
    with pytest.raises(AstrodetInputError, match="no classes"):
        convert_catalog(table, tmp_path / "o.json", cutouts=cut, pattern="{id}.png")
    with pytest.raises(AstrodetInputError, match="needs --cutouts"):
        convert_catalog(table, tmp_path / "o.json", cuts=["red_percent < 5"], label_col="morph")
    nocoord = _csv(tmp_path / "n.csv", ["id", "x", "morph"], [["a", "1", "E"]])
    with pytest.raises(AstrodetInputError, match="no RA/Dec columns"):
        convert_catalog(nocoord, tmp_path / "o.json", **common)
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("classes: [a, b]\n")
    args = ["convert", "catalog", "--catalog", str(table), "--config", str(bad_config), "--out", str(tmp_path / "x")]
    assert cli.main([*args, "--cutouts", str(cut), "--pattern", "{id}.png"]) == 2


# --- FITS cutouts --------------------------------------------------------------------------------------------------


@pytest.fixture
def fits_field(tmp_path) -> tuple[list[Path], WCS]:
    wcs = celestial_wcs(150.0, 2.0, 0.5, (200, 200))
    paths = []
    rng = np.random.default_rng(0)
    for k, band in enumerate("gri"):
        data = rng.normal(0.0, 1.0, (200, 200)).astype(np.float32) * (k + 1)
        data[100, 100] = 500.0  # a point source at the field centre (FITS pixel 101, 101)
        path = tmp_path / f"field_{band}.fits"
        write_fits_image(path, data, wcs)
        paths.append(path)
    return paths, wcs


def _sky_catalogue(tmp_path: Path, wcs: WCS) -> Path:
    centre = wcs.pixel_to_world(100, 100)
    edge = wcs.pixel_to_world(5, 100)
    off = wcs.pixel_to_world(400, 400)
    rows = [
        ["src1", f"{centre.ra.deg:.8f}", f"{centre.dec.deg:.8f}", "1"],  # row 2: full cutout
        ["src2", f"{edge.ra.deg:.8f}", f"{edge.dec.deg:.8f}", "0"],  # row 3: partial_cutout
        ["src3", f"{off.ra.deg:.8f}", f"{off.dec.deg:.8f}", "0"],  # row 4: outside_image
    ]
    return _csv(tmp_path / "sources.csv", ["id", "ra", "dec", "is_lsbg"], rows)


def test_fits_cutouts_png_npy_and_fits_outputs(tmp_path, fits_field) -> None:
    paths, wcs = fits_field
    table = _sky_catalogue(tmp_path, wcs)
    png = convert_catalog(
        table, tmp_path / "png" / "c.json", fits=tuple(paths), bands=("g", "r", "i"), size=32, label_col="is_lsbg"
    )
    assert sorted(_rejects(png)) == [(3, "partial_cutout"), (4, "outside_image")]
    data = load_coco(png.outputs["all"])
    img = data["images"][0]
    assert (img["width"], img["height"], img["bands"], img["pixel_scale"]) == (32, 32, ["g", "r", "i"], 0.5)
    rgb = np.asarray(Image.open(resolve_image_path(png.outputs["all"], img["file_name"])))
    assert rgb.shape == (32, 32, 3) and rgb.dtype == np.uint8

    raw = convert_catalog(
        table,
        tmp_path / "npy" / "c.json",
        fits=tuple(paths[:2]),
        size=32,
        scale="none",
        label_col="is_lsbg",
        allow_partial=True,
    )
    assert raw.rows_out == 2 and _rejects(raw) == [(4, "outside_image")]
    records, classes, _ = read_classification_coco(raw.outputs["all"])
    assert classes == ["0", "1"]
    src1 = next(r for r in records if r["object_id"] == "src1")
    array = load_cutout(src1["file_name"])
    assert array.shape == (32, 32, 2) and src1["file_name"].endswith(".npy")
    row = next(r for r in csv.DictReader(open(table)) if r["id"] == "src1")
    position = wcs.world_to_pixel(SkyCoord(float(row["ra"]) * u.deg, float(row["dec"]) * u.deg))
    with fits.open(paths[0]) as hdul:
        expected = Cutout2D(hdul[0].data.astype(np.float32), position, (32, 32), wcs=wcs).data
    assert np.array_equal(array[::-1, :, 0], expected)  # stored north up

    cube = convert_catalog(
        table,
        tmp_path / "fits" / "c.json",
        fits=tuple(paths),
        size=32,
        scale="asinh",
        output_format="fits",
        label_col="is_lsbg",
    )
    cube_img = load_coco(cube.outputs["all"])["images"][0]
    with fits.open(resolve_image_path(cube.outputs["all"], cube_img["file_name"])) as hdul:
        assert hdul[0].data.shape == (3, 32, 32)
        centre = WCS(hdul[0].header).celestial.pixel_to_world(16, 16)
    assert abs(centre.ra.deg - cube_img["ra"]) < 1e-3 and abs(centre.dec.deg - cube_img["dec"]) < 1e-3
    assert 0.0 <= float(load_cutout(resolve_image_path(cube.outputs["all"], cube_img["file_name"])).max()) <= 1.0


def test_real_frames_pixel_and_galactic_positions(tmp_path, shared_data) -> None:
    fields = shared_data / "detection_fields"
    config = {"classes": {"clean": {"where": "FLAGS == 0"}, "flagged": {"where": "FLAGS != 0"}}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eso = convert_catalog(
            fields / "eso_ntt_emmi_field_sextractor.cat",
            tmp_path / "eso" / "c.json",
            config=config,
            fits=(fields / "eso_ntt_emmi_field_image.fits",),
            x_col="X_IMAGE",
            y_col="Y_IMAGE",
            size=16,
            scale="minmax",
        )
    assert eso.rows_in == 65 and eso.rows_out > 30
    assert set(eso.rejected) <= {"partial_cutout"}
    gal_config = {"classes": {"bright": {"where": "mag4_5 < 10"}, "faint": {"where": "mag4_5 >= 10"}}}
    glimpse = convert_catalog(
        fields / "spitzer_irac_glimpse_catalog.vot.xml",
        tmp_path / "glimpse" / "c.json",
        config=gal_config,
        fits=(fields / "spitzer_irac_glimpse_image.fits",),
        frame="galactic",
        size=16,
        scale="asinh",
    )
    assert glimpse.rows_in == 224 and glimpse.rows_out > 100
    img = load_coco(glimpse.outputs["all"])["images"][0]
    assert 270 < img["ra"] < 280  # l ~ 18 deg, b ~ 0 lies at RA ~ 276 deg


# --- npz cutouts ---------------------------------------------------------------------------------------------------


def test_deepshadows_npz_is_written_losslessly(tmp_path, shared_data) -> None:
    npz = shared_data / "deepshadows" / "des_lsbg_vs_artifact_cutouts.npz"
    summary = convert_npz(npz, tmp_path / "ds.json", classes=["artifact", "LSBG"])
    assert summary.rows_in == 10 and summary.rejected == {"unlabelled": 2}
    assert set(summary.outputs) == {"train", "test"}  # the npz's own split
    with np.load(npz) as data:
        x_train, y_train = data["X_train"], data["y_train"]
    records, classes, _ = read_classification_coco(summary.outputs["train"])
    assert classes == ["artifact", "LSBG"] and len(records) == 6
    for r in records:
        j = int(r["object_id"].split("_")[1])
        assert r["label"] == int(y_train[j])
        assert np.array_equal(load_cutout(r["file_name"]) / 255.0, x_train[j].astype(np.float64).astype(np.float32))


def test_synthetic_npz_rejects(tmp_path) -> None:
    x = np.random.default_rng(0).random((3, 8, 8, 4)).astype(np.float32)  # 4 bands, not 8-bit: .npy
    x_bad = x.copy()
    x_bad[1, 0, 0, 0] = np.nan
    np.savez(tmp_path / "c.npz", X_a=x, y_a=np.array([0, 2.5, 1]), X_b=x_bad, y_b=np.array([1, 0, 1]))
    summary = convert_npz(tmp_path / "c.npz", tmp_path / "o.json", split="train=0.5,test=0.5")
    assert _rejects(summary) == [(2, "bad_label"), (5, "not_finite")]
    records = [r for p in summary.outputs.values() for r in read_classification_coco(p)[0]]
    assert len(records) == 4 and all(r["file_name"].endswith(".npy") for r in records)
    a0 = next(r for r in records if r["object_id"] == "a_00000")
    assert np.array_equal(load_cutout(a0["file_name"]), x[0])
    np.savez(tmp_path / "bad.npz", X_a=x, y_a=np.array([0, 1]))
    with pytest.raises(AstrodetInputError, match="2 labels for 3 cutouts"):
        convert_npz(tmp_path / "bad.npz", tmp_path / "p.json")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(AstrodetInputError, match=r"not a readable \.npz"):
        convert_npz(tmp_path / "junk.npz", tmp_path / "p.json")


def test_cli_converts_the_npz(tmp_path, shared_data) -> None:
    npz = shared_data / "deepshadows" / "des_lsbg_vs_artifact_cutouts.npz"
    out = tmp_path / "cli.json"
    assert cli.main(["convert", "catalog", "--npz", str(npz), "--classes", "artifact", "LSBG", "--out", str(out)]) == 0
    info = json.loads((tmp_path / "cli_train.json").read_text())["info"]
    assert info["converter"] == "astrodet.data.npzcutouts" and info["task"] == "classification"
    assert cli.main(["convert", "catalog", "--npz", str(npz), "--out", str(out), "--strict"]) == 1  # X_val unlabelled


def test_skip_cut_leaves_out_a_config_cut(tmp_path, shared_data) -> None:
    sample = shared_data / "perseus_sample"
    common = {"config": PERSEUS_CONFIG, "cutouts": sample / "images"}
    summary = convert_catalog(sample / "PCC_cat_sample.txt", tmp_path / "p.json", skip_cuts=["mag_v"], **common)
    assert (
        "cut:mag_v<=19.4" not in summary.rejected and summary.rows_out == 298 - summary.rejected["cut:red_percent<=50"]
    )
    with pytest.raises(AstrodetInputError, match="no cut on that column"):
        convert_catalog(sample / "PCC_cat_sample.txt", tmp_path / "q.json", skip_cuts=["mag_r"], **common)


def test_missing_sample_data_is_a_clear_error(tmp_path, monkeypatch) -> None:
    from astrodet.data import catalogue

    monkeypatch.setenv("ASTRODET_SHARED_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("ASTRODET_CACHE", str(tmp_path / "cache"))
    with pytest.raises(AstrodetInputError, match="set ASTRODET_SHARED_DATA"):
        catalogue.ensure("perseus")
    with pytest.raises(KeyError, match="unknown astrodet dataset"):
        catalogue.recipe("hubble")


def test_samples_convert_once_into_the_cache(tmp_path, monkeypatch, shared_data) -> None:
    from astrodet.data import catalogue

    monkeypatch.setenv("ASTRODET_CACHE", str(tmp_path / "cache"))
    first = catalogue.ensure("deepshadows")
    assert set(first) == {"train", "test"} and all(p.is_file() for p in first.values())
    ready = catalogue.folder("deepshadows") / "READY.json"
    stamp = ready.stat().st_mtime_ns
    second = catalogue.ensure("deepshadows")
    assert second == first and ready.stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert json.loads(ready.read_text())["summary"].startswith("10 rows in = 8 images out")
