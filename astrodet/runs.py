"""What both training tools do around a run: the iteration cap for quick checks, never writing over another run,
eval-only outputs beside the run they evaluate, threads per CPU process, and one scale for the numbers they print.

Why one module: ``tools/train_net.py`` (Detectron2) and ``tools/train_mmdet.py`` (MMDetection) drive different
frameworks, but a user expects the same promises from both, and the documentation's tests rely on the cap.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from astrodet.errors import AstrodetInputError

MAX_ITER_ENV = "ASTRODET_MAX_ITER"
# A folder holding one of these holds a run: its report, or a record of its checkpoints (both frameworks write it).
RUN_MARKERS = ("report.json", "last_checkpoint")
# Detectron2's COCOEvaluator returns these tasks in percent; everything else astrodet reports is a fraction of 1.
PERCENT_TASKS = ("bbox",)
# Metrics printed in the closing line, by the names each framework logs them under -> the name shown.
SUMMARY_NAMES = {
    "AP": "AP",
    "AP50": "AP50",
    "AP75": "AP75",
    "APs": "APs",
    "APm": "APm",
    "APl": "APl",
    "bbox_mAP": "AP",
    "bbox_mAP_50": "AP50",
    "bbox_mAP_75": "AP75",
    "bbox_mAP_s": "APs",
    "bbox_mAP_m": "APm",
    "bbox_mAP_l": "APl",
    "completeness": "completeness",
    "purity": "purity",
    "f1": "F1",
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "roc_auc": "ROC AUC",
}


def iteration_cap() -> int | None:
    """The cap from ``$ASTRODET_MAX_ITER`` (a positive whole number), or None when it is unset or empty."""
    text = os.environ.get(MAX_ITER_ENV, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise AstrodetInputError(f"{MAX_ITER_ENV}={text!r}: expected a positive whole number of iterations")
    return int(text)


def cap_iterations(requested: int) -> int:
    """``requested``, or ``$ASTRODET_MAX_ITER`` when that is smaller; a capped run says so, so that its report is
    never mistaken for the full schedule's."""
    cap = iteration_cap()
    if cap is None or requested <= cap:
        return requested
    if is_first_process():
        message = f"{MAX_ITER_ENV}={cap}: training capped at {cap} iterations (the config asks for {requested})"
        print(message, flush=True)
    return cap


def is_first_process() -> bool:
    """Whether this is the only process of a run or its rank 0, so that a message is printed once, not per process."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return os.environ.get("RANK", "0") == "0"


def previous_run(folder: str | os.PathLike[str]) -> Path | None:
    """The file showing that ``folder`` already holds a run (its report or checkpoint record), or None."""
    for name in RUN_MARKERS:
        marker = Path(folder) / name
        if marker.exists():
            return marker
    return None


def refuse_to_overwrite(folder: str | os.PathLike[str], *, resumable: bool) -> None:
    """Raise when ``folder`` holds another run: replacing its report, checkpoints and config without a word loses
    them. The message names the options that allow it: ``--overwrite``, and ``--resume`` where training could
    continue that run (``resumable``)."""
    marker = previous_run(folder)
    if marker is not None:
        allow = "--resume to continue it, --overwrite to replace it" if resumable else "--overwrite to write over it"
        message = f"{folder} already holds a run ({marker.name}): pass {allow}, or choose another folder"
        raise AstrodetInputError(message)


def eval_folder(run_folder: str | os.PathLike[str], checkpoint: str | os.PathLike[str]) -> str:
    """Where an eval-only run writes: ``<run folder>/eval_<checkpoint stem>``, so the training run's config, log and
    report stay as they were and each evaluated checkpoint keeps its own report."""
    return os.path.join(os.fspath(run_folder), f"eval_{Path(os.fspath(checkpoint)).stem or 'no_weights'}")


def last_checkpoint(folder: str | os.PathLike[str]) -> str | None:
    """The checkpoint a run folder's ``last_checkpoint`` record names (relative to the folder, as Detectron2 writes
    it, or absolute, as mmengine does), or None when there is no record."""
    record = Path(folder) / "last_checkpoint"
    if not record.is_file():
        return None
    return os.path.join(os.fspath(folder), record.read_text().strip())


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def use_cpu_threads_per_process(processes: int) -> int:
    """Give each of ``processes`` CPU processes ``cores // processes`` threads (at least 1) and return that number.

    Every process otherwise starts one thread per core, and N processes on N cores then fight for them (measured:
    2 processes on 2 cores ran about 4x slower than one). Sets ``OMP_NUM_THREADS`` for processes started after
    this and torch's thread count in this one. A value of 2 or more that the user set is kept; 1 is what
    ``torch.distributed.run`` sets when nothing was, so it is replaced too.
    """
    import torch

    chosen = os.environ.get("OMP_NUM_THREADS", "")
    threads = int(chosen) if chosen.isdigit() and int(chosen) > 1 else max(1, available_cores() // processes)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    if is_first_process():
        print(
            f"{processes} CPU processes on {available_cores()} cores: {threads} thread(s) each "
            "(OMP_NUM_THREADS; set it to 2 or more to choose)",
            flush=True,
        )
    return threads


def _metrics(results: Mapping[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(task, metric, value) from Detectron2's ``{task: {metric: value}}`` or mmengine's ``{"task/metric": value}``."""
    for key, value in results.items():
        if isinstance(value, Mapping):
            yield from ((str(key), str(name), v) for name, v in value.items())
        else:
            task, _, name = str(key).rpartition("/")
            yield task, name, value


def results_line(results: Mapping[str, Any] | None) -> str | None:
    """One line of the headline test metrics, all as fractions of 1 as in report.json (Detectron2's COCO numbers
    arrive in percent and are divided by 100); undefined values show as a dash. None when there is nothing to
    show (a process other than the main one, or no evaluation)."""
    if not results:
        return None
    if all(isinstance(v, Mapping) and any(isinstance(w, Mapping) for w in v.values()) for v in results.values()):
        lines = [results_line(per_set) for per_set in results.values()]  # Detectron2 with several test sets
        return "\n".join(f"{name}: {line}" for name, line in zip(results, lines, strict=True) if line)
    cells = {}
    for task, name, value in _metrics(results):
        if name not in SUMMARY_NAMES or not isinstance(value, int | float):
            continue
        number = float(value) / 100 if task in PERCENT_TASKS else float(value)
        cells[SUMMARY_NAMES[name]] = "–" if math.isnan(number) or number < 0 else f"{number:.3f}"
    if not cells:
        return None
    return "test results, fractions of 1 as in report.json: " + ", ".join(f"{k} {v}" for k, v in cells.items())
