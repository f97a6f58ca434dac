"""Scale matching: the crop rule by hand, the training median from a split, and ``astrodet predict --match-psf``
end to end with a fake detector (one view per input, of the planned side; boxes back in the input's pixels)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from astrodet import cli
from astrodet.data.wholeimage import centre_crop_box
from astrodet.errors import AstrodetInputError
from astrodet.inference import command
from astrodet.inference.catalogue import read_catalogue
from astrodet.inference.scale_match import CropTooSmall, matched_side, plan_crop, training_psf_px
from tests.inference.fakes import PeakDetector


def test_the_crop_makes_the_psf_the_training_size() -> None:
    # 1.5" at 0.25"/px = 6 px; to span 12 of 200 model px the crop is 6 * 200 / 12 = 100 px
    assert matched_side(0.25, 1.5, 12.0, 200) == pytest.approx(100.0)
    plan = plan_crop(424, 424, 0.25, 1.5, 12.0, 200)
    assert (plan.side, plan.whole_image) == (100, False)
    assert plan.psf_input_px == pytest.approx(12.0)


def test_a_crop_larger_than_the_image_uses_the_whole_image() -> None:
    # 1.4" at 0.1"/px = 14 px needs 14 * 200 / 12 = 233 px of a 200 px cutout: the whole, PSF 14 model px
    plan = plan_crop(200, 240, 0.1, 1.4, 12.0, 200)
    assert (plan.side, plan.whole_image) == (200, True)
    assert plan.psf_input_px == pytest.approx(14.0)


def test_too_coarse_images_and_bad_numbers_are_refused() -> None:
    assert plan_crop(424, 424, 1.0, 1.0, 12.0, 200).side == 17  # 1 px PSF -> 16.7 px crop: still allowed
    with pytest.raises(CropTooSmall, match="under 16 px"):
        plan_crop(424, 424, 2.0, 1.0, 12.0, 200)  # 0.5 px PSF -> 8.3 px
    with pytest.raises(AstrodetInputError, match="pixel_scale: expected a finite number > 0"):
        plan_crop(424, 424, 0.0, 1.0, 12.0, 200)
    with pytest.raises(AstrodetInputError, match="psf_fwhm"):
        matched_side(0.1, float("nan"), 12.0, 200)


def _training_split(folder: Path, widths: list[int]) -> tuple[Path, Path]:
    """galaxies.csv with PSFs of 10, 14 and 30 px (ids 1-3) and a split of the first len(widths) galaxies."""
    table = folder / "galaxies.csv"
    table.write_text("local_ids,pixel_scale,psf_fwhm_arcsec\n1,0.1,1.0\n2,0.1,1.4\n3,0.05,1.5\n")
    images = [{"id": k, "galaxy_id": str(k), "width": w, "height": w} for k, w in enumerate(widths, 1)]
    split = folder / "train.json"
    split.write_text(json.dumps({"images": images}))
    return table, split


def test_the_training_median_counts_only_the_split_in_model_pixels(tmp_path: Path) -> None:
    table, split = _training_split(tmp_path, [200, 200])
    assert training_psf_px(table, split, 200) == pytest.approx(12.0)  # median of 10 and 14; galaxy 3 not in split
    table, split = _training_split(tmp_path, [400, 400])
    assert training_psf_px(table, split, 200) == pytest.approx(6.0)  # 400 px images are halved by the resize
    split.write_text(json.dumps({"images": [{"id": 1, "galaxy_id": "9", "width": 200, "height": 200}]}))
    with pytest.raises(AstrodetInputError, match=r"train.json: image 1: galaxy_id 9 not in .*galaxies.csv"):
        training_psf_px(table, split, 200)


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> PeakDetector:
    model = PeakDetector()
    monkeypatch.setattr(command, "load_model", lambda config, weights, device="auto": model)
    return model


def _predict(fake_config: tuple[str, str], *args: str) -> int:
    config, weights = fake_config
    return cli.main(["predict", "--config", config, "--weights", weights, "--no-progress", *args])


def test_match_psf_gives_the_model_one_planned_crop_and_keeps_input_pixels(
    simulated: Path, tmp_path: Path, fake_config: tuple[str, str], fake_model: PeakDetector
) -> None:
    target = 11.75
    out = tmp_path / "matched.ecsv"
    meta = simulated / "galaxies.csv"  # filename, ra, dec, pixel_scale, psf_fwhm_arcsec
    assert _predict(fake_config, str(simulated / "images"), "--meta", str(meta), "--match-psf", str(target),
                    "--nms-iou", "1.0", "--out", str(out)) == 0  # fmt: skip
    with meta.open(newline="") as handle:
        galaxies = sorted(csv.DictReader(handle), key=lambda g: g["filename"])
    plans = [plan_crop(400, 400, float(g["pixel_scale"]), float(g["psf_fwhm_arcsec"]), target, 200) for g in galaxies]
    assert [shape[:2] for shape in fake_model.shapes] == [(p.side, p.side) for p in plans]  # one whole view each
    found = read_catalogue(out)
    assert len(found) > 0
    for galaxy, plan in zip(galaxies, plans, strict=True):
        left, top, right, bottom = centre_crop_box(400, 400, plan.side)
        pixels = np.asarray(Image.open(simulated / galaxy["filename"]).convert("RGB"))
        direct = PeakDetector().predict([np.ascontiguousarray(pixels[top:bottom, left:right])])[0]
        shift = np.array([left, top, left, top], dtype=float)
        expected = {tuple(np.round(box + shift, 6)) for box in direct.boxes}
        rows = found[[Path(str(f)).name == Path(galaxy["filename"]).name for f in found["file"]]]
        got = {tuple(np.round([r["x_min"], r["y_min"], r["x_max"], r["y_max"]], 6)) for r in rows}
        assert got <= expected  # every catalogue box is the crop's box moved into the input's pixels
        assert all(left <= r["x_min"] and r["x_max"] <= right and top <= r["y_min"] for r in rows)


def test_match_psf_rejects_inputs_without_scale_or_psf_and_counts_them(
    simulated: Path, tmp_path: Path, fake_config: tuple[str, str], fake_model: PeakDetector, capsys
) -> None:
    out = tmp_path / "none.ecsv"
    assert _predict(fake_config, str(simulated / "images"), "--match-psf", "12", "--out", str(out)) == 0
    assert "6 inputs = 0 predicted + 6 rejected (no_psf_scale: 6)" in capsys.readouterr().out
    with (tmp_path / "none_rejects.csv").open(newline="") as handle:
        assert {row["reason"] for row in csv.DictReader(handle)} == {"no_psf_scale"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--match-psf", "wide"], "--match-psf: expected a number of pixels, got 'wide'"),
        (["--match-psf", "-3"], "--match-psf: expected a PSF FWHM > 0 px, got -3.0"),
        (["--match-psf", "12", "--crop", "100"], "--match-psf: not with --crop or --tile-size"),
    ],
)
def test_match_psf_user_errors_exit_2_with_one_line(
    simulated: Path, tmp_path: Path, fake_config: tuple[str, str], fake_model: PeakDetector, capsys, extra, message
) -> None:
    assert _predict(fake_config, str(simulated / "images"), *extra, "--out", str(tmp_path / "x.ecsv")) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_bad_psf_in_the_meta_table_names_row_and_column(
    simulated: Path, tmp_path: Path, fake_config: tuple[str, str], fake_model: PeakDetector, capsys
) -> None:
    meta = tmp_path / "meta.csv"
    meta.write_text(f"filename,ra,dec,pixel_scale,psf_fwhm\n{simulated / 'images' / 'x.png'},10,0,0.1,0\n")
    args = [str(simulated / "images"), "--meta", str(meta), "--match-psf", "12", "--out", str(tmp_path / "x.ecsv")]
    assert _predict(fake_config, *args) == 2
    assert f"--meta {meta}: row 2, column psf_fwhm: PSF FWHM must be > 0" in capsys.readouterr().err
