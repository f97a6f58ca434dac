"""``AstroReportHook``: the test evaluation writes astrodet's report into the run's work dir, under any tool.

Why a hook: a metric is built from its config alone and never sees the Runner, and mmdet's own ``tools/test.py``
rewrites nothing in the config. A hook is mmengine's way to reach the running Runner, so configs list this one in
``custom_hooks`` and ``tools/test.py CONFIG CHECKPOINT --work-dir W`` writes report.json, report.md and the plots
into W exactly as ``tools/train_mmdet.py`` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmdet.registry import HOOKS
from mmengine.hooks import Hook

from astrodet.mmdet.metrics import AstroClassificationMetric, AstroDetectionMetric

REPORTING_METRICS = (AstroDetectionMetric, AstroClassificationMetric)


@HOOKS.register_module()
class AstroReportHook(Hook):
    """Before testing, give astrodet's test metrics that have no ``output_dir`` the work dir (one metric) or
    ``work_dir/<COCO file stem>`` (several), and record the run in their report's ``meta``: the config file, the
    backbone, ``max_iters`` and the training batch size (keys the config's own ``meta`` sets are kept)."""

    def before_test(self, runner: Any) -> None:
        metrics = [m for m in runner.test_evaluator.metrics if isinstance(m, REPORTING_METRICS)]
        cfg = runner.cfg
        run = {
            "config": cfg.filename,
            "backbone": cfg.get("model", {}).get("backbone", {}).get("type"),
            "max_iters": cfg.get("train_cfg", {}).get("max_iters"),
            "batch_size": cfg.get("train_dataloader", {}).get("batch_size"),
        }
        for metric in metrics:
            if metric.output_dir is None:
                stem = Path(getattr(metric, "ann_file", "test")).stem
                metric.output_dir = runner.work_dir if len(metrics) == 1 else str(Path(runner.work_dir, stem))
            metric.meta.update({key: value for key, value in run.items() if key not in metric.meta})
