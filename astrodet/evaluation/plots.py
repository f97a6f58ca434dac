"""PNG plots of an evaluation: purity-completeness curve, both against score threshold, binned completeness, and a
grid of images with true and predicted boxes.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot: no global state, no display, Agg rendering), saved
into memory and written with :func:`astrodet.io.atomic_write_bytes`, so a plot file is whole or absent.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from astrodet.io import atomic_write_bytes

# Okabe-Ito colours: distinguishable with colour-blindness and visible on dark sky images
CLASS_COLOURS = ("#56B4E9", "#E69F00", "#009E73", "#F0E442", "#CC79A7", "#D55E00", "#0072B2", "#FFFFFF")
COMPLETENESS_COLOUR, PURITY_COLOUR, F1_COLOUR = "#0072B2", "#D55E00", "#777777"
DPI = 120
PRED_DASH = (0, (3, 2))  # dash pattern of predicted boxes


def save_png(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Render ``fig`` to PNG in memory, then write it atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def save_small_png(png: str | os.PathLike[str], path: str | os.PathLike[str], max_bytes: int) -> Path:
    """Re-encode the PNG file ``png`` with a 256-colour palette, narrowing it (1400, 1100, 900 px) until it fits in
    ``max_bytes``, and write it atomically to ``path``: figures committed to the docs stay small."""
    from PIL import Image

    with Image.open(png) as im:
        picture = im.convert("RGB")
    for width in (picture.width, 1400, 1100, 900):
        small = picture.resize((width, round(picture.height * width / picture.width)), Image.LANCZOS)
        buffer = io.BytesIO()
        small.quantize(256).save(buffer, format="PNG", optimize=True)
        if buffer.tell() <= max_bytes:
            break
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def _values(items: Sequence[float | None]) -> np.ndarray:
    """JSON lists with None (undefined) as float arrays with NaN, which matplotlib leaves as gaps."""
    return np.array([np.nan if v is None else float(v) for v in items], dtype=float)


def _operating_point(curves: Mapping[str, Any], score_threshold: float) -> tuple[float, float] | None:
    """(completeness, purity) at the grid threshold nearest the operating one, if both are defined there."""
    grid = np.asarray(curves["score_threshold"], dtype=float)
    if grid.size == 0:
        return None
    i = int(np.argmin(np.abs(grid - score_threshold)))
    c, p = curves["completeness"][i], curves["purity"][i]
    return None if c is None or p is None else (float(c), float(p))


def plot_pr_curve(
    curves: Mapping[str, Any], score_threshold: float, path: str | os.PathLike[str], title: str = ""
) -> Path:
    """Purity against completeness as the score threshold varies, thresholds labelled, operating point starred."""
    fig = Figure(figsize=(5.2, 4.8))
    ax = fig.add_subplot()
    comp, pur = _values(curves["completeness"]), _values(curves["purity"])
    ax.plot(comp, pur, "-o", color=COMPLETENESS_COLOUR, markersize=3.5, linewidth=1.5)
    for t, c, p in list(zip(curves["score_threshold"], comp, pur, strict=True))[::4]:
        if math.isfinite(c) and math.isfinite(p):
            ax.annotate(f"{t:.2f}", (c, p), textcoords="offset points", xytext=(4, 4), fontsize=7, color="#444444")
    point = _operating_point(curves, score_threshold)
    if point:
        ax.plot(*point, "*", color=PURITY_COLOUR, markersize=14, label=f"score >= {score_threshold:.2f}")
        ax.legend(loc="lower left", fontsize=8)
    ax.set(xlim=(0, 1.02), ylim=(0, 1.02), xlabel="completeness (recall)", ylabel="purity (precision)")
    ax.set_title(title or "Purity vs completeness (labels: score threshold)", fontsize=10)
    ax.grid(alpha=0.3)
    return save_png(fig, path)


def plot_threshold_curves(
    curves: Mapping[str, Any], score_threshold: float, path: str | os.PathLike[str], title: str = ""
) -> Path:
    """Completeness, purity and F1 against score threshold, with the operating threshold as a vertical line."""
    fig = Figure(figsize=(5.6, 4.2))
    ax = fig.add_subplot()
    grid = np.asarray(curves["score_threshold"], dtype=float)
    for key, colour, style in (("completeness", COMPLETENESS_COLOUR, "-"), ("purity", PURITY_COLOUR, "-")):
        ax.plot(grid, _values(curves[key]), style, color=colour, linewidth=2, label=key)
    ax.plot(grid, _values(curves["f1"]), ":", color=F1_COLOUR, linewidth=1.5, label="F1")
    ax.axvline(score_threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {score_threshold:.2f}")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="score threshold", ylabel="fraction")
    ax.set_title(title or "Completeness and purity vs score threshold", fontsize=10)
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    return save_png(fig, path)


def _bin_labels(bins: Sequence[Mapping[str, Any]]) -> list[str]:
    def edge(v: float | None) -> str:
        return "inf" if v is None else f"{v:.3g}"

    return [f"{edge(b['lo'])}-{edge(b['hi'])}" for b in bins]


def _bar_panel(ax: Any, table: Mapping[str, Any], kind: str, colour: str, title: str) -> None:
    """One binned ratio as bars, the count of objects written on each bar."""
    bins = table["bins"]
    x = np.arange(len(bins))
    ax.bar(x, np.nan_to_num(_values([b[kind] for b in bins])), color=colour, alpha=0.85)
    count_key = "n_true" if kind == "completeness" else "n_pred"
    for i, b in enumerate(bins):
        ax.text(i, 0.02, f"n={b[count_key]}", ha="center", va="bottom", fontsize=7, rotation=90, color="black")
    ax.set_xticks(x, _bin_labels(bins), rotation=35, ha="right", fontsize=7)
    ax.set(ylim=(0, 1.02), ylabel=kind, xlabel=table["field"])
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)


def plot_bins(bins: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Completeness by true size and brightness, purity by predicted size: one panel per table in ``bins``."""
    names = list(bins)
    fig = Figure(figsize=(3.6 * len(names), 3.6))
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names, strict=True):
        kind = "purity" if name.startswith("purity") else "completeness"
        colour = PURITY_COLOUR if kind == "purity" else COMPLETENESS_COLOUR
        _bar_panel(ax, bins[name], kind, colour, name.replace("_", " "))
    fig.tight_layout()
    return save_png(fig, path)


