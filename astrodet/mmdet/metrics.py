"""astrodet's METRICS: detection (``AstroDetectionMetric``) and classification (``AstroClassificationMetric``).

``AstroDetectionMetric``: mmdet's CocoMetric with astrodet's COCO settings, plus completeness, purity and a report.

The COCO part is mmdet's own :class:`~mmdet.evaluation.CocoMetric` (its result conversion, pycocotools run and key
names ``coco/bbox_mAP``, ``coco/bbox_mAP_50``, ...). Two settings change, as on the Detectron2 side:

- ``maxDets``: CocoMetric writes ``proposal_nums`` into pycocotools' ``maxDets``; here it is always
  ``[1, 10, max_detections]`` (astrodet's :func:`~astrodet.evaluation.coco_params.max_dets_list`), so the headline AP
  is computed at the model's detection cap (100 in the shipped configs, ``test_cfg.rcnn.max_per_img``).
- area ranges: CocoMetric builds its ``COCOeval`` inside ``compute_metrics`` with COCO's fixed ranges and exposes no
  hook for them. For the duration of one ``compute_metrics`` call the ``COCOeval`` name that CocoMetric's module uses
  is swapped for a subclass whose constructor applies :func:`~astrodet.evaluation.coco_params.apply_astrodet_params`
  (and records the instance; :func:`astrodet.mmdet.compat.astrodet_cocoeval`); everything after construction stays
  mmdet's code path.

After COCO evaluation, the same predictions (the ones pycocotools loaded) go through the core's completeness/purity
matching (:func:`~astrodet.evaluation.detection.evaluate_coco_detections`) and, when ``output_dir`` is set, the core's
report writer (report.json, report.md, PNG plots). report.json holds the unrounded COCO statistics on a 0-1 scale
(:func:`~astrodet.evaluation.coco_params.coco_stats`), the same numbers the Detectron2 evaluator writes; the logged
``coco/bbox_*`` values keep mmdet's own presentation (rounded to 3 decimals, -1 where undefined).

``AstroClassificationMetric``: collects one row per image and leaves scoring and the report to the core
(:func:`~astrodet.evaluation.classification.score_classification`, ``headline_metrics``,
``write_classification_report``).

Both write their report files when they have an ``output_dir``; ``AstroReportHook`` (:mod:`.hooks`) gives test
metrics the run's work dir.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from mmdet.evaluation.metrics.coco_metric import CocoMetric
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from pycocotools.cocoeval import COCOeval

from astrodet.evaluation.classification import headline_metrics, score_classification, write_classification_report
from astrodet.evaluation.coco_params import DEFAULT_MAX_DETECTIONS, coco_summary, max_dets_list, run_coco_bbox
from astrodet.evaluation.detection import DEFAULT_SCORE_THRESHOLD, evaluate_coco_detections
from astrodet.evaluation.matching import MatchRule
from astrodet.evaluation.panels import example_panels
from astrodet.evaluation.report import build_report, write_report
from astrodet.mmdet.compat import astrodet_cocoeval
from astrodet.mmdet.datasets import resolve_ann_file

ASTRO_PREFIX = "astro"
ASTRO_KEYS = ("completeness", "purity", "f1", "score_threshold")
# CocoMetric's key suffixes and the core's names for the same statistics.
MMDET_TO_CORE = {"mAP": "AP", "mAP_50": "AP50", "mAP_75": "AP75", "mAP_s": "APs", "mAP_m": "APm", "mAP_l": "APl"}


@METRICS.register_module()
class AstroDetectionMetric(CocoMetric):
    """COCO bbox AP with astrodet's area ranges and detection cap, completeness/purity, and report files.

    Args:
        ann_file: the COCO file being evaluated (the dataloader's); or ``dataset`` + ``split``, a catalogue dataset
            as ``AstroCocoDataset`` takes them. One is required, as completeness needs every true box, including
            those of images without predictions.
        max_detections: per-image detection cap; must equal the model's ``test_cfg.rcnn.max_per_img``.
        matching, iou_threshold, centre_radius: completeness/purity matching, as ``cfg.ASTRODET.EVAL`` in Detectron2:
            ``"iou"`` (IoU >= iou_threshold) or ``"centre"`` (centre distance <= centre_radius px).
        score_threshold: operating threshold for completeness and purity (Popp et al. 2024: 0.3).
        class_aware: a prediction matches only true boxes of its own class.
        output_dir: where report.json, report.md and the PNGs go; None writes no files (``self.report`` is still
            filled). ``AstroReportHook`` sets it to the work dir for the test evaluator.
        image_root: folder that ``file_name`` is relative to, for the example images (default: ``ann_file``'s folder).
        grid_images: images drawn in examples.png.
        meta: free-form run description stored in the report (``framework`` and ``dataset`` are filled in).
        **kwargs: passed to CocoMetric (e.g. ``classwise``, ``prefix``); ``metric`` must be ``bbox`` and
            ``proposal_nums`` is derived from ``max_detections``.
    """

    def __init__(
        self,
        ann_file: str | None = None,
        dataset: str | None = None,
        split: str | None = None,
        max_detections: int = DEFAULT_MAX_DETECTIONS,
        matching: str = "iou",
        iou_threshold: float = 0.5,
        centre_radius: float | None = 4.0,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        class_aware: bool = True,
        output_dir: str | None = None,
        image_root: str | None = None,
        grid_images: int = 12,
        meta: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("metric", "bbox") not in ("bbox", ["bbox"]):
            raise ValueError(f"AstroDetectionMetric evaluates boxes only (metric='bbox'), got {kwargs['metric']!r}")
        if "proposal_nums" in kwargs:
            raise ValueError("set max_detections instead of proposal_nums (pycocotools' maxDets = [1, 10, cap])")
        self.ann_file = str(resolve_ann_file(ann_file, dataset, split, "detection"))
        self.max_detections = int(max_detections)
        super().__init__(ann_file=self.ann_file, proposal_nums=max_dets_list(self.max_detections), **kwargs)
        self.rule = MatchRule(matching, iou_threshold=iou_threshold, radius=centre_radius)
        self.score_threshold = float(score_threshold)
        self.class_aware = bool(class_aware)
        self.output_dir = output_dir
        self.image_root = image_root or os.path.dirname(self.ann_file)
        self.grid_images = int(grid_images)
        self.meta = {"framework": "mmdet", "dataset": self.ann_file, **dict(meta or {})}
        self.report: dict[str, Any] | None = None

    def compute_metrics(self, results: list) -> dict[str, float]:
        built: list[COCOeval] = []
        with astrodet_cocoeval(self.max_detections, built):
            metrics = dict(super().compute_metrics(results))
        if self.format_only:  # CocoMetric only wrote the result files
            return metrics
        gt = self._coco_api.dataset
        if built:
            coco_eval = built[-1]
            predictions: Sequence[Mapping[str, Any]] = coco_eval.cocoDt.dataset["annotations"]
            coco = coco_summary(coco_eval)
        else:  # CocoMetric stops before pycocotools when nothing was detected; the core scores that as AP 0
            predictions = []
            coco = run_coco_bbox(gt, [], max_detections=self.max_detections)
            metrics.update({f"bbox_{k}": _mmdet_value(coco[core]) for k, core in MMDET_TO_CORE.items()})
        detection = evaluate_coco_detections(
            gt,
            predictions,
            rule=self.rule,
            score_threshold=self.score_threshold,
            class_agnostic=not self.class_aware,
            max_detections=self.max_detections,
        )
        if self.output_dir is not None:
            panels = example_panels(gt, predictions, self.image_root, self.grid_images)
            self.report = write_report(self.output_dir, detection, coco, meta=self.meta, panels=panels)
        else:
            self.report = build_report(detection, coco, meta=self.meta)
        # Logged as floats (mmengine averages and prints them); an undefined ratio (no predictions) becomes NaN here.
        for key in ASTRO_KEYS:
            metrics[f"{ASTRO_PREFIX}/{key}"] = math.nan if detection[key] is None else float(detection[key])
        return metrics

    def evaluate(self, size: int) -> dict:
        """mmengine prefixes every key with ``self.prefix`` (``coco``); completeness and purity keep ``astro/``."""
        metrics = super().evaluate(size)
        nested = f"{self.prefix}/{ASTRO_PREFIX}/" if self.prefix else None
        if nested is None:
            return metrics
        return {(k[len(self.prefix) + 1 :] if k.startswith(nested) else k): v for k, v in metrics.items()}


def _mmdet_value(value: float | None) -> float:
    """A core statistic as CocoMetric logs it: rounded to 3 decimals, -1 where pycocotools has no value."""
    return -1.0 if value is None else round(float(value), 3)


@METRICS.register_module()
class AstroClassificationMetric(BaseMetric):
    """accuracy, balanced accuracy, ROC AUC, log loss (+ vote RMSE); the full report into ``output_dir`` if set."""

    default_prefix = "astro_cls"

    def __init__(
        self,
        output_dir: str | None = None,
        n_bootstrap: int = 1000,
        seed: int = 0,
        meta: dict | None = None,
        collect_device: str = "cpu",
        prefix: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.output_dir = output_dir
        self.n_bootstrap = n_bootstrap
        self.seed = seed
        self.meta = dict(meta or {})
        self.report: dict[str, Any] | None = None

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """One row per image, as :func:`score_classification` takes them (a dict or a data element per sample)."""
        for sample in data_samples:
            get = sample.get if isinstance(sample, dict) else lambda k, s=sample: getattr(s, k, None)
            row = {"image_id": get("img_id"), "label": int(get("gt_label"))}
            if get("pred_votes") is not None:
                votes_true = get("vote_fractions")
                row["votes_pred"] = torch.as_tensor(get("pred_votes")).tolist()
                row["votes_true"] = None if votes_true is None else torch.as_tensor(votes_true).tolist()
            else:
                row["scores"] = torch.as_tensor(get("pred_score")).tolist()
            self.results.append(row)

    def compute_metrics(self, results: list[dict]) -> dict[str, float]:
        meta = self.dataset_meta or {}
        result = score_classification(
            results,
            list(meta.get("classes") or []),
            vote_columns=meta.get("vote_columns"),
            vote_class_columns=meta.get("vote_class_columns"),
            n_bootstrap=self.n_bootstrap,
            seed=self.seed,
        )
        if self.output_dir:
            meta = {"framework": "mmdetection", **self.meta}
            self.report = write_classification_report(self.output_dir, result, meta)
        return headline_metrics(result)
