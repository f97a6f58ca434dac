"""Side by side: two runs of one config that differ only in the encoder's starting weights (random vs pretrained).

Why: Popp et al.'s headline is that a backbone pretrained on galaxy images beats a generic one at the same
schedule. ``tools/compare_backbones.py`` trains both runs; this module reads what each run left in its folder
(``report.json``, ``metrics.json``, ``config.yaml``), takes the same headline numbers from both reports and writes
the table (``comparison.md``) and its numbers (``comparison.json``, written last, as a report's JSON). Framework-free:
it reads files, it imports neither Detectron2 nor torch.

Iterations to target: with ``TEST.EVAL_PERIOD`` N, Detectron2 evaluates every N iterations and logs each result in
``metrics.json`` (completeness as ``astro/completeness``). A periodic evaluation after N iterations is logged at
``iteration`` N - 1, the final one at ``iteration`` MAX_ITER, so the number of iterations trained is
``min(iteration + 1, MAX_ITER)``. The first evaluation at which completeness and purity both reach the target
(0.8, Popp et al.'s headline) is reported, to the eval period's resolution.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from astrodet.data.toolkit import read_structured
from astrodet.errors import AstrodetInputError
from astrodet.evaluation.markdown import fmt, plain, table
from astrodet.evaluation.report import REPORT_JSON
from astrodet.io import atomic_write_json, atomic_write_text

COMPARISON_JSON, COMPARISON_MD = "comparison.json", "comparison.md"
DEFAULT_TARGET = 0.8
# Headline metric -> where a report keeps it: (section or None for the top level, key). Intervals, where the report
# has them, are in its "bootstrap" section under the metric's name.
HEADLINES: dict[str, dict[str, tuple[str | None, str]]] = {
    "detection": {
        "completeness": (None, "completeness"),
        "purity": (None, "purity"),
        "AP": ("coco", "AP"),
        "AP50": ("coco", "AP50"),
    },
    "classification": {
        "accuracy": (None, "accuracy"),
        "balanced_accuracy": (None, "balanced_accuracy"),
        "roc_auc": (None, "roc_auc"),
    },
}
# The metrics.json names of the two numbers the target applies to (detection only).
TARGET_SCALARS = ("astro/completeness", "astro/purity")


def read_mapping(path: Path, what: str) -> dict[str, Any]:
    """A JSON (``.json``) or YAML object from ``path``; a missing, unreadable or non-object file is one line naming
    it."""
    if not path.exists():
        raise AstrodetInputError(f"{path}: no {what} (has the run finished?)")
    value = read_structured(path, what)
    if not isinstance(value, dict):
        raise AstrodetInputError(f"{path}: a {what} is a JSON object, found {type(value).__name__}")
    return value


def report_task(report: Mapping[str, Any], source: Path) -> str:
    """``classification`` or ``detection``, from what the report holds."""
    if report.get("task") == "classification":
        return "classification"
    if "completeness" in report and "purity" in report:
        return "detection"
    raise AstrodetInputError(f"{source}: neither a detection nor a classification report (no task, no completeness)")


def headline(report: Mapping[str, Any], task: str) -> dict[str, dict[str, Any]]:
    """``{metric: {"value": v, "interval": [lo, hi] | None}}`` for the task's headline metrics, as the report has
    them (None where the report has no value)."""
    boot = report.get("bootstrap") or {}
    out = {}
    for name, (section, key) in HEADLINES[task].items():
        holder = (report.get(section) or {}) if section else report
        interval = boot.get(name)
        out[name] = {"value": holder.get(key), "interval": list(interval) if interval else None}
    return out


def run_finished(folder: Path) -> bool:
    """Whether the run in ``folder`` trained to the end and evaluated its final weights: ``report.json`` is there
    and is not older than ``model_final.pth``. With periodic evaluation a report exists from the first evaluation
    on, and Detectron2 saves ``model_final.pth`` just before the final one, so a report alone proves nothing."""
    report, final = folder / REPORT_JSON, folder / "model_final.pth"
    return report.is_file() and final.is_file() and report.stat().st_mtime >= final.stat().st_mtime


def max_iter(folder: Path) -> int:
    """``SOLVER.MAX_ITER`` of the run as it ran (``config.yaml``, after any ``$ASTRODET_MAX_ITER`` cap)."""
    path = folder / "config.yaml"
    value = (read_mapping(path, "config.yaml").get("SOLVER") or {}).get("MAX_ITER")
    if not isinstance(value, int) or value < 1:
        raise AstrodetInputError(f"{path}: SOLVER.MAX_ITER is {value!r}, expected a positive whole number")
    return value


def evaluation_history(metrics_file: Path, scalars: Sequence[str]) -> list[dict[str, Any]]:
    """The records of Detectron2's ``metrics.json`` (one JSON object per line) that hold every name in ``scalars``;
    a line that is not a JSON object is an error naming the file and the line."""
    if not metrics_file.is_file():
        raise AstrodetInputError(f"{metrics_file}: no metrics.json in the run folder")
    records = []
    for number, line in enumerate(metrics_file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise AstrodetInputError(f"{metrics_file}, line {number}: not JSON ({err.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("iteration"), int):
            raise AstrodetInputError(f"{metrics_file}, line {number}: not a record with an integer 'iteration'")
        if all(name in record for name in scalars):
            records.append(record)
    return records


def iterations_to_target(
    metrics_file: Path, final_iter: int, target: float = DEFAULT_TARGET, scalars: Sequence[str] = TARGET_SCALARS
) -> int | None:
    """Iterations trained at the first evaluation where every one of ``scalars`` is >= ``target``; None if none
    is (NaN, logged for an undefined ratio, never reaches it)."""
    reached = [
        min(record["iteration"] + 1, final_iter)
        for record in evaluation_history(metrics_file, scalars)
        if all(_at_least(record[name], target) for name in scalars)
    ]
    return min(reached) if reached else None


def _at_least(value: Any, target: float) -> bool:
    return isinstance(value, int | float) and not math.isnan(value) and value >= target


def summarise_run(folder: Path, eval_period: int, target: float) -> dict[str, Any]:
    """One run's column of the table: its headline metrics, iterations, and (detection, with an eval period)
    iterations to the target."""
    report_path = folder / REPORT_JSON
    report = read_mapping(report_path, "report.json")
    task = report_task(report, report_path)
    final_iter = max_iter(folder)
    summary: dict[str, Any] = {
        "folder": str(folder),
        "report": str(report_path),
        "task": task,
        "max_iter": final_iter,
        "metrics": headline(report, task),
    }
    if eval_period and task == "detection":
        summary["iterations_to_target"] = iterations_to_target(folder / "metrics.json", final_iter, target)
    return summary


def compare_runs(
    runs: Mapping[str, Path], *, eval_period: int = 0, target: float = DEFAULT_TARGET, settings: Mapping[str, Any]
) -> dict[str, Any]:
    """The comparison of two ``runs`` (name -> run folder, e.g. random and pretrained): each run's summary and, per
    metric, the difference of the second run from the first. Runs of different tasks are refused."""
    if len(runs) != 2:
        raise ValueError(f"compare two runs, got {len(runs)}: {list(runs)}")
    summaries = {name: summarise_run(Path(folder), eval_period, target) for name, folder in runs.items()}
    tasks = {s["task"] for s in summaries.values()}
    if len(tasks) != 1:
        raise AstrodetInputError(f"the runs' reports are of different tasks: {sorted(tasks)}")
    task = tasks.pop()
    first, second = summaries.values()
    difference = {
        name: None if a["value"] is None or b["value"] is None else b["value"] - a["value"]
        for name, a, b in ((n, first["metrics"][n], second["metrics"][n]) for n in HEADLINES[task])
    }
    return plain(
        {
            "task": task,
            "settings": dict(settings),
            "eval_period": eval_period,
            "target": target if eval_period and task == "detection" else None,
            "runs": summaries,
            "difference": difference,
        }
    )


def _cell(metric: Mapping[str, Any]) -> str:
    interval = metric["interval"]
    text = fmt(metric["value"])
    return f"{text} [{fmt(interval[0])}, {fmt(interval[1])}]" if interval else text


def render_comparison(result: Mapping[str, Any]) -> str:
    """comparison.md: what was compared, then one row per headline metric, one column per run."""
    names = list(result["runs"])
    runs = [result["runs"][n] for n in names]
    settings = result["settings"]
    header = ("metric", *names, f"{names[1]} − {names[0]}")
    rows: list[Sequence[Any]] = [
        (metric, *(_cell(r["metrics"][metric]) for r in runs), _signed(result["difference"][metric]))
        for metric in HEADLINES[result["task"]]
    ]
    if result["target"] is not None:
        reached = ["not reached" if r["iterations_to_target"] is None else r["iterations_to_target"] for r in runs]
        rows.append((f"iterations to completeness and purity >= {result['target']}", *reached, ""))
    lines = ["# astrodet backbone comparison", ""]
    lines += [f"- {key}: {_setting(value)}" for key, value in settings.items()]
    lines += [f"- {name}: {r['report']} ({r['max_iter']} iterations)" for name, r in zip(names, runs, strict=True)]
    lines += ["", *table(header, rows), ""]
    notes = ["Values are fractions of 1 from each run's report.json (its test split)."]
    if any(r["metrics"][m]["interval"] for r in runs for m in r["metrics"]):
        notes.append("[brackets]: the report's 95 % bootstrap interval.")
    if result["target"] is not None:
        notes.append(
            f"Iterations to target: the first evaluation (every {result['eval_period']} iterations and at the end) "
            "at which both reach it, from each run's metrics.json."
        )
    return "\n".join([*lines, " ".join(notes), ""])


def _setting(value: Any) -> str:
    if isinstance(value, list | tuple):  # command-line options: KEY VALUE ... as typed
        return " ".join(str(v) for v in value) or "none"
    return fmt(value)


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.3f}"


def write_comparison(folder: str | os.PathLike[str], result: Mapping[str, Any]) -> str:
    """Write comparison.md, then comparison.json (last: its presence means both are whole); return the markdown."""
    out = Path(folder)
    text = render_comparison(result)
    atomic_write_text(out / COMPARISON_MD, text)
    atomic_write_json(out / COMPARISON_JSON, result, indent=2)
    return text