@dataclass
class ImagePanel:
    """One image of the grid: HxWx3 uint8 pixels, true boxes/classes, predicted boxes/scores/classes (XYXY px)."""

    image: Any
    true_boxes: Any
    true_classes: Any
    pred_boxes: Any
    pred_scores: Any
    pred_classes: Any
    title: str = ""


def _as_panel(item: ImagePanel | Sequence[Any]) -> ImagePanel:
    return item if isinstance(item, ImagePanel) else ImagePanel(*item)


def _colour(cls: Any, order: list[Any]) -> str:
    if cls not in order:
        order.append(cls)
    return CLASS_COLOURS[order.index(cls) % len(CLASS_COLOURS)]


def _draw_boxes(ax: Any, boxes: Any, classes: Any, order: list[Any], scores: Any = None) -> None:
    """Truths thick, solid, translucent; predictions thin, dashed, with their score: coincident boxes stay legible."""
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    classes = np.asarray(classes).reshape(-1)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        colour = _colour(classes[i].item(), order)
        style, width, alpha = ("-", 2.6, 0.55) if scores is None else (PRED_DASH, 1.3, 1.0)
        rect = Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=colour, linewidth=width, linestyle=style)
        rect.set_alpha(alpha)
        ax.add_patch(rect)
        if scores is not None:
            label_box = {"facecolor": "black", "alpha": 0.55, "pad": 0.6, "linewidth": 0}
            ax.text(x1, y1 - 1.5, f"{float(scores[i]):.2f}", color=colour, fontsize=6, va="bottom", bbox=label_box)


def _legend(fig: Figure, order: list[Any], names: Mapping[Any, str]) -> None:
    handles = [Rectangle((0, 0), 1, 1, fill=False, edgecolor="black", linewidth=2.6, alpha=0.55, label="truth")]
    handles.append(Rectangle((0, 0), 1, 1, fill=False, edgecolor="black", linestyle=PRED_DASH, label="prediction"))
    for cls in order:
        handles.append(Rectangle((0, 0), 1, 1, color=_colour(cls, order), label=names.get(cls, str(cls))))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False)


def plot_image_grid(
    panels: Sequence[ImagePanel | Sequence[Any]],
    path: str | os.PathLike[str],
    class_names: Mapping[Any, str] | None = None,
    min_score: float = 0.0,
    ncols: int = 4,
) -> Path:
    """Images with true boxes (solid) and predictions scored >= ``min_score`` (dashed, score shown), by class colour."""
    items = [_as_panel(p) for p in panels]
    ncols = max(1, min(ncols, len(items)))
    nrows = max(1, math.ceil(len(items) / ncols))
    fig = Figure(figsize=(3.0 * ncols, 3.2 * nrows + 0.5), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    order: list[Any] = sorted(class_names or {})
    for ax, panel in zip(axes, items, strict=False):
        ax.imshow(np.asarray(panel.image), interpolation="nearest")
        _draw_boxes(ax, panel.true_boxes, panel.true_classes, order)
        scores = np.asarray(panel.pred_scores, dtype=float).reshape(-1)
        keep = scores >= min_score
        boxes = np.asarray(panel.pred_boxes, dtype=float).reshape(-1, 4)[keep]
        _draw_boxes(ax, boxes, np.asarray(panel.pred_classes).reshape(-1)[keep], order, scores[keep])
        ax.set_title(panel.title, fontsize=8)
    for ax in axes:
        ax.set_axis_off()
    _legend(fig, order, class_names or {})
    fig.suptitle(f"True boxes and predictions with score >= {min_score:.2f}", fontsize=10)
    return save_png(fig, path)
