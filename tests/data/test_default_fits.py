"""The FITS form of the embedded default (``tiny_fits`` for ``tiny``): the same galaxies, split and boxes, each image
a float32 u, g, r, i, z cube of the crop whose g, r, i planes colour into exactly the PNG form's pixels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from PIL import Image

from astrodet.data import catalogue
from astrodet.data.coco import load_coco, resolve_image_path
from astrodet.data.default import FITS_BANDS, SIMULATED
from astrodet.data.imaging import lupton_rgb
from tests.conftest import astrodet_cache_env


@pytest.fixture(scope="module")
def both_forms(tiny_cache: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """``{split: COCO file}`` of ``tiny`` and of ``tiny_fits``, built in the session's cache."""
    with astrodet_cache_env(tiny_cache):
        return catalogue.ensure("tiny", progress=False), catalogue.ensure("tiny_fits", progress=False)


def test_the_fits_recipes_pair_the_png_ones() -> None:
    for png, fits_form in (("default", "default_fits"), ("tiny", "tiny_fits")):
        a, b = SIMULATED[png], SIMULATED[fits_form]
        assert (a.n_galaxies, a.seed, a.categories, a.splits) == (b.n_galaxies, b.seed, b.categories, b.splits)
        assert a.key() != b.key() and fits_form in catalogue.names("detection")


def test_same_images_split_and_boxes_flipped_to_fits_rows(both_forms) -> None:
    png_form, fits_form = both_forms
    for split in png_form:
        png, cube = load_coco(png_form[split]), load_coco(fits_form[split])
        assert cube["categories"] == png["categories"]
        assert [i["galaxy_id"] for i in cube["images"]] == [i["galaxy_id"] for i in png["images"]]
        heights = {i["id"]: i["height"] for i in png["images"]}
        assert len(cube["annotations"]) == len(png["annotations"]) > 0
        for a, b in zip(png["annotations"], cube["annotations"], strict=True):
            x, y, w, h = a["bbox"]
            assert b["bbox"] == [x, heights[a["image_id"]] - y - h, w, h]
            assert (b["image_id"], b["category_id"], b["area"]) == (a["image_id"], a["category_id"], a["area"])
        for image in cube["images"]:
            assert image["bands"] == list(FITS_BANDS) and (image["width"], image["height"]) == (200, 200)
        assert cube["info"]["image_form"]["bands"] == list(FITS_BANDS)


def test_cubes_carry_bands_units_and_the_crop_wcs(both_forms) -> None:
    _, fits_form = both_forms
    data = load_coco(fits_form["val"])
    for image in data["images"]:
        with fits.open(resolve_image_path(fits_form["val"], image["file_name"], data["info"])) as hdul:
            cube, header = hdul[0].data, hdul[0].header
        assert cube.shape == (5, 200, 200) and cube.dtype == np.dtype(">f4")
        assert [header[f"BAND{k}"] for k in range(1, 6)] == list(FITS_BANDS)
        assert header["BUNIT"] == "nanomaggy/arcsec2"
        wcs = WCS(header).celestial
        assert wcs.pixel_shape == (200, 200)
        ra, dec = wcs.pixel_to_world_values(99.5, 99.5)  # the crop's centre: the galaxy
        assert (float(ra), float(dec)) == pytest.approx((image["ra"], image["dec"]), abs=1e-9)
        scale = np.abs(wcs.pixel_scale_matrix.diagonal()) * 3600
        assert scale == pytest.approx([image["pixel_scale"]] * 2)
        assert wcs.pixel_scale_matrix[1, 1] > 0  # row 0 = south: declination grows with the row
        noise = np.median(np.abs(np.diff(cube.astype(float), axis=2)).reshape(5, -1), axis=1)  # pixel to pixel
        assert noise[0] > 1.5 * noise[1] and noise[4] > 3 * noise[2]  # u and z far noisier than g and r, as SDSS


def test_g_r_i_planes_colour_into_the_png_crops_exactly(both_forms) -> None:
    png_form, fits_form = both_forms
    png, cube = load_coco(png_form["train"]), load_coco(fits_form["train"])
    for a, b in zip(png["images"][:12], cube["images"][:12], strict=True):
        crop = np.asarray(Image.open(resolve_image_path(png_form["train"], a["file_name"], png["info"])))
        planes = fits.getdata(resolve_image_path(fits_form["train"], b["file_name"], cube["info"]))
        g, r, i = (planes[FITS_BANDS.index(band)][::-1] for band in "gri")  # back to the PNG's row order
        assert np.array_equal(lupton_rgb(g, r, i), crop)


def test_the_png_form_inside_is_the_tiny_set(both_forms) -> None:
    png_form, fits_form = both_forms
    folder = fits_form["train"].parent
    ready = json.loads((folder / "READY.json").read_text())
    assert ready["name"] == "tiny_fits" and ready["spec"]["bands"] == list(FITS_BANDS)
    for path in png_form.values():
        inside = folder / path.name
        a, b = load_coco(path), load_coco(inside)
        assert (a["images"], a["annotations"]) == (b["images"], b["annotations"])
        for image in a["images"][:5]:
            assert (path.parent / image["file_name"]).read_bytes() == (inside.parent / image["file_name"]).read_bytes()
    assert not (folder / "simulation" / "images").exists()  # the 400x400 cutouts are not kept
