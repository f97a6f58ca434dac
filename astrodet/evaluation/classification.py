"""Classification metrics and reports, framework-free (numpy + matplotlib's Figure).

Why not scikit-learn: it is not a dependency, and these few metrics are short enough to state exactly:

- accuracy; balanced accuracy = mean recall over the classes present in the truth (so a 95 %/5 % test set cannot
  score 0.95 by always answering the majority class);
- ROC AUC = the Mann-Whitney probability that a random positive outranks a random negative (ties count one half),
  binary on the positive class (class index 1) and one-vs-rest per class, macro-averaged over the classes that have
  both positives and negatives; undefined (None) when a class is missing;
- per-class precision, recall, F1 and support; the confusion matrix (rows: truth, columns: prediction);
- log loss (mean -ln p of the true class, probabilities clipped at 1e-7);
- percentile bootstrap confidence intervals (seeded ``numpy.random.default_rng``; resamples on which a metric is
  undefined are skipped and counted);
- for vote regression, the Kaggle Galaxy Challenge RMSE over all answer columns.

The predicted class is the argmax of the probabilities (for a binary model: p >= 0.5 wins on ties towards class 0).
The report mirrors the detection one (:mod:`astrodet.evaluation.report`): ``report.json`` (written last),
``report.md`` and PNG plots, all atomic.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from scipy.stats import rankdata

from astrodet import __version__
from astrodet.evaluation.bootstrap import intervals, resamples
from astrodet.evaluation.markdown import fmt, plain, render_markdown, table
from astrodet.evaluation.plots import CLASS_COLOURS, save_png
from astrodet.evaluation.report import REPORT_JSON, REPORT_MD
from astrodet.io import atomic_write_json, atomic_write_text

PLOT_FILES = {"confusion_matrix": "confusion_matrix.png", "roc_curve": "roc_curve.png"}
PROB_EPS = 1e-7
DEFAULT_BOOTSTRAP = 1000
MAX_CURVE_POINTS = 500


def _as_arrays(labels: Sequence[int] | np.ndarray, probs: Sequence[Sequence[float]] | np.ndarray) -> tuple:
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != y.shape[0]:
        raise ValueError(f"probabilities must be (N, K) with N = {y.shape[0]} labels, got shape {p.shape}")
    if y.size and (y.min() < 0 or y.max() >= p.shape[1]):
        raise ValueError(f"labels must be class indices 0..{p.shape[1] - 1}, got {y.min()}..{y.max()}")
    return y, p


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) counts: row = true class, column = predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float | None:
    return float(np.mean(y_true == y_pred)) if len(y_true) else None


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float | None:
    """Mean per-class recall over the classes present in ``y_true``."""
    classes = np.unique(y_true)
    if classes.size == 0:
        return None
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in classes]))


def roc_auc(is_positive: np.ndarray, scores: np.ndarray) -> float | None:
    """P(score of a random positive > that of a random negative) + half the ties; None without both kinds."""
    pos = np.asarray(is_positive, dtype=bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(np.asarray(scores, dtype=np.float64), method="average")  # ties share their mean rank
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(is_positive: np.ndarray, scores: np.ndarray) -> dict[str, list[float]] | None:
    """False/true positive rates at every distinct score threshold, from (0, 0) to (1, 1)."""
    pos = np.asarray(is_positive, dtype=bool)
    if pos.all() or not pos.any():
        return None
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, kind="mergesort")
    s_sorted, pos_sorted = s[order], pos[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s_sorted)), s.size - 1]
    tp = np.cumsum(pos_sorted)[last_of_tie]
    fp = (last_of_tie + 1) - tp
    tpr = np.r_[0.0, tp / pos.sum()]
    fpr = np.r_[0.0, fp / (~pos).sum()]
    thresholds = np.r_[np.inf, s_sorted[last_of_tie]]
    if tpr.size > MAX_CURVE_POINTS:  # keep the JSON small; the curve's corners stay
        keep = np.unique(np.r_[np.linspace(0, tpr.size - 1, MAX_CURVE_POINTS).astype(int), tpr.size - 1])
        tpr, fpr, thresholds = tpr[keep], fpr[keep], thresholds[keep]
    return {
        "fpr": fpr.tolist(),
        "tpr": tpr.tolist(),
        "threshold": [None if not np.isfinite(t) else t for t in thresholds],
    }


def per_class(cm: np.ndarray, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for k, name in enumerate(names):
        tp = int(cm[k, k])
        n_true, n_pred = int(cm[k].sum()), int(cm[:, k].sum())
        precision = tp / n_pred if n_pred else None
        recall = tp / n_true if n_true else None
        f1 = None
        if precision is not None and recall is not None:
            f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        out[name] = {
            "class_index": k,
            "n_true": n_true,
            "n_pred": n_pred,
            "precision": precision,
            "recall": recall,
            "f1": f1,
        }
    return out


def auc_scores(y: np.ndarray, p: np.ndarray) -> tuple[float | None, dict[int, float | None]]:
    """Headline AUC (binary: class 1; multi-class: macro one-vs-rest over defined classes) and per-class OvR."""
    per = {k: roc_auc(y == k, p[:, k]) for k in range(p.shape[1])}
    if p.shape[1] == 2:
        return per[1], per
    defined = [v for v in per.values() if v is not None]
    return (float(np.mean(defined)) if defined else None), per


def log_loss(y: np.ndarray, p: np.ndarray) -> float | None:
    if not len(y):
        return None
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], PROB_EPS, 1.0))))


def vote_rmse(pred: np.ndarray, true: np.ndarray) -> float:
    """The Galaxy Challenge metric: root mean square error over every image and answer column."""
    pred, true = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape:
        raise ValueError(f"vote arrays differ in shape: {pred.shape} vs {true.shape}")
    return float(np.sqrt(np.mean((pred - true) ** 2)))


def class_scores_from_votes(
    votes: np.ndarray,
    vote_columns: Sequence[str] | None,
    column_to_class: Mapping[str, str] | None,
    class_names: Sequence[str],
) -> np.ndarray:
    """(N, K) class scores from predicted vote fractions: each class's mapped column(s), rows normalised to 1.

    The argmax of these is the class rule of the conversion (e.g. Kim's: argmax over the mapped columns), so a vote
    regression model can be scored as a classifier on the same labels.
    """
    if not vote_columns or not column_to_class:
        raise ValueError("scoring vote predictions as classes needs the dataset's vote_columns and class mapping")
    votes = np.asarray(votes, dtype=np.float64)
    scores = np.zeros((votes.shape[0], len(class_names)))
    for column, name in column_to_class.items():
        scores[:, list(class_names).index(name)] += votes[:, list(vote_columns).index(column)]
    totals = scores.sum(axis=1, keepdims=True)
    return np.divide(scores, totals, out=np.full_like(scores, 1.0 / len(class_names)), where=totals > 0)


_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float | None]] = {
    "accuracy": lambda y, p: accuracy(y, p.argmax(1)),
    "balanced_accuracy": lambda y, p: balanced_accuracy(y, p.argmax(1)),
    "roc_auc": lambda y, p: auc_scores(y, p)[0],
}


def bootstrap_intervals(
    y: np.ndarray, p: np.ndarray, n: int = DEFAULT_BOOTSTRAP, seed: int = 0, confidence: float = 0.95
) -> dict[str, Any]:
    """Percentile intervals of accuracy, balanced accuracy and ROC AUC over ``n`` resamples of the images."""
    values: dict[str, list[float]] = {k: [] for k in _METRICS}
    for idx in resamples(len(y), n, seed):
        for key, fn in _METRICS.items():
            v = fn(y[idx], p[idx])
            if v is not None:
                values[key].append(v)
    return {"n_resamples": n, "seed": seed, "confidence": confidence, **intervals(values, confidence)}


def evaluate_classification(
    labels: Sequence[int] | np.ndarray,
    probs: Sequence[Sequence[float]] | np.ndarray,
    class_names: Sequence[str],
    *,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    votes_true: np.ndarray | None = None,
    votes_pred: np.ndarray | None = None,
) -> dict[str, Any]:
    """Every metric of the module doc as a JSON-able dict (None where undefined)."""
    y, p = _as_arrays(labels, probs)
    if p.shape[1] != len(class_names):
        raise ValueError(f"{p.shape[1]} probability columns for {len(class_names)} class names")
    pred = p.argmax(axis=1) if len(y) else np.zeros(0, dtype=np.int64)
    cm = confusion_matrix(y, pred, len(class_names))
    headline_auc, per_auc = auc_scores(y, p)
    per = per_class(cm, class_names)
    curves = {}
    for k, name in enumerate(class_names):
        per[name]["roc_auc_ovr"] = per_auc[k]
        if len(class_names) > 2 or k == 1:
            curve = roc_curve(y == k, p[:, k])
            if curve is not None:
                curves[name] = curve
    result: dict[str, Any] = {
        "task": "classification",
        "n_images": len(y),
        "classes": list(class_names),
        "accuracy": accuracy(y, pred),
        "balanced_accuracy": balanced_accuracy(y, pred),
        "roc_auc": headline_auc,
        "roc_auc_kind": "binary (positive = " + class_names[1] + ")" if len(class_names) == 2 else "macro one-vs-rest",
        "log_loss": log_loss(y, p),
        "per_class": per,
        "confusion_matrix": {
            "rows": "true",
            "columns": "predicted",
            "labels": list(class_names),
            "matrix": cm.tolist(),
        },
        "bootstrap": bootstrap_intervals(y, p, n_bootstrap, seed),
        "roc_curves": curves,
    }
    if votes_true is not None and votes_pred is not None and len(votes_true):
        result["votes"] = {
            "rmse": vote_rmse(votes_pred, votes_true),
            "n_images": len(votes_true),
            "n_columns": int(np.asarray(votes_true).shape[1]),
        }
    return plain(result)


def score_classification(
    rows: Iterable[Mapping[str, Any]],
    class_names: Sequence[str],
    *,
    vote_columns: Sequence[str] | None = None,
    vote_class_columns: Mapping[str, str] | None = None,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, Any]:
    """Score per-image predictions as both adapters collect them: the result dict of evaluate_classification.

    A row is ``{"image_id", "label", "scores"}`` (class probabilities) or, for a vote model, ``{"image_id",
    "label", "votes_pred", "votes_true"}`` (vote fractions; class scores then follow from the dataset's vote-column
    -> class mapping). Rows are taken once per image (the last one wins: a distributed sampler may repeat images)
    in image-id order, so every process count and framework scores the same set the same way.
    """
    by_image = {r["image_id"]: r for r in rows}
    ordered = [by_image[k] for k in sorted(by_image)]
    classes = list(class_names)
    labels = np.array([int(r["label"]) for r in ordered], dtype=np.int64)
    votes_true = votes_pred = None
    if ordered and ordered[0].get("votes_pred") is not None:
        votes_pred = np.array([r["votes_pred"] for r in ordered], dtype=np.float64)
        if ordered[0].get("votes_true") is not None:
            votes_true = np.array([r["votes_true"] for r in ordered], dtype=np.float64)
        probs = class_scores_from_votes(votes_pred, vote_columns, vote_class_columns, classes)
    else:
        probs = np.array([r["scores"] for r in ordered], dtype=np.float64).reshape(len(ordered), -1)
    if not classes:
        classes = [str(k) for k in range(probs.shape[1])]
    return evaluate_classification(
        labels, probs, classes, n_bootstrap=n_bootstrap, seed=seed, votes_true=votes_true, votes_pred=votes_pred
    )


def headline_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """The numbers a trainer logs after evaluation (NaN where undefined, so loggers accept them)."""
    keys = ("accuracy", "balanced_accuracy", "roc_auc", "log_loss")
    metrics = {k: float("nan") if result.get(k) is None else float(result[k]) for k in keys}
    if result.get("votes"):
        metrics["vote_rmse"] = float(result["votes"]["rmse"])
    return metrics


# --- plots and report files --------------------------------------------------------------------------------------


def plot_confusion_matrix(result: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Counts with row-normalised shading (recall per true class), so rare classes stay readable."""
    names = result["confusion_matrix"]["labels"]
    cm = np.asarray(result["confusion_matrix"]["matrix"], dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    shade = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    size = 1.6 + 0.75 * len(names)
    fig = Figure(figsize=(size + 1.2, size))
    ax = fig.add_subplot()
    im = ax.imshow(shade, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            colour = "white" if shade[i, j] > 0.6 else "black"
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", color=colour, fontsize=9)
    ax.set_xticks(range(len(names)), names, rotation=35, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Confusion matrix (n = {result['n_images']})")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    return save_png(fig, path)


def plot_roc_curves(result: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    fig = Figure(figsize=(5.0, 4.6))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="#999999", linestyle=":", linewidth=1)
    for k, (name, curve) in enumerate(result["roc_curves"].items()):
        auc = result["per_class"][name]["roc_auc_ovr"]
        label = f"{name} (AUC {auc:.3f})" if auc is not None else name
        ax.plot(
            curve["fpr"], curve["tpr"], drawstyle="steps-post", color=CLASS_COLOURS[k % len(CLASS_COLOURS)], label=label
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC" + (" (one-vs-rest)" if len(result["classes"]) > 2 else ""))
    if result["roc_curves"]:
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "undefined: the set lacks positives or negatives", ha="center", va="center", fontsize=8)
    return save_png(fig, path)


def _interval(report: Mapping[str, Any], key: str) -> str:
    ci = (report.get("bootstrap") or {}).get(key)
    return f"{fmt(report.get(key))} [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else fmt(report.get(key))


def classification_sections(report: Mapping[str, Any]) -> list[str]:
    """report.md's classification part: headline with intervals, per class, confusion matrix."""
    boot = report.get("bootstrap") or {}
    conf = round(100 * boot.get("confidence", 0.95))
    lines: list[str] = []
    rows = [
        ("Images", report["n_images"]),
        (f"Accuracy [{conf} % CI]", _interval(report, "accuracy")),
        (f"Balanced accuracy [{conf} % CI]", _interval(report, "balanced_accuracy")),
        (f"ROC AUC, {report['roc_auc_kind']} [{conf} % CI]", _interval(report, "roc_auc")),
        ("Log loss", fmt(report.get("log_loss"))),
    ]
    if report.get("votes"):
        rows.append(("Vote fraction RMSE (Kaggle metric)", fmt(report["votes"]["rmse"], 4)))
    lines += ["## Headline", "", "Accuracies and ROC AUC are fractions of 1 (0.5 = 50 %); log loss in nats.", ""]
    lines += [*table(("metric", "value"), rows), ""]
    lines.append(
        f"Bootstrap: {boot.get('n_resamples')} resamples of the images, seed {boot.get('seed')}; ROC AUC is defined "
        f"in {boot.get('roc_auc_defined_in')} of them (resamples lacking a class are skipped)."
    )
    lines.append("")
    header = ("class", "n_true", "n_pred", "precision", "recall", "F1", "ROC AUC (OvR)")
    per_rows = [
        (name, r["n_true"], r["n_pred"], r["precision"], r["recall"], r["f1"], r["roc_auc_ovr"])
        for name, r in report["per_class"].items()
    ]
    lines += ["## Per class", "", *table(header, per_rows), ""]
    cm = report["confusion_matrix"]
    lines += ["## Confusion matrix (rows: true, columns: predicted)", ""]
    lines += table(
        ("true \\ predicted", *cm["labels"]), [(n, *row) for n, row in zip(cm["labels"], cm["matrix"], strict=True)]
    )
    lines.append("")
    return lines


def write_classification_report(
    output_dir: str | os.PathLike[str], result: Mapping[str, Any], meta: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Write confusion_matrix.png, roc_curve.png, report.md and (last) report.json; returns the report dict."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    plot_confusion_matrix(result, out / PLOT_FILES["confusion_matrix"])
    plot_roc_curves(result, out / PLOT_FILES["roc_curve"])
    report = plain({"astrodet_version": __version__, "meta": dict(meta or {}), **result, "plots": dict(PLOT_FILES)})
    atomic_write_text(out / REPORT_MD, render_markdown(report))
    atomic_write_json(out / REPORT_JSON, report, indent=2)
    return report
