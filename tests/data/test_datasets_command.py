"""``astrodet datasets``: names for configs, paths for tools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from astrodet.cli import main
from astrodet.data import catalogue
from tests.conftest import astrodet_cache_env


def test_without_a_name_every_dataset_is_listed_with_its_task_and_state(
    tiny_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with astrodet_cache_env(tiny_cache):
        assert main(["datasets"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [row[0] for row in rows] == catalogue.names()
    states = {row[0]: row[2] for row in rows}
    assert states["tiny"] == "built" and states["default"] == "built on first use"
    assert {row[1] for row in rows} == {"detection", "classification"}


def test_a_name_prints_its_split_files_and_split_prints_one_path(
    tiny_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with astrodet_cache_env(tiny_cache):
        assert main(["datasets", "tiny"]) == 0
        listed = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
        assert main(["datasets", "tiny", "--split", "test"]) == 0
        test_file = Path(capsys.readouterr().out.strip())
    assert list(listed) == ["train", "val", "test"]
    assert Path(listed["test"]) == test_file
    assert json.loads(test_file.read_text())["info"]["split"] == "test"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["datasets", "nope"], "unknown dataset 'nope'; known: default, tiny"),
        (["datasets", "tiny", "--split", "dev"], "dataset 'tiny' has splits ['train', 'val', 'test'], not 'dev'"),
        (["datasets", "--split", "test"], "--split needs a dataset name"),
    ],
)
def test_bad_names_and_splits_are_one_line_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err
