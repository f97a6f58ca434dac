"""Galaxy Zoo 2 converter: Kim's mapping on a synthetic 37-column vote table, every reject reason, the real sample."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from astrodet import cli
from astrodet.data.coco import load_coco, resolve_image_path
from astrodet.data.galaxyzoo import convert_galaxyzoo, load_mapping
from astrodet.data.rejects import read_rejects_csv
from astrodet.errors import AstrodetInputError
from astrodet.models.schemas import load_question_schema, vote_columns

KIM_IDS = {"Spiral": 1, "Spiral_Barred": 2, "Elliptical": 3, "On_Edge": 4, "Irregular": 5, "Star/Artifact": 6}


def _jpeg(path: Path, size: int = 60, seed: int = 0) -> np.ndarray:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="JPEG", quality=95)
    return pixels


def _votes(**values: float | str) -> list[str]:
    row = dict.fromkeys(vote_columns(), 0.0)
    row.update({k.replace("_", "."): v for k, v in values.items()})
    return [str(row[c]) if isinstance(row[c], str) else f"{row[c]:g}" for c in vote_columns()]


def _table(path: Path, rows: list[list], header: list[str] | None = None) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header or ["GalaxyID", *vote_columns()])
        writer.writerows(rows)
    return path


def _rejects(summary) -> list[tuple[int, str]]:
    return [(int(r["row"]), r["reason"]) for r in read_rejects_csv(summary.rejects_csv)]


@pytest.fixture
def kaggle(tmp_path: Path) -> tuple[Path, Path]:
    images = tmp_path / "images_training_rev1"
    for seed, gid in enumerate(["100", "101", "102", "103", "104", "105", "106", "108", "109"]):
        _jpeg(images / f"{gid}.jpg", seed=seed)
    _jpeg(images / "110.jpg", size=30)  # smaller than the crop
    (images / "107.jpg").write_bytes(b"not a jpeg")
    rows = [
        ["100", *_votes(Class1_2=0.8, Class2_2=0.8, Class4_1=0.7, Class3_1=0.1)],  # row 2: Spiral
        ["101", *_votes(Class1_1=0.9, Class1_2=0.1)],  # row 3: Elliptical
        ["102", *_votes(Class1_1=0.4, Class2_1=0.4)],  # row 4: tie -> Elliptical (earlier category than On_Edge)
        ["103", *_votes(Class1_1="abc")],  # row 5: bad_vote_value
        ["104", *_votes(Class1_2=1.5)],  # row 6: bad_vote_value
        ["105", *_votes(Class1_2=1.0, Class2_2=1.0, Class4_2=1.0)],  # row 7: no mapped column voted
        ["999", *_votes(Class1_3=0.9)],  # row 8: missing_image
        ["100", *_votes(Class1_3=0.9)],  # row 9: duplicate_id
        ["106", "0.5"],  # row 10: malformed_row
        ["", *_votes(Class1_1=0.9)],  # row 11: missing_value
        ["107", *_votes(Class1_3=0.8)],  # row 12: unreadable_image
        ["108", *_votes(Class1_2=0.6, Class2_2=0.6, Class3_1=0.5, Class4_1=0.2, Class6_1=0.9, Class8_4=0.6)],
        ["109", *_votes(Class1_3=0.2, Class1_1=0.1)],  # row 14: Star/Artifact
        ["110", *_votes(Class1_1=0.9)],  # row 15: image_too_small (with a crop of 40)
    ]
    return _table(tmp_path / "training_solutions_rev1.csv", rows), images


def test_kim_mapping_labels_keeps_votes_and_reports_every_reject(tmp_path, kaggle) -> None:
    table, images = kaggle
    summary = convert_galaxyzoo(table, tmp_path / "out" / "gz.json", images_dir=images, centre_crop=40)
    assert _rejects(summary) == [
        (5, "bad_vote_value"),
        (6, "bad_vote_value"),
        (7, "no_mapped_votes"),
        (10, "malformed_row"),
        (11, "missing_value"),
        (8, "missing_image"),
        (9, "duplicate_id"),
        (12, "unreadable_image"),
        (15, "image_too_small"),
    ]
    assert summary.rows_in == 14 and summary.rows_out == 5
    data = load_coco(summary.outputs["all"])
    assert [(c["id"], c["name"]) for c in data["categories"]] == [(i, n) for n, i in KIM_IDS.items()]
    by_galaxy = {img["galaxy_id"]: img for img in data["images"]}
    ann = {a["image_id"]: a for a in data["annotations"]}
    labels = {g: ann[img["id"]]["category_id"] for g, img in by_galaxy.items()}
    assert labels == {
        100: KIM_IDS["Spiral"],
        101: KIM_IDS["Elliptical"],
        102: KIM_IDS["Elliptical"],
        108: KIM_IDS["Irregular"],  # Class8.4 0.6 beats Class3.1 0.5
        109: KIM_IDS["Star/Artifact"],
    }
    a100 = ann[by_galaxy[100]["id"]]
    assert len(a100["vote_fractions"]) == 37 and data["info"]["vote_columns"] == list(vote_columns())
    assert a100["vote_fractions"][vote_columns().index("Class4.1")] == 0.7
    assert a100["bbox"] == [0.0, 0.0, 40.0, 40.0] and a100["label_column"] == "Class4.1"
    # the crop is the central 40x40 of the source, written as PNG
    img = by_galaxy[101]
    crop = np.asarray(Image.open(resolve_image_path(summary.outputs["all"], img["file_name"])))
    source = np.asarray(Image.open(images / "101.jpg"))
    assert crop.shape == (40, 40, 3) and np.array_equal(crop, source[10:50, 10:50])
    assert img["source_file_name"].endswith("images_training_rev1/101.jpg")
    assert data["info"]["task"] == "classification"


def test_min_fraction_rejects_low_confidence(tmp_path, kaggle) -> None:
    table, images = kaggle
    summary = convert_galaxyzoo(table, tmp_path / "gz.json", images_dir=images, min_fraction=0.5)
    reasons = dict(_rejects(summary))
    assert reasons[4] == "low_confidence" and reasons[14] == "low_confidence"  # 0.4 and 0.2 winners
    assert 15 not in reasons  # no crop asked: the small image is fine
    assert summary.rows_out == 4


def test_conversion_is_deterministic_and_split_by_class(tmp_path, kaggle) -> None:
    table, images = kaggle
    a = convert_galaxyzoo(table, tmp_path / "a" / "gz.json", images_dir=images, split="train=0.6,test=0.4", seed=3)
    b = convert_galaxyzoo(table, tmp_path / "b" / "gz.json", images_dir=images, split="train=0.6,test=0.4", seed=3)
    assert set(a.outputs) == {"train", "test"}
    for split in a.outputs:
        text_a = a.outputs[split].read_text().replace("/a/", "/X/")
        text_b = b.outputs[split].read_text().replace("/b/", "/X/")
        assert text_a == text_b
    ids = [img["galaxy_id"] for s in a.outputs.values() for img in load_coco(s)["images"]]
    assert sorted(ids) == [100, 101, 102, 108, 109, 110] and len(set(ids)) == len(ids)


def test_labelled_list_with_and_without_mapping(tmp_path) -> None:
    folder = tmp_path / "gz"
    for seed, name in enumerate(["a", "b", "c"]):
        _jpeg(folder / "images" / f"{name}.jpg", seed=seed)
    rows = [["spirals", "1", "images/a.jpg"], ["non_spirals", "2", "images/b.jpg"], ["odd", "3", "images/c.jpg"]]
    table = _table(folder / "labels.csv", rows, ["label", "galaxy_id", "file"])
    plain = convert_galaxyzoo(table, tmp_path / "plain.json")
    assert plain.categories == {"non_spirals": 1, "odd": 1, "spirals": 1}
    mapping = tmp_path / "map.json"
    mapping.write_text(
        json.dumps({"categories": ["spiral", "other"], "labels": {"spirals": "spiral", "non_spirals": "other"}})
    )
    mapped = convert_galaxyzoo(table, tmp_path / "mapped.json", mapping=mapping)
    assert _rejects(mapped) == [(4, "unknown_label")]
    data = load_coco(mapped.outputs["all"])
    assert [c["name"] for c in data["categories"]] == ["spiral", "other"]
    assert {a["label_text"] for a in data["annotations"]} == {"spirals", "non_spirals"}


def test_bad_inputs_are_clear_errors(tmp_path, kaggle) -> None:
    table, images = kaggle
    with pytest.raises(AstrodetInputError, match="give --images"):
        convert_galaxyzoo(table, tmp_path / "x.json")
    short = _table(tmp_path / "short.csv", [["1", "0.5"]], ["GalaxyID", "Class1.1"])
    with pytest.raises(AstrodetInputError, match="all 37 columns"):
        convert_galaxyzoo(short, tmp_path / "x.json", images_dir=images)
    odd = _table(tmp_path / "odd.csv", [["1"]], ["whatever"])
    with pytest.raises(AstrodetInputError, match="labelled list"):
        convert_galaxyzoo(odd, tmp_path / "x.json")
    bad_map = tmp_path / "bad.json"
    bad_map.write_text(json.dumps({"categories": ["A"], "columns": {"Class99.1": "A"}}))
    with pytest.raises(AstrodetInputError, match="not Galaxy Zoo 2 vote columns"):
        convert_galaxyzoo(table, tmp_path / "x.json", images_dir=images, mapping=bad_map)
    with pytest.raises(AstrodetInputError, match="--centre-crop"):
        convert_galaxyzoo(table, tmp_path / "x.json", images_dir=images, centre_crop=0)
    assert cli.main(["convert", "galaxyzoo", "--table", str(odd), "--out", str(tmp_path / "x.json")]) == 2


def test_default_mapping_and_schema_are_kims_and_the_kaggle_tree() -> None:
    mapping = load_mapping()
    assert mapping.categories == tuple(KIM_IDS)
    assert mapping.columns == {
        "Class1.1": "Elliptical",
        "Class1.3": "Star/Artifact",
        "Class2.1": "On_Edge",
        "Class3.1": "Spiral_Barred",
        "Class4.1": "Spiral",
        "Class8.4": "Irregular",
    }
    schema = load_question_schema()
    assert schema.columns[0] == "Class1.1" and schema.columns[-1] == "Class11.6"
    assert [q.stop - q.start for q in schema.questions] == [3, 2, 2, 2, 4, 2, 3, 7, 3, 3, 6]


def test_real_gz2_sample(tmp_path, shared_data) -> None:
    table = shared_data / "gz2_kaggle" / "labels.csv"
    summary = convert_galaxyzoo(table, tmp_path / "gz2.json", centre_crop=180, split="train=0.7,val=0.15,test=0.15")
    assert summary.rows_in == 400 and summary.n_rejected == 0
    assert summary.categories == {"non_spirals": 200, "spirals": 200}
    train = load_coco(summary.outputs["train"])
    counts = {c["name"]: 0 for c in train["categories"]}
    for ann in train["annotations"]:
        counts[train["categories"][ann["category_id"] - 1]["name"]] += 1
    assert counts == {"non_spirals": 140, "spirals": 140}  # stratified
    img = train["images"][0]
    assert (img["width"], img["height"]) == (180, 180)
    out = np.asarray(Image.open(resolve_image_path(summary.outputs["train"], img["file_name"])))
    src = np.asarray(Image.open(shared_data / "gz2_kaggle" / "images" / f"{img['galaxy_id']}.jpg"))
    assert np.array_equal(out, src[122:302, 122:302])
