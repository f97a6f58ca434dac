"""benchmarks/bench_predict.py: the bf16 and Ray rows are built from the timings as the docstring says (the timings
themselves run only in the benchmark: minutes of Ray calls)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench_predict() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))
        import bench_predict

        yield bench_predict


def test_ray_rows_give_the_whole_call_rate_per_worker_and_ratios_to_the_fp32_baseline(bench_predict: Any) -> None:
    timed = {name: {"cutouts/s": 2.0 + k, "bf16 cutouts/s": 4.0} for k, name in enumerate(bench_predict.MODELS)}
    on_ray = {name: {"all": 16.0, "one": 10.0} for name in bench_predict.MODELS}
    rows = bench_predict.engine_rows("detectron2", 8, timed, on_ray, n_ray=16)
    assert [(r["metric"], r["value"], r["baseline_ratio"]) for r in rows[:6]] == [
        ("cutouts/s", 4.0, 2.0),  # bf16, vs frcnn_r50's fp32 single process (2.0)
        ("cutouts/s", 1.0, 0.5),  # 16 cutouts in 16 s on Ray
        ("cutouts/s per worker", 0.5, 0.25),
        ("s", 10.0, None),  # one cutout: the fixed cost of a call
        ("cutouts/s", 2.5, 1.25),  # after the fixed cost: 15 more cutouts in 6 more seconds
        ("cutouts/s per worker", 1.25, 0.625),
    ]
    labels = [f"detectron2 {name}" for name in bench_predict.MODELS for _ in range(6)]
    assert [r["case"].split(" (")[0] for r in rows] == labels
    assert "Ray 2 workers" in rows[1]["case"] and rows[0]["case"].endswith(", bf16")
    without_bf16_or_ray = {name: {"cutouts/s": 2.0} for name in bench_predict.MODELS}
    assert bench_predict.engine_rows("detectron2", 8, without_bf16_or_ray, {}) == []
