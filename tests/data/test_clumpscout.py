"""Clump Scout converter: every row converted or reported with its reason, Popp's crop frame, splits, atomicity."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

import astrodet.io
from astrodet import cli
from astrodet.data.clumpscout import COLUMNS, convert_clumpscout
from astrodet.data.coco import load_coco, resolve_image_path
from astrodet.data.rejects import read_rejects_csv
from astrodet.errors import AstrodetInputError

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "clumpscout_boxes"  # <repo>/../shared/data


def _png(path: Path, size: tuple[int, int] = (400, 400), seed: int = 0) -> np.ndarray:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return pixels


def _row(galaxy: str, x1, x2, y1, y2, label=1, subject="900") -> list:
    text = "clumpy" if label == 1 else "clumpy, odd"
    return [subject, galaxy, f"../RPN_Backbone_GZ2/Data/real_pngs/{galaxy}.png", label, text, x1, x2, y1, y2]


def _table(path: Path, rows: list[list], header=COLUMNS) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _rejects(summary) -> list[tuple[int, str, str]]:
    return [(int(r["row"]), r["reason"], r["message"]) for r in read_rejects_csv(summary.rejects_csv)]


@pytest.fixture
def images(tmp_path) -> Path:
    folder = tmp_path / "pngs"
    for seed, galaxy in enumerate(["g1", "g2", "g4"]):
        _png(folder / f"{galaxy}.png", seed=seed)
    _png(folder / "g3.png", size=(300, 300))
    (folder / "g5.png").write_bytes(b"not a png")
    return folder


def test_each_bad_row_gets_its_reason_and_row_number(tmp_path, images):
    rows = [
        _row("g1", 50, 70, 50, 70),  # row 2: kept
        _row("g1", 100, 120, 100, 120, label=2),  # 3: kept
        _row("g9", 50, 70, 50, 70),  # 4: missing_image
        _row("g1", 185, 195, 50, 60),  # 5: outside_crop_margin
        _row("g1", 60, 60, 50, 70),  # 6: non_positive_size (zero width)
        _row("g1", "nan", 70, 50, 70),  # 7: not_finite x1
        _row("g1", 50, 70, 50, "abc"),  # 8: not_finite y2
        _row("g1", 50, 70, 50, 70, label=3),  # 9: unknown_label
        _row("g1", 50.0001, 70, 50, 70),  # 10: duplicate of row 2
        _row("g3", 50, 70, 50, 70),  # 11: wrong_image_size
        _row("g2", 50, 70, 80, 60),  # 12: non_positive_size (negative height)
        _row("g5", 50, 70, 50, 70),  # 13: unreadable_image
        _row("g2", 30, 40, 30, "inf"),  # 14: not_finite y2
        ["900", "g2", "g2.png", "1"],  # 15: malformed_row
        _row("g2", 20, 30, 20, 30),  # 16: kept
    ]
    boxes = _table(tmp_path / "boxes.csv", rows)
    summary = convert_clumpscout(boxes, tmp_path / "out" / "cs.json", images_dir=images)
    got = _rejects(summary)
    assert [(row, reason) for row, reason, _ in got] == [
        (4, "missing_image"),
        (5, "outside_crop_margin"),
        (6, "non_positive_size"),
        (7, "not_finite"),
        (8, "not_finite"),
        (9, "unknown_label"),
        (10, "duplicate"),
        (11, "wrong_image_size"),
        (12, "non_positive_size"),
        (13, "unreadable_image"),
        (14, "not_finite"),
        (15, "malformed_row"),
    ]
    messages = {row: message for row, _, message in got}
    assert "x1" in messages[7] and "y2" in messages[8] and "y2" in messages[14]
    assert "row 2" in messages[10] and "300x300" in messages[11] and "got '3'" in messages[9]
    assert (summary.rows_in, summary.rows_out, summary.n_rejected) == (15, 3, 12)
    assert summary.rows_in == summary.rows_out + summary.n_rejected
    assert summary.line() == (
        "15 rows in = 3 boxes out + 12 rejected (not_finite: 3, non_positive_size: 2, duplicate: 1, malformed_row: 1, "
        "missing_image: 1, outside_crop_margin: 1, unknown_label: 1, unreadable_image: 1, wrong_image_size: 1)"
    )
    assert summary.categories == {"clump": 2, "odd_clump": 1}
    assert summary.rejects_csv == tmp_path / "out" / "cs_rejects.csv"
    data = load_coco(summary.outputs["all"])
    assert sorted(img["galaxy_id"] for img in data["images"]) == ["g1", "g2"]
    assert data["info"]["conversion"] == {"rows_in": 15, "boxes_out": 3, "rejected": summary.rejected}
    assert sorted(a["source_row"] for a in data["annotations"]) == [2, 3, 16]


def test_full_frame_shifts_boxes_and_rejects_outside_image(tmp_path, images):
    rows = [_row("g1", 50, 70, 40, 60), _row("g1", -104, -90, 10, 20), _row("g1", 290, 302, 10, 20)]
    summary = convert_clumpscout(
        _table(tmp_path / "b.csv", rows), tmp_path / "full.json", images_dir=images, frame="full"
    )
    assert [(r, reason) for r, reason, _ in _rejects(summary)] == [(3, "outside_image"), (4, "outside_image")]
    data = load_coco(tmp_path / "full.json")
    assert data["annotations"][0]["bbox"] == [150.0, 140.0, 20.0, 20.0]
    image = data["images"][0]
    assert (image["width"], image["height"]) == (400, 400)
    assert image["file_name"] == "pngs/g1.png"
    assert resolve_image_path(tmp_path / "full.json", image["file_name"], data["info"]) == images / "g1.png"
    assert not (tmp_path / "full_images").exists()


def test_crop_mode_writes_the_central_crop_and_is_rerun_safe(tmp_path, images):
    boxes = _table(tmp_path / "b.csv", [_row("g1", 50, 70, 40, 60), _row("g2", 20, 30, 20, 30, label=2)])
    out = tmp_path / "ds" / "clumps.json"
    convert_clumpscout(boxes, out, images_dir=images)
    data = load_coco(out)
    coco = COCO(str(out))
    assert len(coco.getAnnIds()) == 2
    for image in data["images"]:
        path = resolve_image_path(out, image["file_name"], data["info"])
        assert image["file_name"] == f"clumps_images/{image['galaxy_id']}.png"
        assert (image["width"], image["height"]) == (200, 200)
        source = np.asarray(Image.open(images / f"{image['galaxy_id']}.png"))
        assert np.array_equal(np.asarray(Image.open(path)), source[100:300, 100:300])
        assert (
            resolve_image_path(out, image["source_file_name"], data["info"]).resolve()
            == (images / f"{image['galaxy_id']}.png").resolve()
        )
    assert data["annotations"][0]["bbox"] == [50.0, 40.0, 20.0, 20.0]
    crop = out.parent / "clumps_images" / "g1.png"
    before = crop.stat().st_mtime_ns
    first = out.read_bytes()
    time.sleep(0.01)
    convert_clumpscout(boxes, out, images_dir=images)
    assert crop.stat().st_mtime_ns == before  # not rewritten
    assert out.read_bytes() == first  # same inputs, same bytes
    assert not list(out.parent.rglob(".*.tmp"))


def test_annotation_only_uses_basenames_and_keeps_extra_columns(tmp_path):
    header = [*COLUMNS, "flux", "note"]
    rows = [[*_row("g1", 50, 70, 40, 60), "12.5", "bright"], [*_row("g2", 20, 30, 20, 30), "nan", ""]]
    summary = convert_clumpscout(_table(tmp_path / "b.csv", rows, header), tmp_path / "a.json", image_size=(400, 400))
    data = load_coco(summary.outputs["all"])
    assert [img["file_name"] for img in data["images"]] == ["g1.png", "g2.png"]
    first, second = data["annotations"]
    assert (first["flux"], first["note"]) == (12.5, "bright")
    assert "flux" not in second and "note" not in second  # NaN and empty are unknown, not null
    assert data["images"][0]["subject_id"] == 900


def test_missing_columns_name_the_file_and_columns(tmp_path):
    boxes = _table(tmp_path / "bad.csv", [["1", "g1", "g1.png", "1", "x", "1", "2"]], header=COLUMNS[:7])
    with pytest.raises(AstrodetInputError, match=r"bad\.csv: missing column\(s\) y1, y2"):
        convert_clumpscout(boxes, tmp_path / "o.json", image_size=(400, 400))


@pytest.fixture
def convert_only_cli(monkeypatch):
    """The CLI with only ``convert`` wired, so these tests do not depend on the other subcommands' modules."""
    monkeypatch.setattr(cli, "_SUBCOMMANDS", {"convert": cli._SUBCOMMANDS["convert"]})
    return cli.main


