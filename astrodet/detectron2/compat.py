"""Every patch astrodet applies to Detectron2, in one place, guarded by the Detectron2 versions it was tested on.

Why gathered: each patch swaps a module-level name that Detectron2's own code looks up at call time, so a Detectron2
release that moves or renames one breaks it quietly. Here they are listed with what they rely on, and importing
astrodet's adapter on an untested Detectron2 warns once naming the version and what may break (it still runs).

- :func:`cpu_ddp`: ``detectron2.engine.defaults.create_ddp_model``, called by ``DefaultTrainer.__init__``.
- :func:`astrodet_cocoeval`: ``COCOeval`` and ``COCOevalMaxDets`` in ``detectron2.evaluation.coco_evaluation``,
  built by ``COCOEvaluator._eval_predictions``; the patching itself is the core's
  :func:`astrodet.evaluation.coco_params.patched_cocoeval`, shared with the MMDetection adapter.
"""

from __future__ import annotations

import contextlib
import functools
import re
import warnings
from collections.abc import Iterator

import detectron2
from detectron2.engine import defaults as d2_defaults
from detectron2.evaluation import coco_evaluation as d2_coco_evaluation
from pycocotools.cocoeval import COCOeval

from astrodet.evaluation.coco_params import patched_cocoeval

# Detectron2 releases these patches were tested on, as (major, minor) bounds, both inclusive: 0.7.2 (sal-detectron2,
# the PyPI republication scripts/install.sh falls back to) and 0.6, the version string of the upstream source it
# republishes (the install script's first route).
TESTED_RANGE: tuple[tuple[int, int], tuple[int, int]] = ((0, 6), (0, 7))
PATCHED: tuple[str, ...] = (
    "detectron2.engine.defaults.create_ddp_model (multi-process CPU training)",
    "detectron2.evaluation.coco_evaluation.COCOeval / COCOevalMaxDets (astrodet's COCO area ranges and detection cap)",
)


def _major_minor(version: str) -> tuple[int, int] | None:
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2])) if match else None


def is_tested(version: str) -> bool:
    """Whether a Detectron2 version string lies in :data:`TESTED_RANGE`."""
    parsed = _major_minor(version)
    return parsed is not None and TESTED_RANGE[0] <= parsed <= TESTED_RANGE[1]


@functools.cache
def check_detectron2_version(version: str = detectron2.__version__) -> bool:
    """Warn (once per version) when Detectron2 is outside the tested range; returns whether it is inside."""
    if is_tested(version):
        return True
    low, high = (".".join(map(str, v)) for v in TESTED_RANGE)
    warnings.warn(
        f"astrodet's Detectron2 adapter was tested with detectron2 {low} to {high}.x, found {version}; "
        f"these patches may break: {'; '.join(PATCHED)} (astrodet/detectron2/compat.py)",
        RuntimeWarning,
        stacklevel=2,
    )
    return False


@contextlib.contextmanager
def cpu_ddp(device: str) -> Iterator[None]:
    """Multi-process CPU training: DistributedDataParallel refuses ``device_ids`` for CPU modules, which Detectron2
    always passes; within the block (the trainer's construction) models are wrapped without them."""
    if not device.startswith("cpu"):
        yield
        return
    original = d2_defaults.create_ddp_model
    d2_defaults.create_ddp_model = functools.partial(original, device_ids=None)
    try:
        yield
    finally:
        d2_defaults.create_ddp_model = original


def astrodet_cocoeval(max_detections: int, built: list[COCOeval] | None = None) -> contextlib.AbstractContextManager:
    """Within the block, Detectron2's COCOEvaluator evaluates with astrodet's area ranges and ``max_detections``;
    each COCOeval it builds is appended to ``built``."""
    return patched_cocoeval(d2_coco_evaluation, ("COCOeval", "COCOevalMaxDets"), max_detections, built)


check_detectron2_version()
