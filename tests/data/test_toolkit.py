"""Converter toolkit: CSV rows keep their numbers, errors name the line, options come from flags by field name."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from astrodet.data import catalog, clumpscout, convert, galaxyzoo
from astrodet.data.catalog import CatalogOptions
from astrodet.data.clumpscout import ClumpScoutOptions
from astrodet.data.galaxyzoo import GalaxyZooOptions
from astrodet.data.npzcutouts import NpzOptions
from astrodet.data.toolkit import (
    build_options,
    id_value,
    images_dir_for,
    options_from_args,
    pick_column,
    read_csv,
    rejects_path,
    split_path,
)
from astrodet.errors import AstrodetInputError


def test_read_csv_skips_blank_lines_but_keeps_row_numbers(tmp_path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("\ufeff a ,b\n1,2\n\n3,4\n")
    table = read_csv(path)
    assert table.header == ["a", "b"]
    assert table.rows == [["1", "2"], ["3", "4"]] and table.numbers == [2, 4]
    assert table.values(1) == {"a": "3", "b": "4"}


def test_read_csv_errors_name_the_file_and_line(tmp_path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes("a,b\n1,2\ncaf\xe9,3\n".encode("latin-1"))
    with pytest.raises(AstrodetInputError, match=r"latin\.csv: line 3 is not UTF-8 text \(byte 0xe9\)"):
        read_csv(latin)
    huge = tmp_path / "huge.csv"
    huge.write_text("a,b\n1,2\n3," + "x" * 200_000 + "\n")  # over the csv module's field size limit
    with pytest.raises(AstrodetInputError, match=r"huge\.csv: line 3: not a readable CSV table"):
        read_csv(huge)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(AstrodetInputError, match="empty file, expected a header row x,y"):
        read_csv(empty, "x,y")
    with pytest.raises(AstrodetInputError, match="no such table"):
        read_csv(tmp_path / "none.csv")


def test_columns_ids_and_output_names() -> None:
    assert pick_column(["ID", "RA"], ("objid", "id")) == 0
    assert pick_column(["ID", "RA"], ("dec",)) is None
    assert pick_column(["ID", "RA"], (), given="RA") == 1
    with pytest.raises(AstrodetInputError, match=r"column 'ra' is not in the catalogue; columns: ID, RA"):
        pick_column(["ID", "RA"], (), given="ra", where="the catalogue")
    assert id_value(" 0042 ") == 42 and id_value("g1") == "g1" and id_value("") is None and id_value("²") == "²"
    out = Path("data/gz2.json")
    assert split_path(out, None) == out and split_path(out, "train") == Path("data/gz2_train.json")
    assert images_dir_for(out) == Path("data/gz2_images")
    assert rejects_path(out) == Path("data/gz2_rejects.csv") and rejects_path(out, Path("r.csv")) == Path("r.csv")


def _parse(module, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    convert._add_common_arguments(parser)
    return parser.parse_args(argv)


def test_every_option_field_is_a_flag_dest_and_the_old_spelling_still_parses(tmp_path) -> None:
    common = ["--out", str(tmp_path / "o.json"), "--split", "train=0.5,test=0.5", "--rejects", "r.csv"]
    args = _parse(clumpscout, ["--boxes", "b.csv", "--image-size", "400", "400", "--frame", "full", *common])
    opts = options_from_args(ClumpScoutOptions, args)
    assert opts.geometry.offset == (100, 100) and opts.split == {"train": 0.5, "test": 0.5}
    assert opts.rejects_csv == Path("r.csv")
    args = _parse(galaxyzoo, ["--table", "t.csv", "--center-crop", "180", *common])
    assert options_from_args(GalaxyZooOptions, args).centre_crop == 180
    flags = ["--catalog", "c.csv", "--center-crop", "20", "--cut", "mag < 3", "--fits", "a.fits"]
    opts = options_from_args(CatalogOptions, _parse(catalog, [*flags, *common]))
    assert opts.centre_crop == 20 and opts.fits == (Path("a.fits"),)
    assert [c.text for c in opts.applied_cuts] == ["mag < 3"]
    args = _parse(catalog, ["--npz", "x.npz", "--classes", "a", "b", *common])
    assert options_from_args(NpzOptions, args).classes == ["a", "b"]
    partial = argparse.Namespace(images_dir=None, image_size=(400, 400))  # a parser that lacks the other flags
    with pytest.raises(TypeError, match="ClumpScoutOptions: no command-line option has dest split, seed, rejects_csv"):
        options_from_args(ClumpScoutOptions, partial)


def test_keyword_options_are_checked_by_field_name() -> None:
    opts = build_options(GalaxyZooOptions, None, {"centre_crop": 180, "split": "train=1"}, "convert_galaxyzoo")
    assert opts.centre_crop == 180 and opts.split == {"train": 1.0}
    with pytest.raises(TypeError, match=r"convert_galaxyzoo: unknown option\(s\) center_crop; known: .*centre_crop"):
        build_options(GalaxyZooOptions, None, {"center_crop": 180}, "convert_galaxyzoo")
    with pytest.raises(TypeError, match="not both"):
        build_options(GalaxyZooOptions, opts, {"seed": 1}, "convert_galaxyzoo")
    with pytest.raises(AstrodetInputError, match="--centre-crop must be a positive"):
        GalaxyZooOptions(centre_crop=0)
    with pytest.raises(AstrodetInputError, match="--frame must be"):
        CatalogOptions(frame="ecliptic")
