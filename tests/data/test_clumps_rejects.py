"""``astrodet convert clumps``: every bad clump or galaxy row is reported with its reason, row and field, the
command's exit codes, and outputs that would overwrite an input are refused."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from astrodet import cli
from astrodet.data.clumps import convert_clumps
from astrodet.data.coco import load_coco
from astrodet.data.imaging import celestial_wcs, write_fits_image
from astrodet.data.rejects import read_rejects_csv
from astrodet.errors import AstrodetInputError
from tests.reliability.inputs import Case

SIZE = 64
WCS_ = celestial_wcs(150.0, 2.0, 0.4, (SIZE, SIZE))


def _sky(col: float, row: float) -> tuple[float, float]:
    """RA/Dec of a 0-based pixel centre of the test frames."""
    ra, dec = WCS_.pixel_to_world_values(col, row)
    return float(ra), float(dec)


def _bands(folder: Path, galaxy: str, fwhm: float | None = None, shapes=(SIZE, SIZE, SIZE), nan=False) -> None:
    for band, side in zip("gri", shapes, strict=True):
        data = np.random.default_rng(0).normal(size=(side, side)).astype(np.float32)
        if nan:
            data[50:56, 50:56] = np.nan  # a masked patch (array rows/cols 50-55)
        cards = {"FILTER": band, **({"PSFFWHM": fwhm} if fwhm and band == "r" else {})}
        write_fits_image(folder / f"{galaxy}_{band}.fits", data, celestial_wcs(150.0, 2.0, 0.4, (side, side)), cards)


def _write(path: Path, rows: list[list]) -> Path:
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


@pytest.fixture
def inputs(tmp_path) -> dict[str, Path]:
    fits_dir = tmp_path / "fits"
    fits_dir.mkdir()
    _bands(fits_dir, "g1", fwhm=1.2, nan=True)
    (fits_dir / "g3.fits").write_bytes(b"SIMPLE  = T" + b" " * 100)  # not a FITS file
    write_fits_image(fits_dir / "g4.fits", np.zeros((SIZE, SIZE), np.float32), cards={"FILTER": "g"})  # no WCS
    _bands(fits_dir, "g5", fwhm=1.2, shapes=(SIZE, SIZE + 2, SIZE))
    _bands(fits_dir, "g6", fwhm=1.2)
    _bands(fits_dir, "g7")  # no PSFFWHM: its clumps have no size
    _bands(fits_dir, "g8", fwhm=1.2)  # no clumps: a negative image
    good, off, masked = _sky(20, 20), _sky(-5, 30), _sky(52.3, 52.6)
    header = ["local_ids", "ra", "dec", "label", "psf_fwhm_arcsec", "flux_u"]
    clumps = _write(
        tmp_path / "clumps.csv",
        [
            header,
            ["g1", *good, 1, "", 3.5],  # row 2: kept
            ["g1", *good, 1, "", 3.5, "extra"],  # 3: malformed_row
            ["g1", "", good[1], 1, "", 1],  # 4: missing_value
            ["g1", "abc", good[1], 1, "", 1],  # 5: bad_coordinates
            ["g1", *good, "maybe", "", 1],  # 6: unknown_label
            ["g6", *good, 1, "", 1],  # 7: galaxy_rejected (cut)
            ["g2", *good, 2, "", 1],  # 8: missing_image
            ["g3", *good, 1, "", 1],  # 9: unreadable_image
            ["g4", *good, 1, "", 1],  # 10: no_wcs
            ["g5", *good, 1, "", 1],  # 11: mismatched_bands
            ["g7", *good, 1, "", 1],  # 12: missing_size
            ["g1", *_sky(30, 30), 1, "-1", 1],  # 13: bad_size
            ["g1", *off, 1, "", 1],  # 14: outside_image
            ["g1", *masked, 2, "", 1],  # 15: masked_pixel
            ["g1", *good, 2, "", 9],  # 16: duplicate of row 2
        ],
    )
    galaxies = _write(
        tmp_path / "galaxies.csv",
        [
            ["local_ids", "quality", "psf_fwhm_arcsec"],
            *[[g, 1, ""] for g in ("g1", "g2", "g3", "g4", "g5")],  # rows 2-6
            ["g6", 0, ""],  # 7: cut
            ["g7", 1, ""],  # 8
            ["g8", 1, ""],  # 9
            ["g9", 1, "wide"],  # 10: bad_value
            ["g1", 1, ""],  # 11: duplicate
        ],
    )
    return {"clumps": clumps, "galaxies": galaxies, "fits": fits_dir}


def test_each_bad_row_gets_its_reason_row_and_field(inputs, tmp_path) -> None:
    summary = convert_clumps(
        inputs["clumps"], tmp_path / "o.json", fits_dir=inputs["fits"], galaxies_csv=inputs["galaxies"],
        galaxy_cuts=["quality > 0"],
    )  # fmt: skip
    assert summary.line() == (
        "15 rows in = 1 boxes out + 14 rejected (bad_coordinates: 1, bad_size: 1, duplicate: 1, galaxy_rejected: 1, "
        "malformed_row: 1, masked_pixel: 1, mismatched_bands: 1, missing_image: 1, missing_size: 1, "
        "missing_value: 1, no_wcs: 1, outside_image: 1, unknown_label: 1, unreadable_image: 1)"
    )
    rejects = {(r["file"], int(r["row"])): (r["reason"], r["message"]) for r in read_rejects_csv(summary.rejects_csv)}
    clumps, galaxies = str(inputs["clumps"]), str(inputs["galaxies"])
    expected = {
        3: ("malformed_row", "expected 6 fields, got 7"),
        4: ("missing_value", "ra is empty"),
        5: ("bad_coordinates", "ra must be degrees in [0, 360] or hh:mm:ss, got 'abc'"),
        6: ("unknown_label", "label must be 1/2 or clump/odd_clump, got 'maybe'"),
        7: ("galaxy_rejected", "galaxy g6 was rejected (cut:quality>0): galaxies.csv row 7: quality = 0 fails"),
        8: ("missing_image", "no image g2.fits or g2.fits.gz or g2.fit or g2_{band}.fits"),
        9: ("unreadable_image", "image g3.fits cannot be read"),
        10: ("no_wcs", "g4.fits has no celestial WCS"),
        11: ("mismatched_bands", "g5_r.fits is (66, 66), g5_g.fits is (64, 64)"),
        12: ("missing_size", "no PSF FWHM"),
        13: ("bad_size", "psf_fwhm_arcsec must be a positive FWHM in arcsec, got -1"),
        14: ("outside_image", "is not inside the 64x64 image g1_g.fits"),
        15: ("masked_pixel", "the pixel under the clump (52.80, 53.10) is NaN/inf"),
        16: ("duplicate", "same galaxy and box (to 1e-3 px) as row 2"),
    }
    for row, (reason, message) in expected.items():
        got = rejects.pop((clumps, row))
        assert got[0] == reason and message in got[1] and "\n" not in got[1], (row, got)
    galaxy_rows = {row: value[0] for (file, row), value in rejects.items() if file == galaxies}
    assert galaxy_rows == {
        3: "missing_image", 4: "unreadable_image", 5: "no_wcs", 6: "mismatched_bands", 7: "cut:quality>0",
        10: "bad_value", 11: "duplicate",
    }  # fmt: skip
    assert not {k: v for k, v in rejects.items() if k[0] != galaxies}
    assert f"{galaxies}: 10 rows in = 3 used + 7 rejected" in summary.notes[0]
    data = load_coco(tmp_path / "o.json")
    assert sorted(im["galaxy_id"] for im in data["images"]) == ["g1", "g7", "g8"]  # usable images, with or without
    (box,) = data["annotations"]
    assert box["bbox"] == pytest.approx([20.5 - 1.5 * 1.2 / 0.4 / 2] * 2 + [1.5 * 1.2 / 0.4] * 2)  # header FWHM
    assert box["flux_u"] == 3.5 and box["source_row"] == 2 and box["category_id"] == 1


def _picture_inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    folder = tmp_path / "jpgs"
    folder.mkdir()
    for name in ("a", "b"):
        Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(folder / f"{name}.jpg")
    galaxies = _write(tmp_path / "gal.csv", [["id", "ra", "dec", "pixel_scale"], ["a", 150, 2, 0.5], ["b", 150, 2, ""]])
    clumps = _write(
        tmp_path / "c.csv",
        [["id", "ra", "dec", "unusual"], ["a", 150, 2, 1], ["b", 150, 2, 0], ["c", 150, 2, 0], ["a", 150, 2, "?"]],
    )
    return clumps, galaxies, folder


def test_cutouts_without_wcs_need_the_galaxy_in_the_galaxies_table_with_centre_and_scale(tmp_path) -> None:
    clumps, galaxies, folder = _picture_inputs(tmp_path)
    summary = convert_clumps(clumps, tmp_path / "o.json", images_dir=folder, galaxies_csv=galaxies, fwhm=1.0)
    rejects = [(r["row"], r["reason"], r["message"]) for r in read_rejects_csv(summary.rejects_csv)]
    assert ("3", "missing_value", "pixel_scale empty or missing: a cutout without WCS needs its centre and scale") in [
        r for r in rejects
    ]
    assert ("3", "galaxy_rejected", "gal.csv row 3: pixel_scale empty or missing: a cutout without WCS needs its "
            "centre and scale") in rejects  # fmt: skip
    assert ("4", "unknown_galaxy", "galaxy c is not in gal.csv: its cutout's centre is unknown") in rejects
    assert ("5", "unknown_label", "unusual must be 1/0, true/false or yes/no, got '?'") in rejects
    (box,) = load_coco(tmp_path / "o.json")["annotations"]
    assert box["category_id"] == 2  # unusual = 1: an odd clump (Adams et al.'s flag)
    assert box["bbox"] == pytest.approx([20 - 1.5, 20 - 1.5, 3.0, 3.0])  # 1.5 x 1" / 0.5"/px, at the centre


@pytest.fixture
def convert_only_cli(monkeypatch):
    """The CLI with only ``convert`` wired, so these tests do not depend on the other subcommands' modules."""
    monkeypatch.setattr(cli, "_SUBCOMMANDS", {"convert": cli._SUBCOMMANDS["convert"]})
    return cli.main


