"""The rejects ledger: counts by reason, checked accounting, an atomically written CSV a user can read."""

from __future__ import annotations

import pytest

from astrodet.data.rejects import ConversionSummary, RejectsLedger, read_rejects_csv


def _ledger() -> RejectsLedger:
    ledger = RejectsLedger()
    ledger.add("boxes.csv", 5, "missing_image", "image a.png not found", {"filename": "a.png", "x1": "1"})
    ledger.add("boxes.csv", 9, "not_finite", "x1 is not a finite number: 'nan'", {"filename": "b.png", "x1": "nan"})
    ledger.add("boxes.csv", 3, "missing_image", "image c.png not found", {"filename": "c.png", "row": "7"})
    ledger.add("galaxies.csv", 2, "bad_value", "ra must be degrees", {"local_ids": "9", "ra": "999"})
    return ledger


def test_counts_and_summary():
    ledger = _ledger()
    assert len(ledger) == 4
    assert ledger.counts("boxes.csv") == {"missing_image": 2, "not_finite": 1}
    assert ledger.counts() == {"missing_image": 2, "bad_value": 1, "not_finite": 1}
    line = ledger.summary(10, 7, file="boxes.csv")
    assert line == "10 rows in = 7 converted + 3 rejected (missing_image: 2, not_finite: 1)"
    assert RejectsLedger().summary(4, 4) == "4 rows in = 4 converted + 0 rejected"
    with pytest.raises(RuntimeError, match="accounting"):
        ledger.summary(10, 8, file="boxes.csv")


def test_csv_report(tmp_path):
    path = _ledger().write_csv(tmp_path / "rejects.csv")
    rows = read_rejects_csv(path)
    assert [(r["file"], r["row"], r["reason"]) for r in rows][:2] == [
        ("boxes.csv", "5", "missing_image"),
        ("boxes.csv", "9", "not_finite"),
    ]
    assert rows[1]["x1"] == "nan" and rows[0]["filename"] == "a.png"
    assert rows[2]["input_row"] == "7"  # an input column named "row" does not shadow the report's row number
    assert rows[3]["ra"] == "999" and rows[3]["filename"] == ""
    assert [p.name for p in tmp_path.iterdir()] == ["rejects.csv"]
    empty = RejectsLedger().write_csv(tmp_path / "empty.csv")
    assert empty.read_text() == "file,row,reason,message\n"


def test_conversion_summary_checks_its_numbers():
    summary = ConversionSummary(rows_in=5, rows_out=3, rejected={"duplicate": 2}, outputs={}, out_label="boxes out")
    assert summary.line() == "5 rows in = 3 boxes out + 2 rejected (duplicate: 2)"
    assert summary.n_rejected == 2
    with pytest.raises(RuntimeError, match="accounting"):
        ConversionSummary(rows_in=5, rows_out=4, rejected={"duplicate": 2}, outputs={})
