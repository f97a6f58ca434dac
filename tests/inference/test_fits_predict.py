"""``astrodet predict`` with a float-recipe (FITS-native) model: the training normalisation, no flip, right sky."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from astrodet import cli
from astrodet.data.normalise import read_record
from astrodet.inference import command
from astrodet.inference.catalogue import read_catalogue
from astrodet.inference.model import Detections, ImageRecipe
from tests.data.fits_samples import UGRIZ, write_fits_cube

RECIPE = ImageRecipe("float", UGRIZ, "asinh", {"softening": 5.0}, 5)


class BrightestPixel:
    """Reports one 8 px box centred on the brightest pixel of the band sum; keeps what it was given."""

    framework = "fake"
    task = "detection"
    classes = ("clump", "odd_clump")
    recipe = RECIPE
    input_size = None

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def predict(self, images: Sequence[np.ndarray]) -> list[Detections]:
        out = []
        for image in images:
            self.seen.append(image)
            row, col = np.unravel_index(np.argmax(image.sum(axis=2)), image.shape[:2])
            out.append(Detections([[col + 0.5 - 4, row + 0.5 - 4, col + 0.5 + 4, row + 0.5 + 4]], [0.9], [0]))
        return out


def test_fits_inputs_are_normalised_as_in_training_and_placed_on_the_sky(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(0)
    cube = rng.normal(0.0, 0.02, (5, 60, 80))
    row, col = 12, 50  # near the FIRST rows of the array: the bottom of a north-up picture
    cube[:, row - 1 : row + 2, col - 1 : col + 2] += 3.0
    cube[:, row, col] += 3.0  # the brightest pixel
    write_fits_cube(tmp_path / "cube.fits", cube, UGRIZ)
    model = BrightestPixel()
    monkeypatch.setattr(command, "load_model", lambda config, weights, device="auto": model)
    (tmp_path / "m.yaml").write_text("MODEL: {}\n")
    (tmp_path / "m.pth").write_bytes(b"fake")
    out = tmp_path / "found.ecsv"
    args = ["predict", "--config", str(tmp_path / "m.yaml"), "--weights", str(tmp_path / "m.pth"), "--no-progress"]
    assert cli.main([*args, str(tmp_path / "cube.fits"), "--out", str(out)]) == 0
    (seen,) = model.seen
    assert seen.dtype == np.float32 and np.array_equal(seen, read_record(tmp_path / "cube.fits", RECIPE))
    (found,) = read_catalogue(out)
    assert (found["x"], found["y"]) == (col + 0.5, row + 0.5)  # the array frame, unflipped
    ra, dec = WCS(fits.getheader(tmp_path / "cube.fits"), naxis=2).pixel_to_world_values(col, row)
    assert found["ra"] == pytest.approx(ra, abs=1e-9) and found["dec"] == pytest.approx(dec, abs=1e-9)
    # photometry reads the same pixels: the source's flux, not the sky's
    assert found["flux_r"] > 0.5 * 12 * 3.0 * 0.396**2  # most of the source (nanomaggies); the sky there is ~0