def test_cli_exit_codes_and_messages(tmp_path, capsys, convert_only_cli) -> None:
    clumps, galaxies, folder = _picture_inputs(tmp_path)
    out = str(tmp_path / "o.json")
    args = ["convert", "clumps", "--clumps", str(clumps), "--images", str(folder), "--galaxies", str(galaxies)]
    assert convert_only_cli([*args, "--fwhm", "1", "--out", out]) == 0
    printed = capsys.readouterr().out
    assert "4 rows in = 1 boxes out + 3 rejected (galaxy_rejected: 1, unknown_galaxy: 1, unknown_label: 1)" in printed
    assert "gal.csv: 2 rows in = 1 used + 1 rejected (missing_value: 1)" in printed
    assert convert_only_cli([*args, "--fwhm", "1", "--out", out, "--strict"]) == 1
    assert "--strict: 3 rows rejected" in capsys.readouterr().err
    assert convert_only_cli([*args, "--fwhm", "1", "--out", out, "--ra-col", "RA"]) == 2
    assert "column 'RA' is not in" in capsys.readouterr().err
    assert convert_only_cli([*args[:6], "--out", out]) == 2
    assert "--images needs --galaxies CSV" in capsys.readouterr().err
    assert convert_only_cli([*args, "--fwhm", "-1", "--out", out]) == 2
    assert "--fwhm must be > 0 arcsec" in capsys.readouterr().err