def test_cli_exit_codes(tmp_path, capsys, convert_only_cli):
    bad = _table(tmp_path / "bad.csv", [], header=["image_id", "x1"])
    code = convert_only_cli(
        ["convert", "clumpscout", "--boxes", str(bad), "--image-size", "400", "400", "--out", str(tmp_path / "o.json")]
    )
    assert code == 2
    assert "bad.csv: missing column(s) local_ids" in capsys.readouterr().err
    good = _table(tmp_path / "good.csv", [_row("g1", 50, 70, 40, 60), _row("g1", 1, 5, 1, 5)])
    args = [
        "convert",
        "clumpscout",
        "--boxes",
        str(good),
        "--image-size",
        "400",
        "400",
        "--out",
        str(tmp_path / "o.json"),
    ]
    assert convert_only_cli(args) == 0
    assert "2 rows in = 1 boxes out + 1 rejected (outside_crop_margin: 1)" in capsys.readouterr().out
    assert convert_only_cli([*args, "--strict"]) == 1
    assert convert_only_cli([*args, "--margin", "0", "--strict"]) == 0
    assert convert_only_cli([*args, "--split", "train=0.5,val=0.6"]) == 2


def test_keep_empty_images_and_galaxies_table(tmp_path, images):
    boxes = _table(tmp_path / "b.csv", [_row("g1", 50, 70, 40, 60)])
    galaxies = tmp_path / "galaxies.csv"
    galaxies.write_text(
        "local_ids,image_id,RA,dec,pixel_scale\n"
        "g1,900,150.5,2.25,0.396\n"  # row 2: adds coordinates to an image with boxes
        "g2,901,10.0,-5.0,0.2\n"  # 3: adds a clump-free galaxy
        "g7,902,10.0,-5.0,0.2\n"  # 4: no image
        "g4,903,400,0,0.2\n"  # 5: bad ra
    )
    summary = convert_clumpscout(boxes, tmp_path / "e.json", images_dir=images, galaxies_csv=galaxies)
    data = load_coco(tmp_path / "e.json")
    by_galaxy = {img["galaxy_id"]: img for img in data["images"]}
    assert sorted(by_galaxy) == ["g1", "g2"]
    assert (by_galaxy["g1"]["ra"], by_galaxy["g1"]["dec"], by_galaxy["g1"]["pixel_scale"]) == (150.5, 2.25, 0.396)
    assert by_galaxy["g2"]["subject_id"] == 901
    rejected = [(r["file"], r["row"], r["reason"]) for r in read_rejects_csv(summary.rejects_csv)]
    assert rejected == [(str(galaxies), "4", "missing_image"), (str(galaxies), "5", "bad_value")]
    assert f"{galaxies}: 4 rows in = 2 used + 2 rejected (bad_value: 1, missing_image: 1)" in summary.notes[0]
    assert summary.line() == "1 rows in = 1 boxes out + 0 rejected"  # the boxes accounting is separate

    summary = convert_clumpscout(boxes, tmp_path / "k.json", images_dir=images, keep_empty_images=True)
    data = load_coco(tmp_path / "k.json")
    assert sorted(img["galaxy_id"] for img in data["images"]) == ["g1", "g2", "g4"]  # g3 wrong size, g5 unreadable
    assert data["info"]["counts"]["images_without_boxes"] == 2

    (tmp_path / "nolocal.csv").write_text("galaxy,ra\n1,2\n")
    with pytest.raises(AstrodetInputError, match=r"nolocal\.csv: no local_ids column"):
        convert_clumpscout(boxes, tmp_path / "x.json", images_dir=images, galaxies_csv=tmp_path / "nolocal.csv")


