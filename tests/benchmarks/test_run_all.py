"""benchmarks/run_all.py: the cheap benchmarks in quick mode give the expected rows with positive numbers.

Only the shape and sign of the results are checked, never timings against thresholds: machines are noisy.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def run_all() -> Iterator[Any]:
    """benchmarks/run_all.py as a module, imported the way the script imports its siblings (from its folder)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))
        import run_all

        yield run_all


def test_quick_convert_and_simulate_give_one_row_per_case_and_metric(run_all: Any, shared_data: Path) -> None:
    rows, failed = run_all.collect_rows(["simulate", "convert"], quick=True)
    assert failed == {}
    assert [(r["benchmark"], r["metric"]) for r in rows] == [
        ("convert", "seconds"),
        ("convert", "rows/s"),
        ("simulate", "seconds"),
        ("simulate", "galaxies/min"),
        ("simulate", "seconds"),
        ("simulate", "galaxies/min"),
    ]  # fixed order (cheapest first) whatever the order asked for
    for row in rows:
        assert row["value"] > 0, row
        assert row["baseline_ratio"] is None or row["baseline_ratio"] > 0, row
    assert rows[0]["case"] == "clumpscout_boxes_valid.csv (13,894 rows, crop frame)"
    assert [r["baseline_ratio"] for r in rows[:2]] == [None, None]  # one converter: no baseline
    assert [r["case"] for r in rows[2:]] == ["1 worker, 16 galaxies"] * 2 + ["2 workers, 16 galaxies"] * 2
    assert [r["baseline_ratio"] for r in rows[2:4]] == [1.0, 1.0]  # one worker is the baseline

    table = run_all.format_table(rows).splitlines()
    assert table[0] == "| benchmark | case | metric | value | vs baseline |"
    assert len(table) == 2 + len(rows)
    assert table[2].endswith(" | - |") and table[4].endswith(" | 1.00x |")


def test_main_prints_one_table_and_saves_the_rows_as_json(
    run_all: Any, shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    assert run_all.main(["--quick", "--only", "convert", "--json", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[1:3] == ["| benchmark | case | metric | value | vs baseline |", "|---|---|---|---|---|"]
    assert len(printed) == 5
    saved = json.loads(out.read_text())
    assert saved["quick"] is True and saved["failed"] == {}
    assert [r["metric"] for r in saved["rows"]] == ["seconds", "rows/s"]
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]  # written atomically: no temporary file left


def test_a_failing_benchmark_is_reported_under_the_table_and_the_others_still_run(
    run_all: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import bench_convert
    import bench_simulate

    def missing_tables(quick: bool) -> list[dict[str, Any]]:
        raise FileNotFoundError("bench_convert: tables not found: x.csv")

    row = {"benchmark": "simulate", "case": "1 worker", "metric": "seconds", "value": 2.5, "baseline_ratio": 1.0}
    monkeypatch.setattr(bench_convert, "rows", missing_tables)
    monkeypatch.setattr(bench_simulate, "rows", lambda quick: [row])
    assert run_all.main(["--only", "simulate", "--only", "convert"]) == 1
    printed = capsys.readouterr().out.splitlines()
    assert printed[3:] == [
        "| simulate | 1 worker | seconds | 2.5 | 1.00x |",
        "FAILED convert: FileNotFoundError: bench_convert: tables not found: x.csv",
    ]


def test_unknown_benchmark_is_refused_with_the_choices(run_all: Any) -> None:
    with pytest.raises(ValueError, match=r"unknown benchmark\(s\) \['nope'\]; choose from \['convert', 'simulate'"):
        run_all.collect_rows(["nope"])
    with pytest.raises(SystemExit):
        run_all.main(["--only", "nope"])
