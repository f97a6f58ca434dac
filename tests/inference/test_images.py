"""Inputs to model pixels: FITS rendered exactly as the simulator rendered its PNGs; mismatches refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from astrodet.data.imaging import celestial_wcs, fits_header, write_fits_image
from astrodet.inference.images import header_zeropoint, load_fits, load_picture
from astrodet.inference.model import SIMULATOR_RECIPE
from astrodet.inference.rejects import (
    ALL_NAN,
    BAND_MISMATCH,
    NO_CELESTIAL_WCS,
    RECIPE_MISMATCH,
    UNREADABLE_IMAGE,
    WRONG_BAND_COUNT,
    InputRejected,
)
from astrodet.inference.sources import InputUnit, discover

BANDS = ("i", "r", "g")


def _group(folder: Path, stem: str) -> InputUnit:
    (unit,) = discover([str(folder / f"{stem}_{{band}}.fits")], BANDS)
    return unit


def _write_bands(folder: Path, stem: str, shape=(40, 50), wcs=True, bunit="nanomaggy", bands="gri", **cards):
    header = fits_header(celestial_wcs(150.0, 2.0, 0.4, shape) if wcs else None, {"BUNIT": bunit, **cards})
    rng = np.random.default_rng(0)
    for band in bands:
        write_fits_image(folder / f"{stem}_{band}.fits", rng.normal(0.0, 0.01, shape).astype(np.float32), header=header)


def test_cutout_fits_render_to_the_simulators_png_exactly(simulated: Path) -> None:
    for png in sorted((simulated / "images").glob("*.png")):
        unit = _group(simulated / "fits_cutout", png.stem)
        loaded = load_fits(unit, SIMULATOR_RECIPE, BANDS)
        assert np.array_equal(loaded.pixels, np.asarray(Image.open(png)))
        assert loaded.sky is not None and set(loaded.bands) == set(BANDS)


def test_per_pixel_nanomaggies_render_like_surface_brightness(tmp_path: Path) -> None:
    shape, scale = (30, 30), 0.25
    wcs = celestial_wcs(10.0, 5.0, scale, shape)
    surface = np.random.default_rng(1).uniform(0, 2, shape)
    for unit, factor in (("nanomaggy/arcsec2", 1.0), ("nanomaggy", scale**2)):
        for band in "gri":
            write_fits_image(tmp_path / f"{unit[:9]}{len(unit)}_{band}.fits", surface * factor, wcs, {"BUNIT": unit})
    a = load_fits(_group(tmp_path, "nanomaggy17"), SIMULATOR_RECIPE, BANDS).pixels
    b = load_fits(_group(tmp_path, "nanomaggy9"), SIMULATOR_RECIPE, BANDS).pixels
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_zero_points_from_header_unit_and_override() -> None:
    assert header_zeropoint(fits.Header({"BUNIT": "nanomaggy"})) == 22.5
    assert header_zeropoint(fits.Header({"BUNIT": "nanomaggy/arcsec2"})) == 22.5
    assert header_zeropoint(fits.Header({"BUNIT": "counts", "MAGZP": 25.1})) == 25.1
    assert header_zeropoint(fits.Header({"BUNIT": "counts"})) is None
    assert header_zeropoint(fits.Header({"BUNIT": "counts"}), 27.0) == 27.0


def _reason(call) -> tuple[str, str]:
    with pytest.raises(InputRejected) as caught:
        call()
    return caught.value.reason, caught.value.message


def test_fits_refusals_name_the_reason(tmp_path: Path) -> None:
    _write_bands(tmp_path, "nowcs", wcs=False)
    assert _reason(lambda: load_fits(_group(tmp_path, "nowcs"), SIMULATOR_RECIPE, BANDS))[0] == NO_CELESTIAL_WCS
    _write_bands(tmp_path, "nan")
    write_fits_image(tmp_path / "nan_r.fits", np.full((40, 50), np.nan), celestial_wcs(150.0, 2.0, 0.4, (40, 50)))
    assert _reason(lambda: load_fits(_group(tmp_path, "nan"), SIMULATOR_RECIPE, BANDS))[0] == ALL_NAN
    _write_bands(tmp_path, "two", bands="gr")
    reason, message = _reason(lambda: load_fits(_group(tmp_path, "two"), SIMULATOR_RECIPE, BANDS))
    assert reason == WRONG_BAND_COUNT and "missing i" in message
    _write_bands(tmp_path, "shape")
    _write_bands(tmp_path, "shape", shape=(41, 50), bands="i")
    assert _reason(lambda: load_fits(_group(tmp_path, "shape"), SIMULATOR_RECIPE, BANDS))[0] == BAND_MISMATCH
    _write_bands(tmp_path, "counts", bunit="counts")
    reason, message = _reason(lambda: load_fits(_group(tmp_path, "counts"), SIMULATOR_RECIPE, BANDS))
    assert reason == RECIPE_MISMATCH and "--zeropoint" in message
    assert load_fits(_group(tmp_path, "counts"), SIMULATOR_RECIPE, BANDS, zeropoint=22.5).pixels.shape == (40, 50, 3)


def test_single_frames_and_cubes(tmp_path: Path) -> None:
    wcs = celestial_wcs(150.0, 2.0, 0.4, (20, 30))
    write_fits_image(tmp_path / "frame.fits", np.ones((20, 30)), wcs, {"BUNIT": "nanomaggy"})
    frame = InputUnit(file="frame.fits", kind="fits", path=str(tmp_path / "frame.fits"))
    reason, message = _reason(lambda: load_fits(frame, SIMULATOR_RECIPE, BANDS))
    assert reason == WRONG_BAND_COUNT and "one band" in message
    cube = np.random.default_rng(2).uniform(0, 1, (3, 20, 30))
    header = fits_header(wcs, {"BUNIT": "nanomaggy"})
    fits.PrimaryHDU(cube, header).writeto(tmp_path / "cube.fits")
    unit = InputUnit(file="cube.fits", kind="fits", path=str(tmp_path / "cube.fits"))
    reason, message = _reason(lambda: load_fits(unit, SIMULATOR_RECIPE, BANDS))
    assert reason == RECIPE_MISMATCH and "--cube-bands" in message
    by_flag = load_fits(unit, SIMULATOR_RECIPE, BANDS, cube_bands=("g", "r", "i"))
    named = header.copy()
    named.update({"BAND1": "g", "BAND2": "r", "BAND3": "i"})
    fits.PrimaryHDU(cube, named).writeto(tmp_path / "named.fits")
    by_header = load_fits(InputUnit(file="n", kind="fits", path=str(tmp_path / "named.fits")), SIMULATOR_RECIPE, BANDS)
    assert np.array_equal(by_flag.pixels, by_header.pixels)
    for band, plane in zip("gri", cube, strict=True):  # the same data as per-band files renders the same
        write_fits_image(tmp_path / f"split_{band}.fits", plane, wcs, {"BUNIT": "nanomaggy"})
    assert np.array_equal(load_fits(_group(tmp_path, "split"), SIMULATOR_RECIPE, BANDS).pixels, by_flag.pixels)
    fits.PrimaryHDU(cube[:2], header).writeto(tmp_path / "two.fits")
    two = InputUnit(file="two.fits", kind="fits", path=str(tmp_path / "two.fits"))
    assert _reason(lambda: load_fits(two, SIMULATOR_RECIPE, BANDS))[0] == WRONG_BAND_COUNT


def test_pictures_must_be_what_the_recipe_makes(tmp_path: Path) -> None:
    rgb = np.random.default_rng(3).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "ok.png")
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "alpha.png")
    Image.fromarray(rgb[:, :, 0]).save(tmp_path / "grey.png")
    Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 200).save(tmp_path / "deep.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "ok.png").read_bytes()[:300])
    (tmp_path / "text.png").write_text("not an image")

    def unit(name: str) -> InputUnit:
        return InputUnit(file=name, kind="picture", path=str(tmp_path / name))

    assert np.array_equal(load_picture(unit("ok.png"), SIMULATOR_RECIPE).pixels, rgb)
    assert np.array_equal(load_picture(unit("alpha.png"), SIMULATOR_RECIPE).pixels, rgb)
    assert _reason(lambda: load_picture(unit("grey.png"), SIMULATOR_RECIPE))[0] == RECIPE_MISMATCH
    reason, message = _reason(lambda: load_picture(unit("deep.png"), SIMULATOR_RECIPE))
    assert reason == RECIPE_MISMATCH and "16-bit" in message
    assert _reason(lambda: load_picture(unit("cut.png"), SIMULATOR_RECIPE))[0] == UNREADABLE_IMAGE
    assert _reason(lambda: load_picture(unit("text.png"), SIMULATOR_RECIPE))[0] == UNREADABLE_IMAGE


def test_photometry_bands_are_flux_per_pixel_whatever_the_unit(simulated: Path) -> None:
    png = sorted((simulated / "images").glob("*.png"))[0]
    loaded = load_fits(_group(simulated / "fits_cutout", png.stem), SIMULATOR_RECIPE, BANDS)
    data = fits.getdata(simulated / "fits_cutout" / f"{png.stem}_r.fits")
    area = loaded.sky.pixel_scale**2
    assert np.allclose(loaded.bands["r"].flux, data.astype(np.float64) * area, rtol=1e-12)
    assert loaded.bands["r"].zeropoint == 22.5
