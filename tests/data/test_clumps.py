"""``astrodet convert clumps``: RA/Dec clump catalogues give the simulator's own boxes (round trip against
``convert clumpscout``), in the FITS array frame or the PNG frame, and real Stripe 82 clumps land where they should."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from astrodet.data import skyboxes
from astrodet.data.clumps import convert_clumps
from astrodet.data.clumpscout import convert_clumpscout
from astrodet.data.coco import load_coco, resolve_image_path
from astrodet.data.imaging import celestial_wcs, png_to_fits_pixel
from astrodet.data.simulation import BOX_SIDE_PER_FWHM, SDSS_PIXEL, simulate_dataset
from astrodet.data.skyboxes import cutout_wcs, parse_angle, sky_to_coco

N_GALAXIES = 12


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    """12 simulated galaxies with per-band cutout FITS (the PNG's own frame) and native FITS."""
    folder = tmp_path_factory.mktemp("sim") / "sim"
    simulate_dataset(folder, N_GALAXIES, seed=5, workers=1, progress=False, write_cutout_fits=True)
    return folder


@pytest.fixture(scope="module")
def clumpscout_boxes(sim, tmp_path_factory) -> dict[str, list[tuple]]:
    """The reference: ``convert clumpscout`` of the simulator's boxes.csv, whole 400x400 frame, every galaxy."""
    out = tmp_path_factory.mktemp("cs") / "cs.json"
    summary = convert_clumpscout(
        sim / "boxes.csv", out, images_dir=sim / "images", frame="full", galaxies_csv=sim / "galaxies.csv"
    )
    assert summary.n_rejected == 0
    return _boxes(load_coco(out))


def _boxes(data: dict, flip: bool = False) -> dict[str, list[tuple]]:
    """galaxy id -> sorted (category, x, y, w, h); ``flip``: FITS array frame -> PNG frame (y_png = H - y_fits)."""
    images = {im["id"]: im for im in data["images"]}
    out: dict[str, list[tuple]] = {str(im["galaxy_id"]): [] for im in data["images"]}
    for a in data["annotations"]:
        image = images[a["image_id"]]
        x, y, w, h = a["bbox"]
        if flip:
            y = image["height"] - y - h
        out[str(image["galaxy_id"])].append((a["category_id"], x, y, w, h))
    return {k: sorted(v) for k, v in out.items()}


def _iou(a: tuple, b: tuple) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter)


