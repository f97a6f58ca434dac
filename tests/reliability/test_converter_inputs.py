"""What a bad input gets: an image that cannot be decoded is a reject like any other; every other bad file is one line
naming it (and its line, for text), never a traceback or a warning.

Promises of docs/reliability.md ("Untrusted input files", "What a bad input gets").
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from astrodet import cli
from astrodet.data.coco import load_coco
from astrodet.data.rejects import read_rejects_csv
from astrodet.errors import AstrodetInputError
from tests.reliability.inputs import (
    Case,
    catalog_case,
    clumpscout_case,
    cut_short,
    fits_catalog_case,
    galaxyzoo_case,
    noise_image,
    npz_case,
)


def _rejects(summary) -> dict[str, tuple[str, str]]:
    """Rejected rows by row number: (reason, message)."""
    return {r["row"]: (r["reason"], r["message"]) for r in read_rejects_csv(summary.rejects_csv)}


def _written_images(summary) -> set[str]:
    names = set()
    for path in summary.outputs.values():
        names |= {Path(image["file_name"]).name for image in load_coco(path)["images"]}
    return names


@pytest.mark.parametrize("frame", ["crop", "full"])
def test_a_cut_short_png_is_an_unreadable_image_reject_and_leaves_no_crop(tmp_path, frame) -> None:
    case = clumpscout_case(tmp_path)
    cut_short(case.inputs["images"] / "g2.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary = case.run(tmp_path / "o.json", frame=frame)
    rows = _rejects(summary)
    reasons = {row: reason for row, (reason, _) in rows.items()}
    assert set(reasons.values()) >= {"unreadable_image"}
    bad = [message for reason, message in rows.values() if reason == "unreadable_image"]
    assert bad and all("g2.png" in message for message in bad)
    assert "g2.png" not in _written_images(summary)
    if frame == "crop":
        assert not (tmp_path / "o_images" / "g2.png").exists()
        assert (tmp_path / "o_images" / "g1.png").is_file()


@pytest.mark.parametrize("crop", [40, None])
def test_a_cut_short_jpeg_is_an_unreadable_image_reject(tmp_path, crop) -> None:
    case = galaxyzoo_case(tmp_path)
    jpeg = cut_short(case.inputs["images"] / "3.jpg", keep=0.5)
    summary = case.run(tmp_path / "o.json", centre_crop=crop)
    (message,) = [message for reason, message in _rejects(summary).values() if reason == "unreadable_image"]
    assert str(jpeg) in message and "cannot be read as an image" in message
    assert "3.jpg" not in _written_images(summary) and "3.png" not in _written_images(summary)
    assert summary.rows_out == 7


@pytest.mark.parametrize("suffix", [".png", ".fits", ".npy"])
def test_a_cut_short_cutout_of_any_format_is_an_unreadable_image_reject(tmp_path, suffix) -> None:
    case = catalog_case(tmp_path)
    folder = case.inputs["cutouts"]
    for i in range(8):  # the same cutouts in the format under test
        png = folder / f"obj{i}.png"
        pixels = np.asarray(Image.open(png), dtype=np.float32)
        if suffix == ".fits":
            fits.PrimaryHDU(pixels.transpose(2, 0, 1)).writeto(folder / f"obj{i}.fits")
        elif suffix == ".npy":
            np.save(folder / f"obj{i}.npy", pixels)
        if suffix != ".png":
            png.unlink()
    cut_short(folder / f"obj5{suffix}")
    case.inputs["config"].write_text(f"label_column: kind\nname_pattern: '{{id}}{suffix}'\n")
    summary = case.run(tmp_path / "o.json", copy_images=False)
    (reason, message), *_ = _rejects(summary).values()
    assert reason == "unreadable_image" and f"obj5{suffix}" in message and len(message) < 300
    assert summary.rows_out == 7


def test_a_fits_frame_cut_inside_its_data_is_one_line_naming_it(tmp_path, capsys) -> None:
    case = fits_catalog_case(tmp_path)
    frame = cut_short(case.inputs["fits"], keep=0.5)
    with pytest.raises(AstrodetInputError, match=rf"--fits {frame}: the file ends inside the data of HDU 0"):
        case.run(tmp_path / "o.json")
    argv = ["convert", "catalog", "--catalog", str(case.source), "--label-col", "kind", "--fits", str(frame)]
    assert cli.main([*argv, "--x-col", "x", "--y-col", "y", "--out", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(frame) in err and "WARNING" not in err


def _folder_instead(path: Path) -> Path:
    """Replace a file by a folder of the same name."""
    path.unlink()
    path.mkdir()
    return path


@pytest.mark.parametrize(
    "maker, key",
    [
        (clumpscout_case, "boxes"),
        (galaxyzoo_case, "table"),
        (galaxyzoo_case, "mapping"),
        (catalog_case, "catalog"),
        (catalog_case, "config"),
        (fits_catalog_case, "fits"),
        (npz_case, "npz"),
    ],
)
def test_a_folder_where_a_file_is_expected_is_one_line_naming_it(tmp_path, maker, key) -> None:
    case: Case = maker(tmp_path)
    folder = _folder_instead(case.inputs[key])
    with pytest.raises(AstrodetInputError) as caught:
        case.run(tmp_path / "o.json")
    assert str(folder) in str(caught.value) and "folder" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "maker, key, text",
    [
        (galaxyzoo_case, "mapping", '{"categories": ["spiral",\n  "elliptical" "x"]}'),
        (catalog_case, "config", "label_column: kind\nname_pattern: [unclosed\n"),
    ],
)
def test_a_corrupt_config_is_one_line_naming_its_line(tmp_path, maker, key, text) -> None:
    case: Case = maker(tmp_path)
    case.inputs[key].write_text(text)
    with pytest.raises(AstrodetInputError, match=r"line \d+, column \d+: not valid (JSON|YAML)") as caught:
        case.run(tmp_path / "o.json")
    assert str(case.inputs[key]) in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "maker, key",
    [(clumpscout_case, "boxes"), (galaxyzoo_case, "table"), (catalog_case, "catalog"), (galaxyzoo_case, "mapping")],
)
def test_a_table_that_is_not_utf8_names_the_line_not_a_byte_offset(tmp_path, maker, key) -> None:
    case: Case = maker(tmp_path)
    path = case.inputs[key]
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2] + "caf\xe9".encode("latin-1")
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(AstrodetInputError, match=r"line 3 is not UTF-8 text \(byte 0xe9\)") as caught:
        case.run(tmp_path / "o.json")
    assert str(path) in str(caught.value) and "position" not in str(caught.value)


def _huge_values_convert_quietly(case: Case, out: Path) -> dict[str, tuple[str, str]]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow warning fails the test
        summary = case.run(out)
    rows = _rejects(summary)
    assert rows and all(len(message) < 200 for _, message in rows.values()), rows
    return rows


def test_1e308_and_inf_in_box_tables_are_rejects_with_short_messages(tmp_path) -> None:
    case = clumpscout_case(tmp_path, n=2)
    with open(case.source, "a") as handle:
        handle.write("1,g0,g0.png,1,c,1e308,-1e308,50,70\n")  # width -inf
        handle.write("1,g0,g0.png,1,c,-1e308,1e308,50,70\n")  # far outside the crop
        handle.write("1,g1,g1.png,1e308,c,50,70,50,70\n")  # label
        handle.write("1,g1,g1.png,1,c,inf,70,50,70\n")
    reasons = sorted(reason for reason, _ in _huge_values_convert_quietly(case, tmp_path / "o.json").values())
    assert reasons == ["non_positive_size", "not_finite", "outside_crop_margin", "unknown_label"]


def test_1e308_in_catalogue_positions_and_pixels_are_rejects_with_short_messages(tmp_path) -> None:
    case = catalog_case(tmp_path, n=3)
    with open(case.source, "a") as handle:
        handle.write("big1,1e308,2,a\nbig2,10,-1e308,b\nbig3,inf,2,a\n")
    rows = _huge_values_convert_quietly(case, tmp_path / "o.json")
    reasons = sorted(reason for reason, _ in rows.values())
    assert reasons == ["bad_coordinates", "bad_coordinates", "missing_coordinates"]
    (tmp_path / "px").mkdir()
    pixels = fits_catalog_case(tmp_path / "px")
    with open(pixels.source, "a") as handle:
        handle.write("far1,1e308,5,a\nfar2,5,-1e308,b\n")
    rows = _huge_values_convert_quietly(pixels, tmp_path / "px.json")
    assert sorted(reason for reason, _ in rows.values()) == ["outside_image", "outside_image"]


def test_npz_labels_and_pixels_that_are_nan_or_huge(tmp_path) -> None:
    x = np.random.default_rng(0).random((4, 8, 8, 3))
    np.savez(tmp_path / "nan.npz", X_train=x, y_train=np.full(4, np.nan))
    with pytest.raises(AstrodetInputError, match=r"nan\.npz: no y_<name> array holds a class index"):
        npz_case(tmp_path).convert(tmp_path / "nan.npz", tmp_path / "o.json")
    x[1, 0, 0, 0] = 1e308  # beyond float32
    np.savez(tmp_path / "huge.npz", X_train=x, y_train=np.array([0, 1, 1e308, np.nan]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary = npz_case(tmp_path).convert(tmp_path / "huge.npz", tmp_path / "h.json")
    rows = _rejects(summary)
    assert [reason for reason, _ in rows.values()] == ["not_finite", "bad_label", "bad_label"]
    assert all(len(message) < 120 for _, message in rows.values())


def test_a_folder_given_as_images_folder_must_be_a_folder(tmp_path) -> None:
    case = galaxyzoo_case(tmp_path)
    with pytest.raises(AstrodetInputError, match=r"--images .*labels\.csv: no such folder"):
        case.run(tmp_path / "o.json", images_dir=case.source)


def test_clump_free_galaxies_with_cut_short_images_are_rejects_too(tmp_path) -> None:
    case = clumpscout_case(tmp_path, n=2)
    noise_image(case.inputs["images"] / "g7.png", (400, 400), seed=7)
    cut_short(case.inputs["images"] / "g7.png")
    galaxies = tmp_path / "galaxies.csv"
    galaxies.write_text("local_ids,ra,dec\ng0,10,1\ng7,11,2\n")
    summary = case.run(tmp_path / "o.json", galaxies_csv=galaxies, keep_empty_images=True)
    (reject,) = [r for r in read_rejects_csv(summary.rejects_csv) if r["file"] == str(galaxies)]
    assert reject["row"] == "3" and reject["reason"] == "unreadable_image" and "g7.png" in reject["message"]
    assert "g7.png" not in _written_images(summary)


@pytest.mark.parametrize(
    "mapping, message",
    [
        ('{"categories": ["a"], "columns": ["Class1.1"]}', "'columns' must map names to class names, got list"),
        ('{"categories": ["a"], "labels": [1]}', "'labels' must map names to class names, got list"),
        ('{"categories": [["a"]], "labels": {"x": "a"}}', "'categories' must be a list of distinct class names"),
    ],
)
def test_a_mapping_of_the_wrong_shape_is_one_line_naming_it(tmp_path, mapping, message) -> None:
    case = galaxyzoo_case(tmp_path)
    case.inputs["mapping"].write_text(mapping)
    with pytest.raises(AstrodetInputError, match=rf"mapping\.json: {message}"):
        case.run(tmp_path / "o.json")
