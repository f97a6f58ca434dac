"""Box statistics on hand-made tables (exact numbers) and on the real Clump Scout tables (published numbers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from astrodet.data.boxstats import BoxTable, box_stats, markdown_table, read_boxes_csv
from astrodet.errors import AstrodetInputError

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "clumpscout_boxes"
HEADER = "image_id,local_ids,filename,label,label_text,x1,x2,y1,y2\n"


def _table(galaxy, label, centres, sides):
    centres = np.asarray(centres, dtype=float)
    half = np.asarray(sides, dtype=float) / 2
    return BoxTable(
        galaxy=np.asarray(galaxy, dtype=str),
        label=np.asarray(label),
        x1=centres[:, 0] - half,
        x2=centres[:, 0] + half,
        y1=centres[:, 1] - half,
        y2=centres[:, 1] + half,
    )


def test_box_stats_exact_numbers():
    # galaxy a: 1 box, b: 2 boxes, c: 3 boxes (one odd reaching outside the crop)
    table = _table(
        ["a", "b", "b", "c", "c", "c"],
        [1, 1, 2, 1, 1, 2],
        [(100, 100), (50, 100), (150, 100), (100, 40), (100, 160), (5, 100)],
        [10, 12, 12, 20, 20, 20],
    )
    stats = box_stats(table, n_galaxies_total=4)
    assert stats.n_boxes == 6 and stats.n_galaxies_with_boxes == 3
    assert stats.boxes_per_galaxy_mean == pytest.approx(2.0)
    assert stats.boxes_per_galaxy_median == 2.0
    assert (stats.boxes_per_galaxy_q25, stats.boxes_per_galaxy_q75) == (1.5, 2.5)
    assert stats.boxes_per_galaxy_distribution["1"] == pytest.approx(1 / 3)
    assert stats.boxes_per_galaxy_distribution["9+"] == 0.0
    assert stats.side_median == pytest.approx(16.0)
    assert stats.label_fractions == {1: pytest.approx(4 / 6), 2: pytest.approx(2 / 6)}
    assert stats.outside_crop_fraction == pytest.approx(1 / 6)
    assert stats.max_aspect_difference == pytest.approx(0.0)
    assert stats.no_box_fraction == pytest.approx(0.25)
    assert stats.centre_distance_median == pytest.approx(55.0)


def test_box_stats_rejects_bad_input():
    with pytest.raises(AstrodetInputError, match="no boxes"):
        box_stats(_table([], [], np.zeros((0, 2)), []))
    with pytest.raises(AstrodetInputError, match="x2 <= x1"):
        box_stats(_table(["a"], [1], [(10, 10)], [-2]))
    with pytest.raises(AstrodetInputError, match="below"):
        box_stats(_table(["a", "b"], [1, 1], [(10, 10), (20, 20)], [5, 5]), n_galaxies_total=1)


def test_read_boxes_csv_errors_name_file_row_and_column(tmp_path):
    missing = tmp_path / "missing.csv"
    missing.write_text("image_id,local_ids,label,x1,x2,y1\n1,2,1,0,1,0\n")
    with pytest.raises(AstrodetInputError, match="y2"):
        read_boxes_csv(missing)
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "1,2,images/2.png,1,clumpy,0,1,0,1\n1,2,images/2.png,x,clumpy,0,1,0,1\n")
    with pytest.raises(AstrodetInputError, match="row 3"):
        read_boxes_csv(bad)
    with pytest.raises(AstrodetInputError, match="not found"):
        read_boxes_csv(tmp_path / "nope.csv")


def test_markdown_table_has_one_column_per_table():
    stats = box_stats(_table(["a", "a"], [1, 2], [(10, 10), (50, 50)], [8, 8]))
    text = markdown_table({"left": stats, "right": stats})
    lines = text.strip().splitlines()
    assert lines[0] == "| statistic | left | right |"
    assert all(line.count("|") == 4 for line in lines)
    assert any("0.500" in line and "odd" in line for line in lines)


@pytest.mark.skipif(not REAL.is_dir(), reason=f"real Clump Scout tables not found at {REAL}")
def test_real_tables_match_published_numbers():
    train = box_stats(read_boxes_csv(REAL / "clumpscout_boxes_train.csv"))
    valid = box_stats(read_boxes_csv(REAL / "clumpscout_boxes_valid.csv"))
    assert (train.n_boxes, train.n_galaxies_with_boxes) == (32270, 13969)
    assert (valid.n_boxes, valid.n_galaxies_with_boxes) == (13894, 5987)
    assert train.boxes_per_galaxy_mean == pytest.approx(2.31, abs=0.01)
    assert train.side_median == pytest.approx(16.6, abs=0.1)
    assert train.label_fractions[2] == pytest.approx(0.277, abs=0.005)
    assert train.max_aspect_difference < 1e-9  # the real boxes are square
    assert round(train.outside_crop_fraction * train.n_boxes) == 1449
