"""Every change astrodet makes to mmengine / mmcv / mmdet behaviour, in one place, with the versions it was made for.

Why one module: each patch depends on a framework internal that a release may move, so the versions they were
written and tested against are checked here once, on import, and the warning names what may break. The patches:

- :func:`astrodet_cocoeval`: astrodet's COCO area ranges and detection cap inside mmdet's ``CocoMetric`` (mmdet
  builds its ``COCOeval`` in ``compute_metrics`` with no hook for them; the swap itself is the core's
  :func:`~astrodet.evaluation.coco_params.patched_cocoeval`).
- :func:`configure_device` / :func:`shutdown_process_group`: several CPU processes (gloo, DDP without device ids).
- :func:`load_local_checkpoint`, installed on import as mmengine's loader for local files: a checkpoint never runs
  code (``weights_only=True``), and the few plain types mmengine's own checkpoints hold are allow-listed, so
  ``--resume``, ``load_from``, mmdet's ``tools/test.py CHECKPOINT`` and ``init_cfg`` Pretrained all read them.
- :func:`check_checkpoint_fits`, :func:`runner_checkpoint_file`: what ``AstroCheckpointHook`` checks on every
  checkpoint a Runner loads, naming the file that the Runner keeps in private attributes.
"""

from __future__ import annotations

import logging
import pickle
import re
import warnings
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from mmdet.evaluation.metrics import coco_metric as mmdet_coco_metric
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader, find_latest_checkpoint
from pycocotools.cocoeval import COCOeval

from astrodet.errors import AstrodetInputError
from astrodet.evaluation.coco_params import patched_cocoeval
from astrodet.models.checkpoints import load_weights_only

logger = logging.getLogger(__name__)

TESTED_VERSIONS = {"mmengine": "0.10.7", "mmcv": "2.1.0", "mmdet": "3.3.0"}
# What relies on each package's internals, named in the warning when another version is installed.
AT_RISK = {
    "mmengine": "CPU multi-process runs (init_dist, model_wrapper_cfg), the checkpoint loader (CheckpointLoader "
    "schemes, the message hub's HistoryBuffer in checkpoints) and the file named in a no-fit refusal (the Runner's "
    "_load_from and _resume)",
    "mmcv": "RoIAlign, which ignores memory strides (astrodet's backbones hand it contiguous maps)",
    "mmdet": "COCO AP with astrodet's area ranges (the COCOeval names in mmdet.evaluation.metrics.coco_metric)",
}


def check_versions(installed: Mapping[str, str] | None = None) -> list[str]:
    """Warn for each package whose version differs from the tested one; returns the warnings (run once, on import)."""
    found = installed if installed is not None else {name: metadata.version(name) for name in TESTED_VERSIONS}
    problems = [
        f"astrodet.mmdet was tested with {name} {tested}, this is {found[name]}: may break: {AT_RISK[name]}"
        for name, tested in TESTED_VERSIONS.items()
        if found.get(name) not in (None, tested)
    ]
    for problem in problems:
        warnings.warn(problem, UserWarning, stacklevel=2)
    return problems


# --- COCO evaluation ---------------------------------------------------------------------------------------------


def astrodet_cocoeval(max_detections: int, built: list[COCOeval]) -> AbstractContextManager[None]:
    """Within the block, the ``COCOeval`` that mmdet's CocoMetric constructs applies astrodet's params and is
    appended to ``built``."""
    return patched_cocoeval(mmdet_coco_metric, ("COCOeval", "COCOevalMP"), max_detections, built)


# --- several CPU processes ---------------------------------------------------------------------------------------


def configure_device(cfg: Config) -> None:
    """CUDA when a GPU is visible, else the CPU (mmengine picks the device itself); make CPU multi-process work."""
    if torch.cuda.is_available():
        return
    logger.info("No GPU visible: mmengine runs on the CPU")
    if cfg.launcher == "none":
        return
    if cfg.launcher != "pytorch":
        raise SystemExit(
            f"--launcher {cfg.launcher} needs GPUs (mmengine's {cfg.launcher} start divides by the GPU count or calls "
            "torch.cuda.set_device); for several CPU processes use torch.distributed.run with --launcher pytorch"
        )
    cfg.env_cfg.dist_cfg = {**(cfg.env_cfg.get("dist_cfg") or {}), "backend": "gloo"}
    if not dist.is_initialized():
        # mmengine's init_dist('pytorch') calls torch.cuda.set_device(LOCAL_RANK) first, which fails without a GPU;
        # the Runner skips its own start when a process group exists. RANK/WORLD_SIZE/MASTER_* come from the launcher.
        dist.init_process_group(backend="gloo")
    # DistributedDataParallel refuses device_ids for a CPU module; mmengine passes [LOCAL_RANK] unless told otherwise.
    wrapper = cfg.get("model_wrapper_cfg") or {}
    wrapper.setdefault("type", "MMDistributedDataParallel")
    wrapper.setdefault("device_ids", None)
    wrapper.setdefault("broadcast_buffers", False)
    wrapper.setdefault("find_unused_parameters", cfg.get("find_unused_parameters", False))
    cfg.model_wrapper_cfg = wrapper


