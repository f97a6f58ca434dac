"""Framework-free evaluation: box matching, completeness/purity, COCO settings for compact sources, reports.

Shared by the Detectron2 and MMDetection adapters and ``astrodet evaluate``; imports neither framework nor torch. The
rules and the result layout are documented in docs/evaluation.md. Sky matching lives in
:mod:`astrodet.evaluation.sky` (not imported here: it loads astropy's coordinates).
"""

from astrodet.evaluation.bootstrap import BootstrapSpec, ap50_intervals
from astrodet.evaluation.coco_params import (
    ASTRODET_AREA_RANGES,
    DEFAULT_MAX_DETECTIONS,
    LARGE_MIN_SIDE,
    SMALL_MAX_SIDE,
    apply_astrodet_params,
    area_ranges,
    build_coco_eval,
    coco_stats,
    evaluated_coco_eval,
    max_dets_list,
    per_class_ap,
    run_coco_bbox,
)
from astrodet.evaluation.detection import (
    DEFAULT_SCORE_THRESHOLD,
    DEFAULT_SIZE_EDGES,
    DEFAULT_THRESHOLDS,
    ImageRecord,
    coco_class_names,
    evaluate_coco_detections,
    evaluate_detections,
    records_from_coco,
)
from astrodet.evaluation.matching import (
    MatchResult,
    MatchRule,
    centre_distance_matrix,
    greedy_match,
    iou_matrix,
    match,
)
from astrodet.evaluation.plots import (
    ImagePanel,
    plot_bins,
    plot_image_grid,
    plot_pr_curve,
    plot_threshold_curves,
)
from astrodet.evaluation.report import build_report, render_markdown, write_report

__all__ = [
    "ASTRODET_AREA_RANGES",
    "DEFAULT_MAX_DETECTIONS",
    "DEFAULT_SCORE_THRESHOLD",
    "DEFAULT_SIZE_EDGES",
    "DEFAULT_THRESHOLDS",
    "LARGE_MIN_SIDE",
    "SMALL_MAX_SIDE",
    "BootstrapSpec",
    "ImagePanel",
    "ImageRecord",
    "MatchResult",
    "MatchRule",
    "ap50_intervals",
    "apply_astrodet_params",
    "area_ranges",
    "build_coco_eval",
    "build_report",
    "centre_distance_matrix",
    "coco_class_names",
    "coco_stats",
    "evaluate_coco_detections",
    "evaluate_detections",
    "evaluated_coco_eval",
    "greedy_match",
    "iou_matrix",
    "match",
    "max_dets_list",
    "per_class_ap",
    "plot_bins",
    "plot_image_grid",
    "plot_pr_curve",
    "plot_threshold_curves",
    "records_from_coco",
    "render_markdown",
    "run_coco_bbox",
    "write_report",
]