def test_a_run_that_would_write_no_image_fails_naming_why(tmp_path):
    """A folder of JPEGs with --keep-empty-images: every row misses its PNG and no PNG is kept; exit 2, no files."""
    jpegs = tmp_path / "jpegs"
    jpegs.mkdir()
    Image.fromarray(np.zeros((400, 400, 3), np.uint8)).save(jpegs / "g1.jpg")
    boxes = _table(tmp_path / "b.csv", [_row("g1", 50, 70, 40, 60)])
    with pytest.raises(AstrodetInputError, match=r"b\.csv: no image to write .*missing_image: 1.*g1\.png not found"):
        convert_clumpscout(boxes, tmp_path / "k.json", images_dir=jpegs, keep_empty_images=True)
    assert not list(tmp_path.glob("k*"))

def _split_table(path: Path, order: list[int]) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for g in range(60):
        for k in range(g % 4):
            x = 20 + 30 * k
            rows.append(_row(f"gal{g:02d}", x, x + 10, 50, 60, label=2 if (g % 5 == 0 and k == 0) else 1))
    rng.shuffle(rows)
    return _table(path, [rows[i] for i in order] if order else rows)


def test_split_by_galaxy_is_deterministic_and_stratified(tmp_path):
    boxes = _split_table(tmp_path / "b.csv", [])
    kwargs = {"image_size": (400, 400), "split": "train=0.6,val=0.2,test=0.2", "seed": 5}
    summary = convert_clumpscout(boxes, tmp_path / "s.json", **kwargs)
    assert set(summary.outputs) == {"train", "val", "test"}
    assert not (tmp_path / "s.json").exists()
    galaxies = {name: {img["galaxy_id"] for img in load_coco(path)["images"]} for name, path in summary.outputs.items()}
    assert sum(len(g) for g in galaxies.values()) == 45  # galaxies with >= 1 box
    assert not (galaxies["train"] & galaxies["val"]) and not (galaxies["train"] & galaxies["test"])
    assert [len(galaxies[n]) for n in ("train", "val", "test")] == [27, 9, 9]
    for path in summary.outputs.values():
        data = load_coco(path)
        counts = {img["id"]: 0 for img in data["images"]}
        for ann in data["annotations"]:
            counts[ann["image_id"]] += 1
        assert set(counts.values()) == {1, 2, 3}  # every clump-count bucket in every split
        assert any(ann["category_id"] == 2 for ann in data["annotations"])
        COCO(str(path))

    reordered = list(range(sum(g % 4 for g in range(60))))[::-1]
    again = convert_clumpscout(_split_table(tmp_path / "r.csv", reordered), tmp_path / "r.json", **kwargs)
    regalaxies = {name: {img["galaxy_id"] for img in load_coco(p)["images"]} for name, p in again.outputs.items()}
    assert regalaxies == galaxies


