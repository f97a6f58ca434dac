"""COCO builder, validator and writer: every file written must load in pycocotools; every defect names its entry."""

from __future__ import annotations

import copy
import json
import math

import pytest
from pycocotools.coco import COCO

from astrodet.data.coco import (
    CocoBuilder,
    category_counts,
    load_coco,
    resolve_image_path,
    validate_coco,
    write_coco,
)
from astrodet.errors import AstrodetInputError


def _dataset() -> dict:
    builder = CocoBuilder({"converter": "test", "sources": {"table": "t.csv"}})
    builder.add_category("clump")
    builder.add_category("odd_clump")
    a = builder.add_image("a.png", 200, 200, ra=150.1, dec=2.2, pixel_scale=0.396, bands=["g", "r", "i"])
    b = builder.add_image("sub/b.png", 400, 300, galaxy_id="g2")
    builder.add_annotation(a, [10, 20, 5, 6], 1, flux=3.5)
    builder.add_annotation(a, (0.0, 0.0, 200.0, 200.0), 2)
    builder.add_annotation(b, [390, 290, 10, 10], 1)
    return builder.to_dict()


def test_builder_ids_fields_and_defaults():
    data = _dataset()
    assert [img["id"] for img in data["images"]] == [1, 2]
    assert [ann["id"] for ann in data["annotations"]] == [1, 2, 3]
    assert [cat["id"] for cat in data["categories"]] == [1, 2]
    ann = data["annotations"][0]
    assert ann["bbox"] == [10.0, 20.0, 5.0, 6.0] and ann["area"] == 30.0 and ann["iscrowd"] == 0
    assert ann["flux"] == 3.5
    img = data["images"][0]
    assert (img["ra"], img["dec"], img["pixel_scale"], img["bands"]) == (150.1, 2.2, 0.396, ["g", "r", "i"])
    assert data["info"]["image_root"] == "."
    assert category_counts(data) == {"clump": 2, "odd_clump": 1}
    validate_coco(data)


def test_builder_rejects_bad_records():
    builder = CocoBuilder()
    builder.add_category("clump")
    image = builder.add_image("a.png", 100, 100)
    with pytest.raises(AstrodetInputError, match="added twice"):
        builder.add_category("clump")
    with pytest.raises(AstrodetInputError, match="unknown image_id"):
        builder.add_annotation(7, [1, 1, 2, 2], 1)
    with pytest.raises(AstrodetInputError, match="unknown category_id"):
        builder.add_annotation(image, [1, 1, 2, 2], 5)
    with pytest.raises(AstrodetInputError, match="width must be > 0"):
        builder.add_annotation(image, [1, 1, 0, 2], 1)
    with pytest.raises(AstrodetInputError, match="outside the 100x100 image"):
        builder.add_annotation(image, [95, 1, 10, 2], 1)
    with pytest.raises(AstrodetInputError, match="finite"):
        builder.add_annotation(image, [math.nan, 1, 2, 2], 1)
    with pytest.raises(AstrodetInputError, match="dec must be"):
        builder.add_image("b.png", 10, 10, dec=95.0)
    with pytest.raises(AstrodetInputError, match="positive integers"):
        builder.add_image("c.png", 0, 10)


def _broken(mutate) -> dict:
    data = copy.deepcopy(_dataset())
    mutate(data)
    return data


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("images"), r"missing key\(s\) images"),
        (lambda d: d["annotations"][1].pop("area"), r"annotations\[1\] \(id 2\): missing key\(s\) area"),
        (lambda d: d["images"][1].update(id=1), r"images\[1\] \(id 1\): duplicate id 1"),
        (lambda d: d["annotations"][2].update(id=1), r"annotations\[2\] \(id 1\): duplicate id 1"),
        (lambda d: d["annotations"][0].update(image_id=9), r"annotations\[0\] \(id 1\): image_id 9 is not"),
        (lambda d: d["annotations"][0].update(category_id=3), r"category_id 3 is not the id of a category"),
        (lambda d: d["annotations"][2].update(bbox=[1, 1, -3.0, 2]), r"\(id 3\): bbox width must be > 0, got -3.0"),
        (lambda d: d["annotations"][2].update(bbox=[1, 1, 2, 0]), "bbox height must be > 0"),
        (lambda d: d["annotations"][0].update(bbox=[1, 1, math.inf, 2]), "bbox width must be finite"),
        (lambda d: d["annotations"][0].update(bbox=[1, 1, 2]), "bbox must be a list"),
        (lambda d: d["annotations"][0].update(bbox=[1, "1", 2, 2]), "bbox y must be a number"),
        (lambda d: d["annotations"][0].update(bbox=[190, 1, 20, 2]), "outside the 200x200 image"),
        (lambda d: d["images"][0].update(width="200"), r"images\[0\] \(id 1\): width must be a positive integer"),
        (lambda d: d["images"][0].update(id="1"), "id must be an integer"),
        (lambda d: d["images"][1].update(file_name="a.png"), "used by an earlier image"),
        (lambda d: d["images"][0].update(ra=400.0), "ra must be a number of degrees"),
        (lambda d: d["images"][0].update(pixel_scale=0), "pixel_scale must be a positive number"),
        (lambda d: d["annotations"][0].update(iscrowd=True), "iscrowd must be 0 or 1"),
        (lambda d: d["categories"][1].update(name="clump"), "name must be a unique"),
        (lambda d: d.update(annotations={}), "'annotations' must be a list"),
    ],
)
def test_validate_names_the_bad_entry(mutate, message):
    with pytest.raises(AstrodetInputError, match=message) as err:
        validate_coco(_broken(mutate), source="ds.json")
    assert str(err.value).startswith("ds.json: ")


def test_write_then_pycocotools_and_load_coco(tmp_path):
    path = write_coco(_dataset(), tmp_path / "ds.json")
    coco = COCO(str(path))
    assert sorted(coco.getImgIds()) == [1, 2]
    assert len(coco.getAnnIds(imgIds=[1])) == 2
    assert coco.loadCats([2])[0]["name"] == "odd_clump"
    data = load_coco(path)
    assert data == json.loads(json.dumps(_dataset()))
    assert resolve_image_path(path, data["images"][1]["file_name"], data["info"]) == tmp_path / "sub" / "b.png"


def test_write_invalid_leaves_no_file(tmp_path):
    bad = _broken(lambda d: d["annotations"][0].update(bbox=[1, 1, -1, 1]))
    with pytest.raises(AstrodetInputError, match=r"ds\.json"):
        write_coco(bad, tmp_path / "ds.json")
    assert list(tmp_path.iterdir()) == []


def test_load_coco_errors_name_the_file(tmp_path):
    with pytest.raises(AstrodetInputError, match="no such COCO file"):
        load_coco(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(AstrodetInputError, match=r"broken\.json: not valid JSON"):
        load_coco(broken)
    wrong = tmp_path / "wrong.json"
    wrong.write_text("[1, 2]")
    with pytest.raises(AstrodetInputError, match=r"wrong\.json: a COCO dataset must be a JSON object"):
        load_coco(wrong)
