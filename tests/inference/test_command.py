"""``astrodet predict`` end to end with a fake model: rejects with reasons, exit codes, messages, classifiers."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from astrodet import cli
from astrodet.data.imaging import celestial_wcs, write_fits_image
from astrodet.errors import AstrodetInputError
from astrodet.inference import command
from astrodet.inference.catalogue import read_catalogue
from astrodet.inference.model import SIMULATOR_RECIPE, ImageRecipe, load_model
from tests.inference.fakes import MeanColourClassifier, PeakDetector


@pytest.fixture
def use_model(monkeypatch: pytest.MonkeyPatch):
    def install(model) -> None:
        monkeypatch.setattr(command, "load_model", lambda config, weights, device="auto": model)

    return install


def _predict(fake_config: tuple[str, str], *args: str) -> int:
    config, weights = fake_config
    return cli.main(["predict", "--config", config, "--weights", weights, "--no-progress", *args])


def _bad_inputs(simulated: Path, folder: Path) -> list[str]:
    """One good cutout and one input per reject reason."""
    good = sorted((simulated / "images").glob("*.png"))[0]
    shutil.copy(good, folder / "good.png")
    Image.open(good).convert("L").save(folder / "grey.png")
    (folder / "cut.png").write_bytes(good.read_bytes()[:500])
    shape, wcs = (30, 30), celestial_wcs(10.0, 20.0, 0.4, (30, 30))
    for band in "gri":
        write_fits_image(folder / f"nowcs_{band}.fits", np.ones(shape), None, {"BUNIT": "nanomaggy"})
        value = np.full(shape, np.nan) if band == "r" else np.ones(shape)
        write_fits_image(folder / f"nan_{band}.fits", value, wcs, {"BUNIT": "nanomaggy"})
        write_fits_image(folder / f"odd_{band}.fits", np.ones((30, 31) if band == "g" else shape), wcs)
    write_fits_image(folder / "single.fits", np.ones(shape), wcs, {"BUNIT": "nanomaggy"})
    return [str(folder)]


def test_every_bad_input_is_a_reject_and_the_counts_add_up(
    simulated: Path, tmp_path: Path, fake_config, use_model, capsys: pytest.CaptureFixture[str]
) -> None:
    use_model(PeakDetector())
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    out = tmp_path / "cat.ecsv"
    assert _predict(fake_config, *_bad_inputs(simulated, inputs), "--out", str(out)) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("7 inputs = 1 predicted + 6 rejected (")
    with open(tmp_path / "cat_rejects.csv", newline="") as handle:
        rejects = {row["file"]: row for row in csv.DictReader(handle)}
    reasons = {Path(file).name: row["reason"] for file, row in rejects.items()}
    assert reasons == {
        "cut.png": "unreadable_image",
        "grey.png": "recipe_mismatch",
        "nowcs_{band}.fits": "no_celestial_wcs",
        "nan_{band}.fits": "all_nan",
        "odd_{band}.fits": "band_mismatch",
        "single.fits": "wrong_band_count",
    }
    assert all(row["message"] for row in rejects.values())
    table = read_catalogue(out)
    assert set(table["file"]) == {str(inputs / "good.png")}
    assert table.meta["inputs"] == 7 and table.meta["rejected"] == 6
    assert _predict(fake_config, str(inputs), "--out", str(tmp_path / "strict.fits"), "--strict") == 1


def test_user_errors_exit_2_with_one_line(
    simulated: Path, tmp_path: Path, fake_config, use_model, capsys: pytest.CaptureFixture[str]
) -> None:
    use_model(PeakDetector())
    image = str(sorted((simulated / "images").glob("*.png"))[0])
    cases = [
        ([str(tmp_path / "missing.png"), "--out", str(tmp_path / "a.fits")], "missing.png: no such file or folder"),
        ([image, "--out", str(tmp_path / "a.txt")], "unknown catalogue extension '.txt'"),
        ([image, "--out", str(tmp_path / "a.fits"), "--nms-iou", "0"], "--nms-iou"),
        ([image, "--out", str(tmp_path / "a.fits"), "--meta", image], "is not UTF-8 text"),
    ]
    for args, message in cases:
        assert _predict(fake_config, *args) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("astrodet predict: error: ") and message in err and "\n" not in err
    (tmp_path / "b.fits.parts").mkdir()
    assert _predict(fake_config, image, "--out", str(tmp_path / "b.fits")) == 2
    assert "pass --resume" in capsys.readouterr().err


def test_coco_inputs_carry_their_sky_position(simulated: Path, tmp_path: Path, fake_config, use_model) -> None:
    use_model(PeakDetector())
    with open(simulated / "galaxies.csv", newline="") as handle:
        galaxies = list(csv.DictReader(handle))
    images = [{"id": k + 1, "file_name": g["filename"], "width": 400, "height": 400, "ra": float(g["ra"]),
               "dec": float(g["dec"]), "pixel_scale": float(g["pixel_scale"])} for k, g in enumerate(galaxies)]
    coco = {"images": images, "annotations": [], "categories": [{"id": 1, "name": "clump"}]}  # fmt: skip
    (simulated / "set.json").write_text(json.dumps(coco))
    try:
        assert _predict(fake_config, str(simulated / "set.json"), "--out", str(tmp_path / "coco.ecsv")) == 0
    finally:
        (simulated / "set.json").unlink()
    meta_args = [str(simulated / "images"), "--meta", str(simulated / "galaxies.csv")]
    assert _predict(fake_config, *meta_args, "--out", str(tmp_path / "meta.ecsv")) == 0
    by_coco, by_meta = read_catalogue(tmp_path / "coco.ecsv"), read_catalogue(tmp_path / "meta.ecsv")
    assert len(by_coco) == len(by_meta) > 0
    assert np.array_equal(by_coco["ra"], by_meta["ra"]) and np.array_equal(by_coco["dec"], by_meta["dec"])


def test_crop_predicts_only_the_central_frame(simulated: Path, tmp_path: Path, fake_config, use_model) -> None:
    use_model(PeakDetector())
    assert _predict(fake_config, str(simulated / "images"), "--out", str(tmp_path / "all.ecsv")) == 0
    assert _predict(fake_config, str(simulated / "images"), "--crop", "200", "--out", str(tmp_path / "c.ecsv")) == 0
    whole, crop = read_catalogue(tmp_path / "all.ecsv"), read_catalogue(tmp_path / "c.ecsv")
    assert len(crop) < len(whole)
    assert (crop["x_min"] >= 100).all() and (crop["x_max"] <= 300).all()


def test_classifiers_give_one_row_per_input_with_probabilities(
    simulated: Path, tmp_path: Path, fake_config, use_model
) -> None:
    use_model(MeanColourClassifier())
    out = tmp_path / "classes.parquet"
    assert _predict(fake_config, str(simulated / "images"), "--out", str(out)) == 0
    table = read_catalogue(out)
    assert len(table) == 6 and table.colnames[:5] == ["file", "image_index", "class_name", "class_id", "score"]
    probabilities = np.column_stack([table[f"p_{c}"] for c in ("red", "green", "blue")])
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert np.array_equal(table["score"], probabilities.max(axis=1))
    assert table.meta["task"] == "classification"


def test_a_model_with_another_recipe_refuses_fits(simulated: Path, tmp_path: Path, fake_config, use_model) -> None:
    use_model(PeakDetector(recipe=ImageRecipe("rgb8", ("i", "r", "g"), "none", {}, 3)))
    assert _predict(fake_config, str(simulated / "fits_cutout"), "--out", str(tmp_path / "x.csv")) == 0
    with open(tmp_path / "x_rejects.csv", newline="") as handle:
        assert {row["reason"] for row in csv.DictReader(handle)} == {"recipe_mismatch"}


def test_load_model_refuses_before_importing_a_framework(tmp_path: Path) -> None:
    (tmp_path / "m.pkl").write_bytes(b"x")
    (tmp_path / "c.yaml").write_text("x")
    (tmp_path / "c.toml").write_text("x")
    with pytest.raises(AstrodetInputError, match="pkl"):
        load_model(tmp_path / "c.yaml", tmp_path / "m.pkl")
    with pytest.raises(AstrodetInputError, match="cannot tell the framework"):
        load_model(tmp_path / "c.toml", tmp_path / "m.pkl")
    with pytest.raises(AstrodetInputError, match="no such file"):
        load_model(tmp_path / "c.yaml", tmp_path / "missing.pth")
    assert ImageRecipe.from_dict(SIMULATOR_RECIPE.to_dict()) == SIMULATOR_RECIPE