def test_killed_conversion_leaves_no_partial_output(tmp_path, monkeypatch, images):
    boxes = _split_table(tmp_path / "b.csv", [])
    real_replace = astrodet.io.os.replace
    calls = []

    def dying_replace(src, dst):
        calls.append(dst)
        if len(calls) == 3:  # rejects CSV and train JSON are in place; die while writing val
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(astrodet.io.os, "replace", dying_replace)
    with pytest.raises(KeyboardInterrupt):
        convert_clumpscout(boxes, tmp_path / "out" / "s.json", image_size=(400, 400), split="train=0.5,val=0.5")
    assert len(calls) == 3
    assert list((tmp_path / "out").iterdir()) == []  # no JSON, no rejects CSV, no temp file


@pytest.mark.parametrize("name", ["train", "valid"])
def test_real_tables_add_up(tmp_path, name):
    path = REAL / f"clumpscout_boxes_{name}.csv"
    if not path.is_file():
        pytest.skip(f"real Clump Scout table {path} not found (shared/data is not checked out here)")
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    x1, x2, y1, y2 = np.array([[float(r[c]) for c in ("x1", "x2", "y1", "y2")] for r in rows]).T
    labels = np.array([int(r["label"]) for r in rows])
    inside_crop = (x1 >= 10) & (y1 >= 10) & (x2 <= 190) & (y2 <= 190)
    inside_full = (x1 >= -100) & (y1 >= -100) & (x2 <= 300) & (y2 <= 300)

    start = time.perf_counter()
    crop = convert_clumpscout(path, tmp_path / "crop.json", image_size=(400, 400))
    seconds = time.perf_counter() - start
    assert crop.rows_in == len(rows) == crop.rows_out + crop.n_rejected
    assert crop.rejected == {"outside_crop_margin": int((~inside_crop).sum())}
    assert crop.categories == {
        "clump": int((inside_crop & (labels == 1)).sum()),
        "odd_clump": int((inside_crop & (labels == 2)).sum()),
    }
    assert crop.images_out == len({r["local_ids"] for r in rows})
    print(f"{name}: {crop.line()} in {seconds:.2f} s; {crop.categories}")

    full = convert_clumpscout(
        path, tmp_path / "full.json", image_size=(400, 400), frame="full", split="train=0.7,val=0.2,test=0.1"
    )
    assert full.rejected == {"outside_image": int((~inside_full).sum())}
    assert full.categories == {
        "clump": int((inside_full & (labels == 1)).sum()),
        "odd_clump": int((inside_full & (labels == 2)).sum()),
    }
    sizes = {split: len(load_coco(p)["images"]) for split, p in full.outputs.items()}
    assert sum(sizes.values()) == crop.images_out
    assert abs(sizes["train"] - 0.7 * crop.images_out) <= 1 and abs(sizes["test"] - 0.1 * crop.images_out) <= 1
    assert len(COCO(str(full.outputs["val"])).getImgIds()) == sizes["val"]
