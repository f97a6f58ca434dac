"""Which images pretraining reads, how, and what it says about the ones it cannot use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from astrodet.data.normalise import prepare, read_bands
from astrodet.errors import AstrodetInputError
from astrodet.inference.model import ImageRecipe
from astrodet.pretraining.inputs import (
    DETECTION_PIXEL_MEAN,
    DETECTION_PIXEL_STD,
    ImageSource,
    PixelRecipe,
    check_channels,
    discover,
    load_pixels,
    read_bank,
    refuse_output_in_inputs,
)
from tests.data.fits_samples import UGRIZ, write_fits_cube
from tests.pretraining.conftest import write_pictures

UGRIZ_RECIPE = ImageRecipe(kind="float", bands=UGRIZ, stretch="asinh", channels=5)


def test_folders_are_searched_recursively_and_other_files_counted(tmp_path: Path) -> None:
    pictures = write_pictures(tmp_path / "a", 3) + write_pictures(tmp_path / "a" / "deeper", 2)
    (tmp_path / "a" / "catalogue.txt").write_text("id\n")
    (tmp_path / "a" / ".hidden.png").write_bytes(pictures[0].read_bytes())
    write_fits_cube(tmp_path / "a" / "cube.fits", np.zeros((5, 16, 16)), UGRIZ)
    found = discover([tmp_path / "a", pictures[0]])  # one picture named twice
    assert sorted(s.path for s in found.sources if s.kind == "picture") == sorted(pictures)
    assert found.kinds() == {"picture": 5, "fits": 1}
    assert found.ignored == {".txt": 1, ".png": 1} and found.duplicates == 1


def test_a_coco_file_gives_its_image_records_with_their_bands(tiny_fits_train: Path) -> None:
    found = discover([tiny_fits_train])
    assert found.kinds() == {"fits": 41} and not found.ignored
    assert all(s.path.is_file() and s.record_bands == UGRIZ for s in found.sources)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "no such file or folder"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "no images"),
        (lambda p: (p / "notes.txt").write_text("x") and p / "notes.txt", "not an image"),
    ],
)
def test_nothing_to_read_is_a_one_line_error_naming_the_input(tmp_path: Path, make, message: str) -> None:
    path = make(tmp_path)
    with pytest.raises(AstrodetInputError, match=message) as err:
        discover([path])
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_pictures_are_standardised_as_the_detection_configs_do(tmp_path: Path) -> None:
    (path,) = write_pictures(tmp_path, 1, size=40)
    pixels = load_pixels(ImageSource(path, "picture"), PixelRecipe(None), size=40)
    from PIL import Image

    raw = np.asarray(Image.open(path), dtype=np.float32).transpose(2, 0, 1)
    expected = (raw - np.array(DETECTION_PIXEL_MEAN)[:, None, None]) / np.array(DETECTION_PIXEL_STD)[:, None, None]
    assert pixels.shape == (3, 40, 40) and np.allclose(pixels, expected, atol=1e-5)


def test_fits_bands_are_normalised_by_the_recipe_in_its_band_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    cube = rng.normal(0, 0.02, (5, 24, 24)) + np.arange(5)[:, None, None] * 0.5
    write_fits_cube(tmp_path / "c.fits", cube, UGRIZ)
    reversed_recipe = ImageRecipe(kind="float", bands=UGRIZ[::-1], stretch="none", channels=5)
    pixels = load_pixels(ImageSource(tmp_path / "c.fits", "fits"), PixelRecipe(reversed_recipe), size=24)
    expected = prepare(read_bands(tmp_path / "c.fits", UGRIZ[::-1]), reversed_recipe).transpose(2, 0, 1)
    assert np.allclose(pixels, expected) and pixels[0].mean() > pixels[4].mean() + 1.5  # z first, u last


def test_unreadable_images_are_rejected_with_a_reason_and_counted(tmp_path: Path) -> None:
    pictures = write_pictures(tmp_path, 3)
    data = pictures[1].read_bytes()
    pictures[1].write_bytes(data[: len(data) // 2])  # cut short: its header still parses
    write_fits_cube(tmp_path / "four_bands.fits", np.zeros((4, 16, 16)), UGRIZ[:4])
    sources = [ImageSource(p, "picture") for p in pictures] + [ImageSource(tmp_path / "four_bands.fits", "fits")]
    bank = read_bank(sources, PixelRecipe(UGRIZ_RECIPE), size=16)
    assert bank.files == [str(pictures[0]), str(pictures[2])] and bank.images.shape == (2, 3, 16, 16)
    assert bank.images.dtype == torch.float16
    assert bank.rejects.counts() == {"missing_bands": 1, "unreadable_image": 1}
    assert [r.file for r in bank.rejects] == [str(pictures[1]), str(tmp_path / "four_bands.fits")]


def test_no_usable_image_is_an_error_naming_the_commonest_reason(tmp_path: Path) -> None:
    write_fits_cube(tmp_path / "a.fits", np.zeros((5, 16, 16)), UGRIZ)
    six_bands = ImageRecipe(kind="float", bands=(*UGRIZ, "y"), stretch="asinh", channels=6)
    with pytest.raises(AstrodetInputError, match=r"none of the 1 images could be used \(missing_bands: 1"):
        read_bank([ImageSource(tmp_path / "a.fits", "fits")], PixelRecipe(six_bands), size=16)


def test_band_counts_must_agree_and_fits_needs_its_bands() -> None:
    with pytest.raises(AstrodetInputError, match="one band count"):
        check_channels({"picture": 3, "fits": 2}, PixelRecipe(UGRIZ_RECIPE))
    with pytest.raises(AstrodetInputError, match="--bands"):
        check_channels({"fits": 2}, PixelRecipe(None))
    assert check_channels({"fits": 2}, PixelRecipe(UGRIZ_RECIPE)) == 5
    assert check_channels({"picture": 2}, PixelRecipe(None)) == 3
    with pytest.raises(AstrodetInputError, match="3 values"):
        PixelRecipe(None, picture_mean=(0.0,), picture_std=(1.0,))


def test_the_output_never_goes_into_an_input_folder(tmp_path: Path) -> None:
    write_pictures(tmp_path / "images", 1)
    for out in (tmp_path / "images" / "enc.pth", tmp_path / "images" / "sub" / "enc.pth"):
        with pytest.raises(AstrodetInputError, match="inside the input folder"):
            refuse_output_in_inputs(out, [tmp_path / "images"])
    refuse_output_in_inputs(tmp_path / "out" / "enc.pth", [tmp_path / "images"])
