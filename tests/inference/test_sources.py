"""What predict reads: folders, globs, COCO files, per-band FITS groups and --meta tables, in a stable order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from astrodet.errors import AstrodetInputError
from astrodet.inference.sources import discover, read_meta

BANDS = ("i", "r", "g")


def _touch_png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(path)


def test_folders_globs_and_band_groups(tmp_path: Path) -> None:
    for name in ("b.png", "a.jpg"):
        _touch_png(tmp_path / "cutouts" / name)
    for stem in ("100", "200"):
        for band in "gri":
            (tmp_path / "fits" / f"{stem}_{band}.fits").parent.mkdir(exist_ok=True)
            (tmp_path / "fits" / f"{stem}_{band}.fits").write_bytes(b"")
    (tmp_path / "fits" / "frame.fits").write_bytes(b"")
    units = discover([str(tmp_path / "cutouts"), str(tmp_path / "fits" / "*.fits")], BANDS)
    files = [u.file for u in units]
    assert files == [
        str(tmp_path / "cutouts" / "a.jpg"),
        str(tmp_path / "cutouts" / "b.png"),
        str(tmp_path / "fits" / "100_{band}.fits"),
        str(tmp_path / "fits" / "200_{band}.fits"),
        str(tmp_path / "fits" / "frame.fits"),
    ]
    assert [b for b, _ in units[2].band_files] == ["i", "r", "g"]
    assert units[4].band_files == () and units[4].path.endswith("frame.fits")
    again = discover([str(tmp_path / "fits" / "1*_{band}.fits"), str(tmp_path / "cutouts" / "a.jpg")], BANDS)
    assert [u.file for u in again] == [files[2], files[0]]
    assert len(discover([str(tmp_path / "cutouts"), str(tmp_path / "cutouts" / "a.jpg")], BANDS)) == 2


def test_meta_tables_and_coco_files_give_sky_hints(tmp_path: Path) -> None:
    _touch_png(tmp_path / "images" / "g1.png")
    _touch_png(tmp_path / "images" / "g2.png")
    (tmp_path / "meta.csv").write_text("filename,ra,dec,pixel_scale\nimages/g1.png,150.5,2.25,0.12\ng2.png,10,-5,\n")
    meta = read_meta(tmp_path / "meta.csv")
    g1, g2 = discover([str(tmp_path / "images")], BANDS, meta)
    assert (g1.sky.ra, g1.sky.dec, g1.sky.pixel_scale) == (150.5, 2.25, 0.12)
    assert g2.sky.pixel_scale is None
    coco = {
        "images": [{"id": 1, "file_name": "images/g1.png", "width": 8, "height": 8, "ra": 1.0, "dec": 2.0,
                    "pixel_scale": 0.3}, {"id": 2, "file_name": "images/g2.png", "width": 8, "height": 8}],
        "annotations": [],
        "categories": [{"id": 1, "name": "clump"}],
    }  # fmt: skip
    (tmp_path / "set.json").write_text(json.dumps(coco))
    a, b = discover([str(tmp_path / "set.json")], BANDS, meta)
    assert a.file == str(tmp_path / "images" / "g1.png") and a.sky.pixel_scale == 0.3
    assert b.sky == g2.sky  # no sky fields in the COCO file: --meta fills in


def test_user_errors_name_the_input(tmp_path: Path) -> None:
    with pytest.raises(AstrodetInputError, match=r"nope\.png: no such file"):
        discover([str(tmp_path / "nope.png")], BANDS)
    with pytest.raises(AstrodetInputError, match="no files match"):
        discover([str(tmp_path / "*.png")], BANDS)
    (tmp_path / "empty").mkdir()
    with pytest.raises(AstrodetInputError, match="holds no PNG"):
        discover([str(tmp_path / "empty")], BANDS)
    (tmp_path / "table.txt").write_text("x")
    with pytest.raises(AstrodetInputError, match="not an input"):
        discover([str(tmp_path / "table.txt")], BANDS)
    (tmp_path / "meta.csv").write_text("name,ra\na.png,1\n")
    with pytest.raises(AstrodetInputError, match="no column for filename, dec"):
        read_meta(tmp_path / "meta.csv")
    (tmp_path / "meta.csv").write_text("filename,ra,dec\na.png,400,1\n")
    with pytest.raises(AstrodetInputError, match="row 2, column ra"):
        read_meta(tmp_path / "meta.csv")