def _assert_same_boxes(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    assert sum(map(len, want.values())) > 10  # the check means something: the simulated set has boxes
    for galaxy, boxes in want.items():
        assert len(got[galaxy]) == len(boxes), galaxy
        for mine, theirs in zip(got[galaxy], boxes, strict=True):
            assert mine[0] == theirs[0]
            assert _iou(mine[1:], theirs[1:]) >= 0.9, (galaxy, mine, theirs)
            assert np.allclose(mine[1:], theirs[1:], atol=1e-6)  # the same rule: the same box, not just a close one


def test_cutout_fits_give_clumpscouts_boxes_mirrored_to_the_fits_array_frame(sim, clumpscout_boxes, tmp_path):
    out = tmp_path / "fits.json"
    summary = convert_clumps(sim / "clumps.csv", out, fits_dir=sim / "fits_cutout", galaxies_csv=sim / "galaxies.csv")
    assert summary.n_rejected == 0 and summary.images_out == N_GALAXIES
    data = load_coco(out)
    _assert_same_boxes(_boxes(data, flip=True), clumpscout_boxes)
    image = data["images"][0]
    galaxy = image["galaxy_id"]
    assert image["bands"] == ["g", "r", "i"]
    assert image["file_name"] == image["band_files"]["g"]
    for band, name in (("g", image["file_name"]), ("i", image["band_files"]["i"])):
        assert resolve_image_path(out, name).resolve() == (sim / "fits_cutout" / f"{galaxy}_{band}.fits").resolve()
    # the array frame as astropy reads it: the box centre sits on the clump's pixel of the FITS data, unflipped
    first = next(a for a in data["annotations"] if a["image_id"] == image["id"])
    header = fits.getheader(resolve_image_path(out, image["file_name"]))
    col, row = WCS(header).world_to_pixel_values(first["ra"], first["dec"])
    x, y, w, h = first["bbox"]
    assert (x + w / 2, y + h / 2) == pytest.approx((col + 0.5, row + 0.5), abs=1e-6)
    png_col, png_row = png_to_fits_pixel(first["x"], first["y"], 400)  # the simulator's PNG-frame position
    assert (col, row) == pytest.approx((png_col, png_row), abs=1e-6)


def test_clumps_with_png_cutouts_and_galaxies_meta_give_clumpscouts_boxes(sim, clumpscout_boxes, tmp_path):
    out = tmp_path / "png.json"
    summary = convert_clumps(sim / "clumps.csv", out, images_dir=sim / "images", galaxies_csv=sim / "galaxies.csv")
    assert summary.n_rejected == 0
    data = load_coco(out)
    _assert_same_boxes(_boxes(data), clumpscout_boxes)
    assert resolve_image_path(out, data["images"][0]["file_name"]).resolve().parent == (sim / "images").resolve()
    assert data["info"]["options"]["orientation"] == {"north": "up", "east": "left"}


def test_a_fits_cube_and_a_fits_table_give_the_same_boxes(sim, clumpscout_boxes, tmp_path):
    cubes = tmp_path / "cubes"
    cubes.mkdir()
    for path in sorted((sim / "fits_cutout").glob("*_g.fits")):
        galaxy = path.name[: -len("_g.fits")]
        planes = [fits.getdata(sim / "fits_cutout" / f"{galaxy}_{b}.fits") for b in "gri"]
        header = WCS(fits.getheader(path)).to_header()
        header.update({"BAND1": "g", "BAND2": "r", "BAND3": "i"})
        fits.PrimaryHDU(np.stack(planes), header=header).writeto(cubes / f"{galaxy}.fits")
    table = tmp_path / "clumps.fits"
    Table.read(sim / "clumps.csv").write(table)
    out = tmp_path / "cube.json"
    convert_clumps(table, out, fits_dir=cubes, galaxies_csv=sim / "galaxies.csv")
    data = load_coco(out)
    _assert_same_boxes(_boxes(data, flip=True), clumpscout_boxes)
    assert data["images"][0]["bands"] == ["g", "r", "i"] and "band_files" not in data["images"][0]


def test_native_fits_boxes_are_one_and_a_half_fwhm_on_the_native_grid_at_the_clump(sim, tmp_path):
    out = tmp_path / "native.json"
    convert_clumps(sim / "clumps.csv", out, fits_dir=sim / "fits", galaxies_csv=sim / "galaxies.csv")
    data = load_coco(out)
    fwhm = {int(r["local_ids"]): float(r["psf_fwhm_arcsec"]) for r in csv.DictReader(open(sim / "galaxies.csv"))}
    images = {im["id"]: im for im in data["images"]}
    assert len(data["annotations"]) > 10
    for a in data["annotations"]:
        image = images[a["image_id"]]
        x, y, w, h = a["bbox"]
        assert w == h == pytest.approx(BOX_SIDE_PER_FWHM * fwhm[image["galaxy_id"]] / SDSS_PIXEL, rel=1e-9)
        wcs = WCS(fits.getheader(resolve_image_path(out, image["file_name"])))
        ra, dec = wcs.pixel_to_world_values(x + w / 2 - 0.5, y + h / 2 - 0.5)
        assert (float(ra), float(dec)) == pytest.approx((a["ra"], a["dec"]), abs=1e-9)


def test_the_default_box_rule_is_the_simulators() -> None:
    assert skyboxes.BOX_SIDE_PER_FWHM == BOX_SIDE_PER_FWHM


def test_orientation_east_right_mirrors_the_boxes_left_to_right(sim, tmp_path):
    common = {"images_dir": sim / "images", "galaxies_csv": sim / "galaxies.csv"}
    convert_clumps(sim / "clumps.csv", tmp_path / "left.json", **common)
    convert_clumps(sim / "clumps.csv", tmp_path / "right.json", east="right", **common)
    left, right = load_coco(tmp_path / "left.json"), load_coco(tmp_path / "right.json")
    for a, b in zip(left["annotations"], right["annotations"], strict=True):
        assert b["bbox"][0] == pytest.approx(400 - a["bbox"][0] - a["bbox"][2], abs=1e-6)
        assert b["bbox"][1] == pytest.approx(a["bbox"][1], abs=1e-6)


def test_split_is_by_galaxy_deterministic_and_keeps_every_box(sim, tmp_path):
    common = {"fits_dir": sim / "fits_cutout", "galaxies_csv": sim / "galaxies.csv", "split": "train=0.5,val=0.5"}
    summary = convert_clumps(sim / "clumps.csv", tmp_path / "s.json", **common)
    files = {name: (tmp_path / f"s_{name}.json").read_bytes() for name in ("train", "val")}
    convert_clumps(sim / "clumps.csv", tmp_path / "s.json", **common)
    assert {name: (tmp_path / f"s_{name}.json").read_bytes() for name in files} == files
    parts = [json.loads(files[name]) for name in files]
    galaxies = [{im["galaxy_id"] for im in part["images"]} for part in parts]
    assert not galaxies[0] & galaxies[1] and len(galaxies[0] | galaxies[1]) == N_GALAXIES
    assert sum(len(p["annotations"]) for p in parts) == summary.rows_out


def test_cutout_wcs_is_celestial_wcs_in_png_row_order() -> None:
    png = cutout_wcs(150.0, 2.0, 0.25, (40, 60))
    fits_frame = celestial_wcs(150.0, 2.0, 0.25, (40, 60))
    ra, dec = np.array([150.001, 149.998]), np.array([2.0005, 1.999])
    x_png, y_png = sky_to_coco(png, ra, dec)
    x_fits, y_fits = sky_to_coco(fits_frame, ra, dec)
    assert np.allclose(x_png, x_fits) and np.allclose(y_png, 40 - y_fits)
    assert x_png[0] < 30 and y_png[0] < 20  # east (larger RA) is left, north (larger Dec) is up


def test_parse_angle_reads_degrees_and_sexagesimal_and_refuses_the_rest() -> None:
    assert parse_angle("10:00:00", "ra") == pytest.approx(150.0)
    assert parse_angle("-02:30:00", "dec") == pytest.approx(-2.5)
    assert parse_angle(" 12.5 ", "dec") == 12.5
    assert [parse_angle(v, "ra") for v in ("abc", "400", "nan", None, "")] == [None] * 5
    assert parse_angle("-91", "dec") is None


def test_real_stripe82_clumps_convert_and_trusted_ones_land_on_their_fitted_pixels(shared_data, tmp_path):
    folder = shared_data / "s82_clumps_dev"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    common = {
        "images_dir": folder / "images",
        "galaxies_csv": folder / "galaxies.csv",
        "scale_col": "pixel_scale_fitted",
        "pattern": "objID{id:020d}.jpg",
    }
    everything = convert_clumps(folder / "clumps.csv", tmp_path / "all.json", **common)
    assert (everything.rows_in, everything.rows_out, everything.images_out) == (262, 262, 45)
    trusted = convert_clumps(folder / "clumps.csv", tmp_path / "t.json", galaxy_cuts=["alignment_z > 3"], **common)
    assert (trusted.rows_out, trusted.rejected, trusted.images_out) == (129, {"galaxy_rejected": 133}, 21)
    data = load_coco(tmp_path / "t.json")
    scales = {im["id"]: im["pixel_scale"] for im in data["images"]}
    offsets = []
    for a in data["annotations"]:
        x, y, w, h = a["bbox"]
        assert w == h == pytest.approx(1.5 * a["psf_fwhm_r_arcsec"] / scales[a["image_id"]])  # the clump's own FWHM
        offsets.append(np.hypot(x + w / 2 - a["x_px"], y + h / 2 - a["y_px"]) / w)
    # RA/Dec through (centre, scale) lands within one box side of the pixel position fitted per image
    assert max(offsets) < 1.0 and np.median(offsets) < 0.5
    assert {im["width"] for im in data["images"]} == {424}