def test_outputs_that_are_inputs_are_refused_before_anything_is_written(tmp_path) -> None:
    clumps, galaxies, folder = _picture_inputs(tmp_path)
    before = {p: p.read_bytes() for p in (clumps, galaxies)}
    common = {"images_dir": folder, "galaxies_csv": galaxies, "fwhm": 1.0}
    with pytest.raises(AstrodetInputError, match="would overwrite the input"):
        convert_clumps(clumps, tmp_path / "o.json", rejects_csv=galaxies, **common)
    with pytest.raises(AstrodetInputError, match=r"would overwrite the input"):
        convert_clumps(clumps, clumps, **common)
    assert {p: p.read_bytes() for p in before} == before
    assert not (tmp_path / "o.json").exists()


def test_a_catalogue_whose_every_clump_is_rejected_and_no_galaxy_usable_writes_nothing(tmp_path) -> None:
    clumps, galaxies, folder = _picture_inputs(tmp_path)
    _write(galaxies, [["id", "ra", "dec", "pixel_scale"], ["a", 150, 2, ""]])
    with pytest.raises(AstrodetInputError, match="no image to write"):
        convert_clumps(clumps, tmp_path / "o.json", images_dir=folder, galaxies_csv=galaxies, fwhm=1.0)
    assert not (tmp_path / "o.json").exists()


def test_a_cube_takes_its_fwhm_from_the_r_channels_psffwhm_card(tmp_path) -> None:
    folder = tmp_path / "cubes"
    folder.mkdir()
    header = WCS_.to_header()
    header.update({"BAND1": "g", "BAND2": "r", "BAND3": "i", "PSFFWHM1": 1.4, "PSFFWHM2": 1.0, "PSFFWHM3": 0.9})
    fits.PrimaryHDU(np.zeros((3, SIZE, SIZE), np.float32), header=header).writeto(folder / "c1.fits")
    clumps = _write(tmp_path / "c.csv", [["galaxy_id", "ra", "dec"], ["c1", *_sky(31.5, 10.5)]])
    convert_clumps(clumps, tmp_path / "o.json", fits_dir=folder)
    data = load_coco(tmp_path / "o.json")
    (box,) = data["annotations"]
    assert box["bbox"] == pytest.approx([32 - 1.875, 11 - 1.875, 3.75, 3.75])  # 1.5 x 1.0" / 0.4"/px, unflipped
    assert data["images"][0]["bands"] == ["g", "r", "i"] and data["images"][0]["file_name"] == "cubes/c1.fits"


def clumps_case(folder: Path) -> Case:
    """Small inputs for the reliability tests: two JPEG cutouts, a galaxies table and a clump table."""
    clumps, galaxies, images = _picture_inputs(folder)
    options = {"images_dir": images, "galaxies_csv": galaxies, "fwhm": 1.0}
    return Case("clumps", convert_clumps, clumps, options, {"clumps": clumps, "galaxies": galaxies, "images": images})
