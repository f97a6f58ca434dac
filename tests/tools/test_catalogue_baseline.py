"""tools/catalogue_baseline.py end to end on the real Perseus sample (perseus_all: converted on first use): the
image classifier's own test split, the label never a feature, intervals around the point estimates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, astrodet_cache_env


def _baseline(cache: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "tools" / "catalogue_baseline.py"), *args]
    env = dict(os.environ, ASTRODET_CACHE=str(cache))
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, cwd=cwd)


def test_the_baseline_scores_the_image_classifiers_test_split_without_the_label(
    shared_data: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    run = _baseline(cache, tmp_path, "--dataset", "perseus_all", "--bootstrap", "300", "--output-dir", "base")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((tmp_path / "base" / "report.json").read_text())
    block = report["catalogue_baseline"]
    assert block["features"] == ["mag_v", *(f"pcc_c{i}" for i in range(2, 16))]
    assert block["left_out"]["pcc_class"] == "the label: the class mapping reads it"
    assert {"pcc_id", "ra", "dec"} <= set(block["left_out"])
    from astrodet.data import catalogue

    with astrodet_cache_env(cache):
        files = catalogue.ensure("perseus_all", progress=False)
    test = json.loads(files["test"].read_text())
    train = json.loads(files["train"].read_text())
    assert report["n_images"] == len(test["images"]) and block["n_train"] == len(train["images"])
    assert block["test_file"] == str(files["test"])
    for name in ("accuracy", "balanced_accuracy", "roc_auc"):
        low, high = report["bootstrap"][name]
        assert low <= report[name] <= high
        assert f"test ({report['n_images']} objects), {name}: {report[name]:.3f}" in run.stdout
    assert len(block["cross_validation"]["roc_auc"]["per_fold"]) == 5

    again = _baseline(cache, tmp_path, "--dataset", "perseus_all", "--output-dir", "base")
    assert again.returncode == 2 and "base already holds a run (report.json)" in again.stderr
    leak = _baseline(cache, tmp_path, "--dataset", "perseus_all", "--features", "mag_v", "pcc_class", "--overwrite")
    assert leak.returncode == 2
    assert leak.stderr.strip() == (
        "catalogue_baseline.py: error: feature column(s) ['pcc_class'] would leak the label: "
        "the label: the class mapping reads it"
    )
    detection = _baseline(cache, tmp_path, "--dataset", "tiny", "--output-dir", "det")
    assert detection.returncode == 2 and "a detection dataset, not a classification one" in detection.stderr
