"""Bootstrap intervals: seeded, one resample equals scoring the resampled images from scratch (completeness, purity
and pycocotools' AP50), and the object units of a catalogue-wide match."""

from __future__ import annotations

import numpy as np
import pytest

from astrodet.errors import AstrodetInputError
from astrodet.evaluation.bootstrap import BootstrapSpec, ap50_intervals, resamples
from astrodet.evaluation.coco_params import evaluated_coco_eval, run_coco_bbox
from astrodet.evaluation.detection import ImageRecord, evaluate_coco_detections, evaluate_detections
from astrodet.evaluation.matching import MatchRule

NAMES = {1: "clump", 2: "odd_clump"}


def _coco(n_images: int = 30, seed: int = 0) -> tuple[dict, list[dict]]:
    rng = np.random.default_rng(seed)
    anns, results = [], []
    for i in range(1, n_images + 1):
        n = int(rng.integers(0, 5))
        for _ in range(n):
            x, y, side, cls = *rng.uniform(5, 45, 2), rng.uniform(6, 20), int(rng.integers(1, 3))
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": cls, "bbox": [x, y, side, side]})
            if rng.random() < 0.8:
                jitter = rng.normal(0, 1.0, 2)
                box = [x + jitter[0], y + jitter[1], side, side]
                results.append({"image_id": i, "category_id": cls, "bbox": box, "score": float(rng.random())})
        if rng.random() < 0.4:
            results.append({"image_id": i, "category_id": 1, "bbox": [1, 1, 8, 8], "score": float(rng.random())})
    images = [{"id": i, "file_name": f"{i}.png", "width": 64, "height": 64} for i in range(1, n_images + 1)]
    gt = {"images": images, "annotations": anns, "categories": [{"id": k, "name": v} for k, v in NAMES.items()]}
    return gt, results


def _resampled(gt: dict, results: list[dict], idx: np.ndarray) -> tuple[dict, list[dict]]:
    """The data set made of the drawn images (repeats become new images), in draw order."""
    images, anns, res = [], [], []
    for new_id, pos in enumerate(idx.tolist(), start=1):
        old = gt["images"][pos]["id"]
        images.append({**gt["images"][pos], "id": new_id})
        anns += [{**a, "id": len(anns) + k + 1, "image_id": new_id} for k, a in
                 enumerate(a for a in gt["annotations"] if a["image_id"] == old)]  # fmt: skip
        res += [{**r, "image_id": new_id} for r in results if r["image_id"] == old]
    return {**gt, "images": images, "annotations": anns}, res


def test_spec_validation() -> None:
    for bad in ({"n_resamples": -1}, {"confidence": 1.0}, {"unit": "galaxy"}, {"n_resamples": 2.5}):
        with pytest.raises(AstrodetInputError):
            BootstrapSpec(**bad)  # type: ignore[arg-type]


def test_one_resample_equals_scoring_the_resampled_images() -> None:
    gt, results = _coco()
    for seed in (0, 1, 2):
        spec = BootstrapSpec(n_resamples=1, seed=seed)
        idx = next(resamples(len(gt["images"]), 1, seed))
        boot = evaluate_coco_detections(gt, results, bootstrap=spec)["bootstrap"]
        again = evaluate_coco_detections(*_resampled(gt, results, idx))
        assert boot["completeness"] == [again["completeness"]] * 2
        assert boot["purity"] == [again["purity"]] * 2
        coco_eval = evaluated_coco_eval(gt, results)
        ap50 = ap50_intervals(coco_eval, [img["id"] for img in gt["images"]], spec)
        assert ap50["AP50"] == pytest.approx([run_coco_bbox(*_resampled(gt, results, idx))["AP50"]] * 2, abs=1e-12)


def test_intervals_are_seeded_and_bracket_the_estimate() -> None:
    gt, results = _coco(60)
    first = evaluate_coco_detections(gt, results, bootstrap=BootstrapSpec(300, seed=5))
    again = evaluate_coco_detections(gt, results, bootstrap=BootstrapSpec(300, seed=5))
    other = evaluate_coco_detections(gt, results, bootstrap=BootstrapSpec(300, seed=6))
    assert first["bootstrap"] == again["bootstrap"] != other["bootstrap"]
    boot = first["bootstrap"]
    assert boot["n_resamples"] == 300 and boot["unit"] == "image" and boot["completeness_defined_in"] == 300
    for key in ("completeness", "purity"):
        lo, hi = boot[key]
        assert lo <= first[key] <= hi and hi - lo < 0.5
    assert "bootstrap" not in evaluate_coco_detections(gt, results)  # the layout of existing reports is unchanged


def test_undefined_resamples_are_skipped_and_counted() -> None:
    records = [ImageRecord([[0, 0, 5, 5]], pred_boxes=[[0, 0, 5, 5]], pred_scores=[0.9]), ImageRecord([])]
    boot = evaluate_detections(records, bootstrap=BootstrapSpec(200, seed=0))["bootstrap"]
    assert 0 < boot["completeness_defined_in"] < 200  # resamples drawing only the empty image have no truths
    assert boot["completeness"] == [1.0, 1.0]
    none = evaluate_detections([ImageRecord([])], bootstrap=BootstrapSpec(50))["bootstrap"]
    assert none["completeness"] is None and none["completeness_defined_in"] == 0


def test_object_units_resample_pairs_and_unmatched_objects() -> None:
    truths = [[10.0, 0.0], [10.0, 0.01], [10.0, 0.02]]
    record = ImageRecord(
        None, [1, 1, 1], None, [0.9, 0.8, 0.7], [1, 1, 1], true_sky=truths, pred_sky=[[10, 0], [10, 0.01], [12, 0]]
    )
    spec = BootstrapSpec(1, seed=3, unit="object")
    result = evaluate_detections([record], MatchRule("sky", radius=1.0), bootstrap=spec)
    # units: pair 0, pair 1, lone truth 2, lone prediction 2
    idx = next(resamples(4, 1, 3))
    n_true, n_hit, n_pred = (np.array(v)[idx].sum() for v in ([1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 0, 1]))
    boot = result["bootstrap"]
    assert boot["unit"] == "object"
    assert boot["completeness"] == ([n_hit / n_true] * 2 if n_true else None)
    assert boot["purity"] == ([n_hit / n_pred] * 2 if n_pred else None)
    with pytest.raises(AstrodetInputError, match="by image"):
        gt, results = _coco(3)
        ap50_intervals(evaluated_coco_eval(gt, results), [1, 2, 3], spec)
