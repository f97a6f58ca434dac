"""``astrodet convert field``: real frames (one box per source on the frame), the box and tile-edge rules, rejects,
leak-free splits, tile WCS and the PNG rendering predict uses."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from astrodet.data.coco import load_coco
from astrodet.data.field import convert_field
from astrodet.data.imaging import celestial_wcs, fits_header
from astrodet.data.rejects import read_rejects_csv
from astrodet.errors import AstrodetInputError
from tests.reliability.inputs import Case


def _frame(path: Path, shape=(60, 100), wcs: bool = True, nan: tuple[slice, slice] | None = None) -> Path:
    data = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    if nan is not None:
        data[nan] = np.nan
    header = fits_header(celestial_wcs(150.0, 2.0, 0.5, shape) if wcs else None, {"BUNIT": "adu"})
    fits.PrimaryHDU(data, header).writeto(path)
    return path


def field_case(folder: Path) -> Case:
    """Six pixel positions (1-based) with a size column on one 100x60 frame, cut into 48 px tiles."""
    frame = _frame(folder / "frame.fits")
    table = folder / "sources.csv"
    table.write_text("id,x,y,side,kind\n" + "".join(f"s{i},{12 + i * 15},{10 + i * 8},6,{'ab'[i % 2]}\n"
                                                   for i in range(6)))  # fmt: skip
    options = {"fits": [frame], "x_col": "x", "y_col": "y", "size_col": "side", "class_col": "kind", "tile_size": 48}
    return Case("field", convert_field, table, options, {"catalog": table, "fits": frame})


def _tiles(out: Path) -> list[dict]:
    data = load_coco(out)
    boxes: dict[int, list] = {}
    for ann in data["annotations"]:
        boxes.setdefault(ann["image_id"], []).append(ann)
    return [{**image, "annotations": boxes.get(image["id"], [])} for image in data["images"]]


def test_real_sextractor_frame_gives_one_box_per_source_on_it(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "detection_fields"
    catalog, frame = folder / "eso_ntt_emmi_field_sextractor.cat", folder / "eso_ntt_emmi_field_image.fits"
    table = Table.read(catalog, format="ascii.sextractor")
    summary = convert_field(catalog, tmp_path / "eso.json", fits=[frame], tile_size=256)
    assert WCS(fits.getheader(frame)).has_celestial is False  # pixel positions need no WCS
    failed_kron = int((table["KRON_RADIUS"] <= 0).sum())
    assert summary.rows_in == len(table) == 65
    assert summary.rejected == {"non_positive_size": failed_kron} and summary.rows_out == 65 - failed_kron
    (tile,) = _tiles(tmp_path / "eso.json")
    assert len(tile["annotations"]) == summary.rows_out  # one box per source, the frame in one tile
    kept = table[table["KRON_RADIUS"] > 0]
    by_id = {int(a["source_id"]): a for a in tile["annotations"]}
    for row in kept:  # the box is centred on the SExtractor position (1-based -> COCO: -0.5) unless clipped
        x, _y, w, _h = by_id[int(row["NUMBER"])]["bbox"]
        half_w = row["KRON_RADIUS"] * math.sqrt(row["X2_IMAGE"])
        if row["X_IMAGE"] - 0.5 - half_w > 0 and row["X_IMAGE"] - 0.5 + half_w < 256:
            assert x + w / 2 == pytest.approx(row["X_IMAGE"] - 0.5) and w == pytest.approx(2 * half_w)
    assert [r["reason"] for r in read_rejects_csv(tmp_path / "eso_rejects.csv")] == ["non_positive_size"] * failed_kron


def test_real_galactic_catalogue_over_a_car_frame(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "detection_fields"
    catalog, frame = folder / "spitzer_irac_glimpse_catalog.vot.xml", folder / "spitzer_irac_glimpse_image.fits"
    summary = convert_field(catalog, tmp_path / "g.json", fits=[frame], box_size=8, tile_size=256)
    table, wcs = Table.read(catalog), WCS(fits.getheader(frame))
    x, y = wcs.world_to_pixel(SkyCoord(table["l"], table["b"], frame="galactic"))
    data = fits.getdata(frame)
    on = (x >= -0.5) & (x < data.shape[1] - 0.5) & (y >= -0.5) & (y < data.shape[0] - 0.5)
    assert summary.rows_out == int(on.sum()) > 50 and summary.n_rejected == int((~on).sum())
    tiles = _tiles(tmp_path / "g.json")
    assert {int(a["source_row"]) for t in tiles for a in t["annotations"]} == {i + 1 for i in np.flatnonzero(on)}
    tile = max(tiles, key=lambda t: len(t["annotations"]))  # the tile's own WCS puts each source at its box centre
    tile_wcs = WCS(fits.getheader(tmp_path / tile["file_name"]))
    for ann in tile["annotations"]:
        if not ann["truncated"]:
            bx, by, bw, bh = ann["bbox"]
            row = table[ann["source_row"] - 1]
            px, py = tile_wcs.world_to_pixel(SkyCoord(row["l"], row["b"], unit="deg", frame="galactic"))
            assert (float(px) + 0.5, float(py) + 0.5) == pytest.approx((bx + bw / 2, by + bh / 2), abs=1e-6)


def test_ellipse_rule_and_tile_edges(tmp_path: Path) -> None:
    frame = _frame(tmp_path / "f.fits", shape=(64, 240))
    table = tmp_path / "s.csv"  # 1-based pixels; A, B, THETA: the axis-aligned box of the scaled ellipse
    table.write_text("NUMBER,X_IMAGE,Y_IMAGE,A_IMAGE,B_IMAGE,THETA_IMAGE\n1,20.5,32.5,4,2,90\n2,60.5,32.5,3,3,0\n"
                     "3,120.5,32.5,35,35,0\n")  # fmt: skip
    summary = convert_field(table, tmp_path / "o.json", fits=[frame], ellipse_scale=2, tile_size=64, tile_overlap=0.25)
    assert summary.rejected == {"not_in_any_tile": 1}  # 3: a 140 px box, under half of it in any 64 px tile
    tiles = _tiles(tmp_path / "o.json")
    assert [(t["tile_x0"], t["width"], t["height"]) for t in tiles] == [(x, 64, 64) for x in (0, 48, 96, 144, 176)]
    first = next(a for a in tiles[0]["annotations"] if a["source_id"] == "1")
    assert first["bbox"] == pytest.approx([20 - 4, 32 - 8, 8, 16])  # theta 90: half-width 2*B, half-height 2*A
    seen = [(t["tile_x0"], a) for t in tiles for a in t["annotations"] if a["source_id"] == "2"]
    assert seen and all(a["visible_fraction"] >= 0.5 for _, a in seen)
    for x0, a in seen:  # clipped to its tile; the whole box is 54..66 in the frame
        assert a["bbox"][0] + x0 == pytest.approx(max(54.0, x0)) and a["truncated"] == (a["visible_fraction"] < 1)


def test_every_bad_row_is_a_reject_with_its_reason(tmp_path: Path) -> None:
    frame = _frame(tmp_path / "f.fits", nan=(slice(0, 10), slice(0, 10)))
    table = tmp_path / "s.csv"
    table.write_text("id,x,y,side,kind\n1,50,30,6,a\n2,,30,6,a\n3,50,30,0,a\n4,50,30,6,\n5,500,30,6,a\n6,5,5,6,a\n"
                     "7,nan,3,6,a\n8,60,40,-2,b\n")  # fmt: skip
    summary = convert_field(table, tmp_path / "o.json", fits=[frame], x_col="x", y_col="y", size_col="side",
                            class_col="kind")  # fmt: skip
    assert summary.line() == ("8 rows in = 1 sources out + 7 rejected (missing_position: 2, non_positive_size: 2, "
                              "masked_centre: 1, missing_class: 1, outside_frames: 1)")  # fmt: skip
    reasons = {int(r["row"]): r["reason"] for r in read_rejects_csv(tmp_path / "o_rejects.csv")}
    assert reasons == {3: "missing_position", 4: "non_positive_size", 5: "missing_class", 6: "outside_frames",
                       7: "masked_centre", 8: "missing_position", 9: "non_positive_size"}  # fmt: skip


def test_sky_positions_need_a_celestial_wcs(tmp_path: Path) -> None:
    frame = _frame(tmp_path / "f.fits", wcs=False)
    table = tmp_path / "s.csv"
    table.write_text("ra,dec\n150.0,2.0\n")
    with pytest.raises(AstrodetInputError, match=r"f\.fits: no celestial WCS.*--x-col") as caught:
        convert_field(table, tmp_path / "o.json", fits=[frame], box_size=5)
    assert "\n" not in str(caught.value)


def test_split_by_region_never_shares_pixels_and_keeps_empty_tiles(tmp_path: Path) -> None:
    frame = _frame(tmp_path / "f.fits", shape=(200, 300))
    rng = np.random.default_rng(1)
    sky = celestial_wcs(150.0, 2.0, 0.5, (200, 300)).pixel_to_world(rng.uniform(0, 150, 30), rng.uniform(0, 100, 30))
    Table({"ra": sky.ra.deg, "dec": sky.dec.deg}).write(tmp_path / "s.ecsv")
    summary = convert_field(tmp_path / "s.ecsv", tmp_path / "o.json", fits=[frame], box_size=6, tile_size=64,
                            split="train=0.5,test=0.5", seed=3)  # fmt: skip
    assert summary.rows_out == 30
    windows = {}
    for split in ("train", "test"):
        tiles = _tiles(tmp_path / f"o_{split}.json")
        assert tiles
        windows[split] = [(t["tile_x0"], t["tile_y0"], t["width"], t["height"]) for t in tiles]
    empty = sum(not t["annotations"] for s in ("train", "test") for t in _tiles(tmp_path / f"o_{s}.json"))
    assert empty > 0  # negatives kept: sources only cover the lower-left quarter
    for ax, ay, aw, ah in windows["train"]:
        for bx, by, bw, bh in windows["test"]:
            assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay


def test_lupton_png_tiles_are_what_predict_renders_from_their_fits(tmp_path: Path) -> None:
    from PIL import Image

    from astrodet.inference.images import load_fits
    from astrodet.inference.model import SIMULATOR_RECIPE
    from astrodet.inference.sources import InputUnit

    shape = (90, 130)
    cube = (np.random.default_rng(2).normal(size=(3, *shape)) * 0.02 + 0.05).astype(np.float32)
    cards = {"BUNIT": "nanomaggy", "BAND1": "g", "BAND2": "r", "BAND3": "i"}
    fits.PrimaryHDU(cube, fits_header(celestial_wcs(30.0, -5.0, 0.396, shape), cards)).writeto(tmp_path / "c.fits")
    (tmp_path / "s.csv").write_text("x,y,size\n40,30,10\n100,70,8\n")
    convert_field(tmp_path / "s.csv", tmp_path / "o.json", fits=[tmp_path / "c.fits"], x_col="x", y_col="y",
                  size_col="size", tile_size=64, png="lupton")  # fmt: skip
    data = json.loads((tmp_path / "o.json").read_text())
    assert data["info"]["rules"]["box_frame"].startswith("PNG")
    for image in data["images"]:
        path = str(tmp_path / image["fits_file_name"])
        rendered = load_fits(InputUnit(file=path, kind="fits", path=path), SIMULATOR_RECIPE, ("g", "r", "i")).pixels
        assert np.array_equal(np.asarray(Image.open(tmp_path / image["file_name"])), rendered)
        tile = fits.getdata(path)
        assert tile.shape == (3, image["height"], image["width"])
        assert np.array_equal(tile, cube[:, image["tile_y0"] : image["tile_y0"] + image["height"],
                                         image["tile_x0"] : image["tile_x0"] + image["width"]])  # fmt: skip
    first = next(a for a in data["annotations"] if a["source_row"] == 2 and a["visible_fraction"] == 1.0)
    image = data["images"][first["image_id"] - 1]  # PNG rows are flipped: y_png = H - y_array - h
    y_array = 30 - 0.5 - 5 - image["tile_y0"]
    assert first["bbox"][1] == pytest.approx(image["height"] - y_array - 10)
