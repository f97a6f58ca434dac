"""The catalogue of named datasets: one name -> one recipe -> {split: COCO file}, built once into the cache."""

from __future__ import annotations

import json

import pytest

from astrodet.data import catalogue
from astrodet.data.coco import load_coco
from astrodet.data.default import CATEGORIES
from tests.conftest import astrodet_cache_env


def test_every_name_has_a_task_classes_splits_and_a_description() -> None:
    assert {"default", "tiny"} <= set(catalogue.names("detection"))
    assert {"perseus", "perseus_all", "gz2", "deepshadows"} <= set(catalogue.names("classification"))
    for name in catalogue.names():
        r = catalogue.recipe(name)
        assert r.name == name and r.task in ("detection", "classification")
        assert r.categories and r.splits and r.description


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"unknown astrodet dataset 'hubble'; known: \[.*'tiny'"):
        catalogue.recipe("hubble")


def test_split_paths_are_known_before_building_and_match_ensure(tmp_path) -> None:
    with astrodet_cache_env(tmp_path):
        before = catalogue.split_paths("tiny")
        assert not catalogue.is_built("tiny") and not any(p.exists() for p in before.values())
        assert before["train"].parent == catalogue.folder("tiny")
        assert catalogue.folder("tiny").parent == tmp_path / "datasets"


def test_ensure_builds_the_tiny_set_once(tiny_cache) -> None:
    with astrodet_cache_env(tiny_cache):
        paths = catalogue.ensure("tiny", progress=False)
        assert set(paths) == {"train", "val", "test"} and catalogue.is_built("tiny")
        ready = json.loads((catalogue.folder("tiny") / "READY.json").read_text())
        assert ready["name"] == "tiny" and ready["spec"]["n_galaxies"] == 60
        n_images = sum(len(load_coco(p)["images"]) for p in paths.values())
        assert n_images == 60  # every galaxy in exactly one split
        assert [c["name"] for c in load_coco(paths["train"])["categories"]] == list(CATEGORIES)
        stamp = (catalogue.folder("tiny") / "READY.json").stat().st_mtime_ns
        assert catalogue.ensure("tiny") == paths
        assert (catalogue.folder("tiny") / "READY.json").stat().st_mtime_ns == stamp


def test_generating_code_is_part_of_the_key(monkeypatch) -> None:
    from astrodet.data import default

    key = catalogue.recipe("tiny").key()
    monkeypatch.setattr(default, "code_digest", lambda: "edited-code")
    assert catalogue.recipe("tiny").key() != key
