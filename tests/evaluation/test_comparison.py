"""The backbone comparison's reading of run folders: headline numbers, finished runs, iterations to the target."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from astrodet.errors import AstrodetInputError
from astrodet.evaluation.comparison import (
    COMPARISON_JSON,
    COMPARISON_MD,
    compare_runs,
    headline,
    iterations_to_target,
    run_finished,
    write_comparison,
)


def _detection_report(completeness: float, purity: float, ap: float, ap50: float, bootstrap: bool = False) -> dict:
    report = {
        "completeness": completeness,
        "purity": purity,
        "f1": 0.5,
        "coco": {"AP": ap, "AP50": ap50, "AP75": 0.1},
        "meta": {"framework": "detectron2"},
    }
    if bootstrap:
        report["bootstrap"] = {"completeness": [completeness - 0.1, completeness + 0.05], "AP50": [0.2, 0.6]}
    return report


def _classification_report(acc: float, bal: float, auc: float | None) -> dict:
    return {
        "task": "classification",
        "accuracy": acc,
        "balanced_accuracy": bal,
        "roc_auc": auc,
        "bootstrap": {"accuracy": [acc - 0.2, acc + 0.1], "balanced_accuracy": [bal - 0.2, bal + 0.1], "roc_auc": None},
    }


def _run(folder: Path, report: dict, max_iter: int = 4, metrics: list[dict] | None = None) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(f"SOLVER:\n  MAX_ITER: {max_iter}\n  BASE_LR: 0.1\n")
    (folder / "model_final.pth").write_bytes(b"weights")
    (folder / "report.json").write_text(json.dumps(report))
    lines = [json.dumps(m) for m in metrics or []]
    (folder / "metrics.json").write_text("\n".join(lines) + "\n")
    return folder


def test_headline_takes_each_metric_and_its_interval_where_the_report_has_one() -> None:
    detection = headline(_detection_report(0.6, 0.7, 0.3, 0.5, bootstrap=True), "detection")
    assert detection == {
        "completeness": {"value": 0.6, "interval": [pytest.approx(0.5), 0.65]},
        "purity": {"value": 0.7, "interval": None},
        "AP": {"value": 0.3, "interval": None},
        "AP50": {"value": 0.5, "interval": [0.2, 0.6]},
    }
    classification = headline(_classification_report(0.8, 0.75, None), "classification")
    assert classification["balanced_accuracy"] == {"value": 0.75, "interval": [pytest.approx(0.55), 0.85]}
    assert classification["roc_auc"] == {"value": None, "interval": None}


def test_iterations_to_target_counts_iterations_trained_at_the_first_evaluation_reaching_both(tmp_path: Path) -> None:
    # Detectron2 logs a periodic evaluation after N iterations at iteration N - 1, the final one at MAX_ITER.
    records = [
        {"iteration": 0, "total_loss": 1.0},
        {"iteration": 1, "astro/completeness": 0.9, "astro/purity": 0.5},  # after 2: purity short
        {"iteration": 3, "astro/completeness": 0.85, "astro/purity": 0.81},  # after 4: both
        {"iteration": 5, "astro/completeness": 0.95, "astro/purity": 0.9},
        {"iteration": 6, "astro/completeness": 0.95, "astro/purity": 0.95},  # the final evaluation, MAX_ITER 6
    ]
    metrics = tmp_path / "metrics.json"
    metrics.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    assert iterations_to_target(metrics, 6, 0.8) == 4
    assert iterations_to_target(metrics, 6, 0.9) == 6  # 5 + 1 = 6 = MAX_ITER
    assert iterations_to_target(metrics, 6, 0.92) == 6  # only the final evaluation (iteration MAX_ITER) reaches it
    assert iterations_to_target(metrics, 6, 0.99) is None


def test_an_undefined_ratio_never_reaches_the_target_and_a_bad_line_is_named(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"iteration": 1, "astro/completeness": NaN, "astro/purity": 1.0}\n')
    assert iterations_to_target(metrics, 4, 0.8) is None
    metrics.write_text('{"iteration": 1, "astro/completeness": 1.0, "astro/purity": 1.0}\n{"iteration": 2, \n')
    with pytest.raises(AstrodetInputError, match=r"metrics.json, line 2: not JSON"):
        iterations_to_target(metrics, 4, 0.8)
    with pytest.raises(AstrodetInputError, match=r"no metrics.json in the run folder"):
        iterations_to_target(tmp_path / "absent" / "metrics.json", 4, 0.8)


def test_a_run_is_finished_when_its_report_is_of_the_final_weights(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    assert not run_finished(run)
    (run / "report.json").write_text("{}")  # a periodic evaluation's report: no final weights yet
    assert not run_finished(run)
    (run / "model_final.pth").write_bytes(b"w")
    report_time = (run / "model_final.pth").stat().st_mtime
    os.utime(run / "report.json", (report_time - 10, report_time - 10))  # killed during the final evaluation
    assert not run_finished(run)
    os.utime(run / "report.json", (report_time + 1, report_time + 1))
    assert run_finished(run)


def test_the_table_holds_the_reports_numbers_and_the_differences(tmp_path: Path) -> None:
    metrics = [{"iteration": 1, "astro/completeness": 0.81, "astro/purity": 0.8}]
    random = _run(tmp_path / "random", _detection_report(0.4, 0.5, 0.1, 0.2), metrics=[])
    pretrained = _run(tmp_path / "pretrained", _detection_report(0.85, 0.9, 0.3, 0.55, bootstrap=True), metrics=metrics)
    settings = {"config_file": "configs/x.yaml", "options": ["SOLVER.MAX_ITER", "4"]}
    result = compare_runs({"random": random, "pretrained": pretrained}, eval_period=2, target=0.8, settings=settings)
    text = write_comparison(tmp_path, result)
    saved = json.loads((tmp_path / COMPARISON_JSON).read_text())
    assert saved == result and (tmp_path / COMPARISON_MD).read_text() == text
    assert saved["task"] == "detection"
    for name, folder in (("random", random), ("pretrained", pretrained)):
        report = json.loads((folder / "report.json").read_text())
        got = saved["runs"][name]["metrics"]
        assert got["completeness"]["value"] == report["completeness"] and got["purity"]["value"] == report["purity"]
        assert got["AP"]["value"] == report["coco"]["AP"] and got["AP50"]["value"] == report["coco"]["AP50"]
    assert saved["runs"]["random"]["iterations_to_target"] is None
    assert saved["runs"]["pretrained"]["iterations_to_target"] == 2
    assert math.isclose(saved["difference"]["completeness"], 0.45)
    assert "| completeness | 0.400 | 0.850 [0.750, 0.900] | +0.450 |" in text
    assert "| AP50 | 0.200 | 0.550 [0.200, 0.600] | +0.350 |" in text
    assert "| iterations to completeness and purity >= 0.8 | not reached | 2 |  |" in text
    assert "- options: SOLVER.MAX_ITER 4" in text


def test_classification_runs_compare_their_accuracies_and_no_target_without_an_eval_period(tmp_path: Path) -> None:
    a = _run(tmp_path / "a", _classification_report(0.6, 0.55, 0.7))
    b = _run(tmp_path / "b", _classification_report(0.7, 0.65, None))
    result = compare_runs({"a": a, "b": b}, settings={})
    assert result["task"] == "classification" and result["target"] is None
    assert "iterations_to_target" not in result["runs"]["a"]
    assert result["difference"]["roc_auc"] is None and math.isclose(result["difference"]["accuracy"], 0.1)
    text = write_comparison(tmp_path, result)
    assert "| balanced_accuracy | 0.550 [0.350, 0.650] | 0.650 [0.450, 0.750] | +0.100 |" in text
    assert "| roc_auc | 0.700 | – | – |" in text


def test_runs_of_different_tasks_or_a_missing_report_are_refused(tmp_path: Path) -> None:
    det = _run(tmp_path / "det", _detection_report(0.4, 0.5, 0.1, 0.2))
    cls = _run(tmp_path / "cls", _classification_report(0.6, 0.55, 0.7))
    with pytest.raises(AstrodetInputError, match=r"different tasks: \['classification', 'detection'\]"):
        compare_runs({"det": det, "cls": cls}, settings={})
    (cls / "report.json").unlink()
    with pytest.raises(AstrodetInputError, match=r"cls/report.json: no report.json \(has the run finished\?\)"):
        compare_runs({"det": det, "cls": cls}, settings={})
