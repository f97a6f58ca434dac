"""Report files: JSON with the same numbers, readable Markdown, PNGs that open, and no partial report on failure."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from astrodet.errors import AstrodetInputError
from astrodet.evaluation import plots
from astrodet.evaluation.coco_params import run_coco_bbox
from astrodet.evaluation.detection import ImageRecord, evaluate_detections
from astrodet.evaluation.report import build_report, render_markdown, write_report

NAMES = {1: "clump", 2: "odd_clump"}
META = {"config": "frcnn_zoobot.yaml", "dataset": "sim_valid", "iterations": 500, "framework": "detectron2"}


def _data(n_images: int = 40) -> tuple[list[ImageRecord], dict, list[dict], list[tuple]]:
    rng = np.random.default_rng(0)
    records, anns, results, panels = [], [], [], []
    for i in range(n_images):
        n = int(rng.integers(0, 5))
        c = rng.uniform(15, 50, (n, 2))
        side = rng.uniform(6, 24, n)
        true = np.c_[c - side[:, None] / 2, c + side[:, None] / 2]
        corner = rng.uniform(5, 40, 2)
        pred = np.r_[true + rng.normal(0, 1.5, true.shape), [[*corner, *(corner + 9)]]]  # last one: a false positive
        pred[:, 2:] = np.maximum(pred[:, 2:], pred[:, :2] + 1)
        scores, t_cls, p_cls = rng.random(n + 1), rng.integers(1, 3, n), rng.integers(1, 3, n + 1)
        records.append(ImageRecord(true, t_cls, pred, scores, p_cls, {"flux": rng.lognormal(0, 1, n)}, i + 1))
        for b, k in zip(true, t_cls, strict=True):
            anns.append(
                {"id": len(anns) + 1, "image_id": i + 1, "category_id": int(k), "bbox": [*b[:2], *(b[2:] - b[:2])]}
            )
        for b, s, k in zip(pred, scores, p_cls, strict=True):
            results.append({"image_id": i + 1, "category_id": int(k), "bbox": [*b[:2], *(b[2:] - b[:2])], "score": s})
        if i < 5:
            image = rng.integers(0, 60, (64, 64, 3), dtype=np.uint8)
            panels.append((image, true, t_cls, pred, scores, p_cls, f"image {i + 1}"))
    images = [{"id": i + 1, "file_name": f"{i}.png", "width": 64, "height": 64} for i in range(n_images)]
    gt = {"images": images, "annotations": anns, "categories": [{"id": k, "name": v} for k, v in NAMES.items()]}
    return records, gt, results, panels


@pytest.fixture(scope="module")
def evaluated() -> tuple[dict, dict, list[tuple]]:
    records, gt, results, panels = _data()
    return evaluate_detections(records, class_names=NAMES), run_coco_bbox(gt, results), panels


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory, evaluated: tuple) -> Path:
    """One full report (with COCO, meta and example images), shared by the read-only tests."""
    detection, coco, panels = evaluated
    out = tmp_path_factory.mktemp("report")
    write_report(out, detection, coco, META, panels)
    return out


def test_report_files_hold_the_same_numbers(written: Path, evaluated: tuple) -> None:
    detection, coco, _ = evaluated
    report = json.loads((written / "report.json").read_text())
    for key in ("coco", "completeness", "purity", "score_threshold", "matching", "per_class", "curves", "bins", "meta"):
        assert key in report, key
    for key in ("completeness", "purity", "f1", "n_true", "n_pred", "n_matched", "score_threshold"):
        assert report[key] == detection[key], key
    assert report["coco"]["AP"] == pytest.approx(coco["AP"]) and report["coco"]["AP50"] == pytest.approx(coco["AP50"])
    assert report["per_class"]["clump"]["n_true"] == detection["per_class"]["clump"]["n_true"]
    assert report["curves"] == detection["curves"]
    assert report["meta"] == META
    assert set(report["plots"]) == {"pr_curve", "threshold_curves", "bins", "examples"}


def test_pngs_open_at_sensible_sizes(written: Path) -> None:
    report = json.loads((written / "report.json").read_text())
    for name in report["plots"].values():
        with Image.open(written / name) as image:
            image.verify()
        with Image.open(written / name) as image:
            assert image.format == "PNG"
            assert 300 <= image.width <= 3000 and 250 <= image.height <= 2000, (name, image.size)
    with Image.open(written / "examples.png") as grid:
        assert grid.width > grid.height  # five panels in a 4-column grid: two rows, wider than tall


def test_markdown_summarises_and_links(written: Path, evaluated: tuple) -> None:
    detection = evaluated[0]
    text = (written / "report.md").read_text()
    assert f"| Completeness | {detection['completeness']:.3f}" in text
    assert f"| Purity | {detection['purity']:.3f}" in text
    assert "| clump |" in text and "| odd_clump |" in text
    assert "### completeness by size" in text and "### completeness by flux" in text
    assert "Area ranges (box side): small 0-13 px, medium 13-21 px, large >= 21 px" in text
    assert "![pr_curve](pr_curve.png)" in text and "![examples](examples.png)" in text
    assert "| framework | detectron2 |" in text


def test_without_coco_or_panels(tmp_path: Path, evaluated: tuple) -> None:
    detection, _, _ = evaluated
    report = write_report(tmp_path, detection)
    assert report["coco"] is None and "examples" not in report["plots"]
    assert not (tmp_path / "examples.png").exists()
    assert "COCO" not in render_markdown(report)


def test_undefined_values_render_and_serialise(tmp_path: Path) -> None:
    empty = evaluate_detections([])
    write_report(tmp_path, empty)  # all-None curves and bins still plot
    assert json.loads((tmp_path / "report.json").read_text())["purity"] is None
    report = build_report(empty, meta={"lr": np.float32(1e-4), "loss": float("nan"), "path": Path("a/b")})
    assert report["meta"] == {"lr": pytest.approx(1e-4), "loss": None, "path": "a/b"}
    json.dumps(report, allow_nan=False)
    text = render_markdown(report)
    assert "| Completeness | – (0 of 0 true objects) |" in text
    assert "| lr | 0.0001 |" in text and "| loss | – |" in text
    with pytest.raises(AstrodetInputError):
        build_report({"completeness": 0.5})


def _no_temp_files(folder: Path) -> bool:
    return not any(p.name.endswith(".tmp") for p in folder.iterdir())


def test_interrupted_json_write_keeps_the_previous_report(
    tmp_path: Path, evaluated: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    detection, coco, _ = evaluated
    write_report(tmp_path, detection, coco, {"run": "old"})
    old = (tmp_path / "report.json").read_bytes()
    real_replace = os.replace

    def crash_before_rename(src: str, dst: str | os.PathLike[str]) -> None:
        if Path(dst).name == "report.json":
            assert Path(src).stat().st_size > 0  # the new JSON was being written...
            raise OSError("disk full")  # ...and the process fails before it is committed
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_before_rename)
    with pytest.raises(OSError, match="disk full"):
        write_report(tmp_path, detection, coco, {"run": "new"})
    assert (tmp_path / "report.json").read_bytes() == old
    assert json.loads(old)["meta"] == {"run": "old"}
    assert _no_temp_files(tmp_path)


def test_failed_plot_leaves_no_report(tmp_path: Path, evaluated: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    detection, coco, _ = evaluated

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("plot failed")

    monkeypatch.setattr(plots, "plot_bins", broken)
    with pytest.raises(RuntimeError):
        write_report(tmp_path / "out", detection, coco)
    assert not (tmp_path / "out" / "report.json").exists()
    assert not (tmp_path / "out" / "report.md").exists()
    assert _no_temp_files(tmp_path / "out")
