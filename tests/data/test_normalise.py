"""Multi-band float images: reading every COCO record form, each normalisation, and refusals naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.visualization import ManualInterval, ZScaleInterval, make_lupton_rgb

from astrodet.data.coco import CocoBuilder, write_coco
from astrodet.data.imaging import UnreadableImage, celestial_wcs, fits_header, write_fits_image
from astrodet.data.normalise import (
    BandShapeMismatch,
    MissingBands,
    band_statistics,
    coco_band_statistics,
    normalise,
    preview_rgb,
    read_bands,
    read_record,
    sky_statistics,
)
from astrodet.errors import AstrodetInputError
from astrodet.inference.model import ImageRecipe

UGRIZ = ("u", "g", "r", "i", "z")


def write_cube(path: Path, data: np.ndarray, bands=UGRIZ, bunit: str = "nanomaggy/arcsec2", wcs: bool = True) -> None:
    """A (C, H, W) float32 cube as the FITS contract describes it: BAND1..BANDC, BUNIT, a celestial WCS."""
    shape = data.shape[1:]
    cards = {f"BAND{k}": band for k, band in enumerate(bands, start=1)}
    header = fits_header(celestial_wcs(150.0, 2.0, 0.396, shape) if wcs else None, {"BUNIT": bunit, **cards})
    fits.PrimaryHDU(np.asarray(data, dtype=np.float32), header).writeto(path)


def sky_cube(seed: int = 0, shape=(5, 48, 64), sigma: float = 0.02) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cube = rng.normal(0.0, sigma, shape)
    cube[:, 20:26, 30:36] += np.linspace(1.0, 5.0, shape[0])[:, None, None]  # a bright source in every band
    return cube.astype(np.float32)


def recipe(stretch: str, bands=UGRIZ, **params) -> ImageRecipe:
    return ImageRecipe("float", bands, stretch, params, len(bands))


# ------------------------------------------------------------------------------------------------- reading


def test_every_record_form_reads_the_same_bands(tmp_path: Path) -> None:
    cube = sky_cube()
    write_cube(tmp_path / "cube.fits", cube)
    wcs = celestial_wcs(150.0, 2.0, 0.396, cube.shape[1:])
    band_files = {}
    for band, plane in zip(UGRIZ, cube, strict=True):
        band_files[band] = tmp_path / f"frame_{band}.fits"
        write_fits_image(band_files[band], plane, wcs, {"BUNIT": "nanomaggy/arcsec2", "BAND": band})
    np.save(tmp_path / "cube.npy", cube)
    wanted = ("g", "r", "i")
    from_cube = read_bands(tmp_path / "cube.fits", wanted)
    from_files = read_bands(band_files["u"], wanted, band_files=band_files)
    from_npy = read_bands(tmp_path / "cube.npy", wanted, names=UGRIZ)
    from_frame = read_bands(band_files["r"], ("r",))
    for read in (from_cube, from_files, from_npy):
        assert read.bands == wanted and read.data.dtype == np.float32
        assert np.array_equal(read.data, cube[1:4])  # selected and ordered by the recipe, rows as stored
    assert np.array_equal(from_frame.data[0], cube[2])
    assert from_cube.headers[0]["BUNIT"] == "nanomaggy/arcsec2" and from_npy.headers == (None, None, None)
    reordered = read_bands(tmp_path / "cube.fits", ("z", "u"))
    assert np.array_equal(reordered.data, cube[[4, 0]])


def test_reading_refusals_name_the_file(tmp_path: Path) -> None:
    cube = sky_cube()
    write_cube(tmp_path / "cube.fits", cube)
    with pytest.raises(MissingBands, match=r"cube\.fits.*missing \['y'\]"):
        read_bands(tmp_path / "cube.fits", ("g", "y"))
    fits.PrimaryHDU(cube).writeto(tmp_path / "unnamed.fits")
    with pytest.raises(MissingBands, match=r"unnamed\.fits: its 5 plane\(s\) carry no band names"):
        read_bands(tmp_path / "unnamed.fits", ("g",))
    np.save(tmp_path / "plain.npy", cube)
    with pytest.raises(MissingBands, match=r"plain\.npy.*'bands'"):
        read_bands(tmp_path / "plain.npy", ("g",))
    with pytest.raises(MissingBands, match="5 plane"):
        read_bands(tmp_path / "plain.npy", ("g",), names=("g", "r"))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(UnreadableImage, match=r"objects\.npy: not a readable \.npy"):
        read_bands(tmp_path / "objects.npy", ("g",), names=("g",))
    (tmp_path / "cut.fits").write_bytes((tmp_path / "cube.fits").read_bytes()[:5000])
    with pytest.raises(UnreadableImage, match=r"cut\.fits: the file ends inside the data"):
        read_bands(tmp_path / "cut.fits", ("g",))
    with pytest.raises(UnreadableImage, match=r"missing\.fits: no such file"):
        read_bands(tmp_path / "missing.fits", ("g",))
    (tmp_path / "picture.png").write_bytes(b"x")
    with pytest.raises(UnreadableImage, match=r"picture\.png: expected a FITS file"):
        read_bands(tmp_path / "picture.png", ("g",))
    write_fits_image(tmp_path / "g.fits", np.zeros((10, 10)), None, {"BAND": "g"})
    write_fits_image(tmp_path / "r.fits", np.zeros((10, 11)), None, {"BAND": "r"})
    with pytest.raises(BandShapeMismatch, match="differ in shape"):
        read_bands(tmp_path / "g.fits", ("g", "r"), band_files={"g": tmp_path / "g.fits", "r": tmp_path / "r.fits"})
    with pytest.raises(MissingBands, match=r"band_files name \['g', 'r'\], not band i"):
        read_bands(tmp_path / "g.fits", ("i",), band_files={"g": tmp_path / "g.fits", "r": tmp_path / "r.fits"})


def test_units_are_converted_to_the_recipes(tmp_path: Path) -> None:
    surface = sky_cube(1)
    write_cube(tmp_path / "surface.fits", surface)
    area = 0.396**2
    write_cube(tmp_path / "per_pixel.fits", surface * area, bunit="nanomaggy")
    write_cube(tmp_path / "counts.fits", surface, bunit="adu")
    unit = {"unit": "nanomaggy/arcsec2"}
    a = read_record(tmp_path / "surface.fits", recipe("none", **unit))
    b = read_record(tmp_path / "per_pixel.fits", recipe("none", **unit))
    assert np.allclose(a, b, rtol=1e-5, atol=1e-7) and np.allclose(a, surface.transpose(1, 2, 0))
    with pytest.raises(AstrodetInputError, match=r"counts\.fits: BUNIT 'adu' with no zero point"):
        read_record(tmp_path / "counts.fits", recipe("none", **unit))
    np.save(tmp_path / "cube.npy", surface)
    with pytest.raises(AstrodetInputError, match=r"cube\.npy: a \.npy array carries no unit"):
        read_record(tmp_path / "cube.npy", recipe("none", **unit), record_bands=UGRIZ)


# ------------------------------------------------------------------------------------------------- normalisations


def test_asinh_puts_sky_noise_near_one_and_does_not_depend_on_units() -> None:
    cube = sky_cube(2, shape=(2, 200, 200), sigma=0.03)
    out = normalise(cube, "asinh", {"softening": 5.0})
    sky = out[:, 100:, :]  # source-free rows
    assert np.all(np.abs(sky.std(axis=(1, 2)) - 1.0) < 0.05) and np.all(np.abs(np.median(sky, axis=(1, 2))) < 0.05)
    scaled = normalise(cube * 1000.0 + 7.0, "asinh", {"softening": 5.0})
    assert np.allclose(out, scaled, atol=1e-4)  # sky level and noise are measured per band and image
    sky_level, sigma = sky_statistics(cube[1])
    expected = 5.0 * np.arcsinh((cube[1, 22, 32] - sky_level) / (5.0 * sigma))
    assert out[1, 22, 32] == pytest.approx(expected, rel=1e-5)
    assert out[1, 22, 32] < (cube[1, 22, 32] - sky_level) / sigma / 5  # bright pixels compressed (170 sigma -> 21)
    clipped = normalise(cube, "asinh", {"softening": 5.0, "clip": [-3.0, 10.0]})
    assert clipped.min() >= -3.0 and clipped.max() == 10.0


def test_lupton_of_three_bands_is_astropys_and_generalises_to_five() -> None:
    cube = sky_cube(3, shape=(3, 40, 40)).astype(np.float64) * 3
    ours = normalise(cube, "lupton", {"stretch": 2.0, "Q": 6.0, "minimum": -0.05})
    theirs = make_lupton_rgb(*cube, interval=ManualInterval(vmin=-0.05), stretch=2.0, Q=6.0, output_dtype=np.float64)
    assert np.allclose(ours.transpose(1, 2, 0), theirs, atol=1e-6)
    five = normalise(sky_cube(4) * 3, "lupton", {"stretch": 2.0, "Q": 6.0})
    assert five.min() >= 0.0 and five.max() <= 1.0 + 1e-6
    lit = (five > 0.01).all(axis=0) & (five.max(axis=0) < 0.99)  # colours kept where nothing saturates
    source = (sky_cube(4) * 3)[:, lit]
    assert lit.sum() > 5 and np.allclose(five[:, lit] / five[:, lit].sum(0), source / source.sum(0), atol=1e-4)


def test_zscale_maps_each_bands_limits_to_zero_and_one() -> None:
    cube = sky_cube(5)
    out = normalise(cube, "zscale", {})
    for band, plane in zip(cube, out, strict=True):
        low, high = ZScaleInterval().get_limits(band)
        inside = (band > low) & (band < high)
        assert np.allclose(plane[inside], ((band[inside] - low) / (high - low)), atol=1e-6)
        assert plane.min() == 0.0 and plane.max() == 1.0


def test_standardise_uses_stored_training_statistics(tmp_path: Path) -> None:
    cubes = [sky_cube(seed) for seed in (6, 7)]
    stats = band_statistics(cubes)
    pooled = np.concatenate([c.reshape(5, -1) for c in cubes], axis=1).astype(np.float64)
    assert np.allclose(stats["mean"], pooled.mean(axis=1)) and np.allclose(stats["std"], pooled.std(axis=1))
    out = normalise(cubes[0], "standardise", stats)
    expected = (cubes[0] - np.array(stats["mean"])[:, None, None]) / np.array(stats["std"])[:, None, None]
    assert np.allclose(out, expected, atol=1e-6)
    builder = CocoBuilder()
    builder.add_category("clump")
    for k, cube in enumerate(cubes):
        write_cube(tmp_path / f"c{k}.fits", cube)
        builder.add_image(f"c{k}.fits", 64, 48, bands=list(UGRIZ))
    write_coco(builder.to_dict(), tmp_path / "train.json")
    from_file = coco_band_statistics(tmp_path / "train.json", UGRIZ)
    assert np.allclose(from_file["mean"], stats["mean"], rtol=1e-6) and np.allclose(from_file["std"], stats["std"])


def test_non_finite_pixels_become_zero_and_an_empty_band_is_refused(tmp_path: Path) -> None:
    cube = sky_cube(8)
    cube[2, :5, :5] = np.nan
    cube[3, 0, 0] = np.inf
    for stretch, params in (("asinh", {}), ("zscale", {}), ("lupton", {}), ("none", {})):
        out = normalise(cube, stretch, params)
        assert np.isfinite(out).all() and out[2, 0, 0] == 0.0 and out[3, 0, 0] == 0.0, stretch
    cube[1] = np.nan
    write_cube(tmp_path / "holes.fits", cube)
    with pytest.raises(AstrodetInputError, match=r"holes\.fits: band 2 of 5 has no finite pixel"):
        read_record(tmp_path / "holes.fits", recipe("asinh"))


def test_recipe_params_are_checked() -> None:
    with pytest.raises(AstrodetInputError, match=r"asinh takes params .*not \['Q'\]"):
        recipe("asinh", Q=3)
    with pytest.raises(AstrodetInputError, match=r"standardise needs params \['mean', 'std'\]"):
        recipe("standardise")
    with pytest.raises(AstrodetInputError, match="mean has 2 values for 5 bands"):
        recipe("standardise", mean=[0, 0], std=[1] * 5)
    with pytest.raises(AstrodetInputError, match="unit 'adu'"):
        recipe("none", unit="adu")
    with pytest.raises(AstrodetInputError, match="not one of"):
        recipe("sqrt")
    assert ImageRecipe.from_dict(recipe("asinh", softening=3.0).to_dict()) == recipe("asinh", softening=3.0)


def test_previews_are_eight_bit_pictures_of_three_bands(tmp_path: Path) -> None:
    write_cube(tmp_path / "cube.fits", sky_cube(9))
    picture = preview_rgb(tmp_path / "cube.fits")
    assert picture.shape == (48, 64, 3) and picture.dtype == np.uint8
    assert picture[22, 32].min() == 255 and np.median(picture[:10]) < 200  # the source is bright, the sky is not
