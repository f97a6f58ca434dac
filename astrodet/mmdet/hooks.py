"""astrodet's mmengine hooks, listed in the configs' ``custom_hooks`` so that they act under any tool.

Why hooks: a metric is built from its config alone and never sees the Runner, mmengine loads and saves checkpoints
inside the Runner, and mmdet's own ``tools/train.py`` and ``tools/test.py`` rewrite nothing in the config. A hook is
mmengine's way to reach the running Runner, so:

- ``AstroReportHook``: ``tools/test.py CONFIG CHECKPOINT --work-dir W`` writes report.json, report.md and the plots
  into W exactly as ``tools/train_mmdet.py`` does.
- ``AstroCheckpointHook``: a checkpoint the Runner loads (``load_from``, ``resume``) none of whose weights fits the
  model is refused, naming the file, instead of training or testing random weights with exit 0; and every
  checkpoint it saves records the training image recipe, so ``astrodet predict`` renders inputs as the training
  pixels were made whatever config it is given (the training data's classes are in mmengine's own
  ``meta['dataset_meta']``).
- ``BackbonePrecisionHook``: trains the backbone and neck under bf16 autocast, as Detectron2's
  ``ASTRODET.SOLVER.PRECISION`` does (mmengine's ``AmpOptimWrapper`` runs on GPUs only, and bf16 needs no loss
  scaling); validation and testing stay fp32.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmdet.registry import HOOKS
from mmengine.config import Config
from mmengine.hooks import Hook

from astrodet.errors import AstrodetInputError
from astrodet.inference.model import SIMULATOR_RECIPE, ImageRecipe
from astrodet.inference.precision import PRECISIONS, bf16_available, check_precision, features_in, module_device
from astrodet.mmdet.compat import check_checkpoint_fits, runner_checkpoint_file
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


def config_image_recipe(cfg: Mapping[str, Any]) -> ImageRecipe:
    """The recipe of a config's training pixels: its ``image_recipe = dict(...)``, else the simulator's (every
    config trained on astrodet's PNG cutouts)."""
    stored = cfg.get("image_recipe")
    return ImageRecipe.from_dict(dict(stored)) if stored else SIMULATOR_RECIPE


def stored_image_recipe(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`config_image_recipe` as plain dicts, lists and numbers: a checkpoint is read back with
    ``weights_only=True``, which would refuse a ConfigDict nested in the config's ``params``."""
    return json.loads(json.dumps(config_image_recipe(cfg).to_dict()))


@HOOKS.register_module()
class AstroCheckpointHook(Hook):
    """Refuses a loaded checkpoint none of whose weights fits the model (:func:`check_checkpoint_fits`, on
    ``load_from`` and on resuming); writes ``meta['image_recipe']`` into every checkpoint the Runner saves."""

    priority = "VERY_HIGH"  # before any other hook acts on what was loaded

    def before_run(self, runner: Any) -> None:
        stored_image_recipe(runner.cfg)  # a malformed image_recipe stops the run now, not at the first save

    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        check_checkpoint_fits(runner.model, checkpoint, runner_checkpoint_file(runner))

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        checkpoint.setdefault("meta", {})["image_recipe"] = stored_image_recipe(runner.cfg)


@HOOKS.register_module()
class BackbonePrecisionHook(Hook):
    """Each training iteration runs the model's backbone and neck under ``precision`` autocast: ``fp32``, ``bf16``
    or ``auto`` (bf16 where the device has bf16 kernels, fp32 elsewhere, so a shipped config runs everywhere)."""

    def __init__(self, precision: str = "auto") -> None:
        if precision not in (*PRECISIONS, "auto") or precision == "fp16":
            raise AstrodetInputError(
                f"BackbonePrecisionHook precision {precision!r}: expected fp32, bf16 or auto (fp16 needs a gradient "
                "scaler: tools/train_mmdet.py --amp on a GPU)"
            )
        self.precision = precision
        self._within: contextlib.ExitStack | None = None

    def _modules(self, runner: Any) -> list[Any]:
        model = runner.model.module if hasattr(runner.model, "module") else runner.model
        return [m for m in (model.backbone, getattr(model, "neck", None)) if m is not None]

    def before_run(self, runner: Any) -> None:
        device = module_device(self._modules(runner)[0])
        if self.precision == "auto":
            self.precision = "bf16" if bf16_available(device) else "fp32"
            runner.logger.info(f"BackbonePrecisionHook auto: the backbone trains in {self.precision} on {device}")
        check_precision(self.precision, device)

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        self._within = contextlib.ExitStack()
        self._within.enter_context(features_in(self.precision, self._modules(runner)))

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if self._within is not None:
            self._within.close()
            self._within = None


def with_checkpoint_hook(cfg: Config) -> None:
    """Add :class:`AstroCheckpointHook` to ``cfg.custom_hooks`` unless it is there (a config that does not inherit
    astrodet's bases), so that ``tools/train_mmdet.py`` applies the same rule to every config."""
    hooks = list(cfg.get("custom_hooks") or [])
    kinds = [hook.get("type") for hook in hooks]  # a class, a name or a scoped name ("mmdet.AstroCheckpointHook")
    names = {kind.__name__ if isinstance(kind, type) else str(kind).rsplit(".", 1)[-1] for kind in kinds}
    if AstroCheckpointHook.__name__ not in names:
        cfg.custom_hooks = [*hooks, dict(type=AstroCheckpointHook.__name__)]