def shutdown_process_group() -> None:
    """Destroy the process group: left to interpreter shutdown, gloo's threads abort the process ("terminate called
    without an active exception") after a successful run."""
    if dist.is_initialized():
        dist.destroy_process_group()


# --- checkpoints -------------------------------------------------------------------------------------------------


_STATISTICS = ("min", "max", "current", "mean")  # HistoryBuffer's own methods (custom ones are plain functions)


def _history_buffer_method(owner: Any, name: str) -> Callable[..., Any]:
    """Stands in for ``builtins.getattr`` while unpickling: mmengine's checkpoints store each HistoryBuffer's
    statistics methods as ``getattr(HistoryBuffer, 'mean')``; any other lookup is refused."""
    if owner is HistoryBuffer and name in _STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f"Unsupported lookup: only HistoryBuffer's statistics methods, not {owner!r}.{name}")


_multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
# Besides tensors and plain containers, mmengine's checkpoints hold the message hub's HistoryBuffers, which keep
# numpy arrays and scalars (found by listing torch.serialization.get_unsafe_globals_in_checkpoint on a saved run).
MMENGINE_CHECKPOINT_GLOBALS: list[Any] = [
    HistoryBuffer,
    np.ndarray,
    np.dtype,
    *(type(np.dtype(kind)) for kind in "?bhilqBHILQefdg"),  # numeric dtypes' classes (numpy.dtypes.Float64DType, ...)
    # numpy 2 pickles these from numpy._core, numpy 1 from numpy.core: both spellings read either way
    *((_multiarray._reconstruct, f"{module}.multiarray._reconstruct") for module in ("numpy._core", "numpy.core")),
    *((_multiarray.scalar, f"{module}.multiarray.scalar") for module in ("numpy._core", "numpy.core")),
    (_history_buffer_method, "builtins.getattr"),
]


def load_local_checkpoint(filename: str, map_location: Any = None) -> Any:
    """mmengine's local-file loader, reading weights and mmengine's training state only (the core's weights-only
    reader, with this module's allow-list): a file that would run code or build any other object is refused with a
    message naming it."""
    return load_weights_only(
        Path(filename).expanduser(), holds="weights and mmengine's training state", map_location=map_location
    )


def check_checkpoint_fits(model: torch.nn.Module, checkpoint: Any, filename: str) -> None:
    """Refuse a loaded checkpoint (mmengine's ``{"state_dict": ...}`` or a bare state dict) none of whose weights fits
    ``model`` by name and shape; ``filename`` names it in the message.

    mmengine loads non-strictly and only warns about missing keys and shapes, so a checkpoint of another model would
    leave this one at random initialisation and the run would train from scratch (or evaluate random weights) with
    exit 0. One that fits in part (a backbone, a finetune onto new classes) passes; mmengine logs what it skips.
    """
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else {}
    state = state if isinstance(state, dict) else {}
    found = {re.sub(r"^module\.", "", str(key)): value for key, value in state.items()}
    expected = getattr(model, "module", model).state_dict()
    named = [key for key in found if key in expected]
    if any(getattr(found[key], "shape", None) == expected[key].shape for key in named):
        return
    wrong_shapes = f" ({len(named)} have a right name but another shape)" if named else ""
    raise AstrodetInputError(
        f"{filename}: none of its {len(found)} weights fits this model{wrong_shapes} (expected e.g. "
        f"{sorted(expected)[:3]}, found e.g. {sorted(found)[:3]}); refusing to go on from random weights"
    )


def runner_checkpoint_file(runner: Any) -> str:
    """The file ``Runner.load_or_resume`` reads, for messages: ``load_from``, or when resuming without it the work
    dir's latest checkpoint (mmengine 0.10.7 keeps both in private attributes and hands hooks only the contents)."""
    load_from = getattr(runner, "_load_from", None)
    if load_from is None and getattr(runner, "_resume", False):
        load_from = find_latest_checkpoint(runner.work_dir)
    return str(load_from) if load_from is not None else "the checkpoint given to Runner.load_checkpoint"


def install_checkpoint_loader() -> None:
    """Allow-list mmengine's checkpoint contents for ``weights_only`` loads and read local files with
    :func:`load_local_checkpoint` (mmengine 0.10.7 calls ``torch.load`` with torch's default, which cannot read its
    own checkpoints since torch 2.6: open-mmlab/mmengine#1655)."""
    torch.serialization.add_safe_globals(MMENGINE_CHECKPOINT_GLOBALS)
    CheckpointLoader.register_scheme(prefixes="", loader=load_local_checkpoint, force=True)


check_versions()
install_checkpoint_loader()
