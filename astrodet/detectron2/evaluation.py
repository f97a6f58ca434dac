"""Detectron2 evaluation with astrodet's settings: COCO AP for compact sources plus completeness and purity.

:class:`AstroDetectionEvaluator` is Detectron2's own COCOEvaluator (pycocotools, official implementation) with two
changes: pycocotools' area ranges and max detections are astrodet's (the patch is in :mod:`astrodet.detectron2.compat`),
and after COCO evaluation the same predictions go through the core's completeness/purity matching and the report
writer.
"""

from __future__ import annotations

import os
from typing import Any

from detectron2.config import CfgNode
from detectron2.data import MetadataCatalog
from detectron2.evaluation import COCOEvaluator
from pycocotools.cocoeval import COCOeval

from astrodet.detectron2.compat import astrodet_cocoeval
from astrodet.evaluation.coco_params import coco_summary, run_coco_bbox
from astrodet.evaluation.detection import evaluate_coco_detections
from astrodet.evaluation.matching import MatchRule
from astrodet.evaluation.panels import example_panels
from astrodet.evaluation.report import write_report


def match_rule_from_cfg(cfg: CfgNode) -> MatchRule:
    """The core's matching rule from ``cfg.ASTRODET.EVAL``."""
    ev = cfg.ASTRODET.EVAL
    return MatchRule(ev.MATCHING, iou_threshold=ev.IOU_THRESHOLD, radius=ev.CENTRE_RADIUS)


class AstroDetectionEvaluator(COCOEvaluator):
    """COCOEvaluator + completeness/purity + report files, configured from ``cfg.ASTRODET.EVAL``."""

    def __init__(self, dataset_name: str, cfg: CfgNode, output_dir: str | None = None, distributed: bool = True):
        self._max_detections = int(cfg.TEST.DETECTIONS_PER_IMAGE)
        super().__init__(
            dataset_name,
            tasks=("bbox",),
            distributed=distributed,
            output_dir=output_dir,
            use_fast_impl=False,  # the official pycocotools implementation (detectron2's fast one is compiled)
            max_dets_per_image=self._max_detections,
        )
        self._dataset_name = dataset_name
        self._rule = match_rule_from_cfg(cfg)
        self._score_threshold = float(cfg.ASTRODET.EVAL.SCORE_THRESHOLD)
        self._class_agnostic = not cfg.ASTRODET.EVAL.CLASS_AWARE
        self._write = bool(cfg.ASTRODET.EVAL.REPORT) and output_dir is not None
        self._grid_images = int(cfg.ASTRODET.EVAL.GRID_IMAGES)
        self._meta = {
            "framework": "detectron2",
            "dataset": dataset_name,
            "backbone": cfg.MODEL.BACKBONE.NAME,
            "max_iter": cfg.SOLVER.MAX_ITER,
            "input_size_test": cfg.INPUT.MIN_SIZE_TEST,
        }
        self.report: dict[str, Any] | None = None

    def _eval_predictions(self, predictions, img_ids=None):
        built: list[COCOeval] = []
        with astrodet_cocoeval(self._max_detections, built):
            super()._eval_predictions(predictions, img_ids)
        # super() has mapped every prediction's category_id back to the dataset's ids.
        results = [r for p in predictions for r in p["instances"]]
        gt = self._coco_api.dataset
        detection = evaluate_coco_detections(
            gt,
            results,
            rule=self._rule,
            score_threshold=self._score_threshold,
            class_agnostic=self._class_agnostic,
            max_detections=self._max_detections,
        )
        if built:
            coco = coco_summary(built[-1])
        else:  # Detectron2 skips pycocotools when nothing was detected; the core scores that as AP 0, not "absent"
            coco = run_coco_bbox(gt, [], max_detections=self._max_detections)
        # Detectron2 prints and logs these as floats; an undefined ratio (no predictions) becomes NaN here only.
        self._results["astro"] = {
            key: float("nan") if detection[key] is None else float(detection[key])
            for key in ("completeness", "purity", "f1", "score_threshold")
        }
        if self._write:
            image_root = MetadataCatalog.get(self._dataset_name).get(
                "image_root", os.path.dirname(self._metadata.json_file)
            )
            panels = example_panels(gt, results, image_root, self._grid_images)
            self.report = write_report(self._output_dir, detection, coco, meta=self._meta, panels=panels)
