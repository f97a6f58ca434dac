"""Pictures of predictions: the image the model saw, with each kept detection drawn as a box coloured by class.

Why: a catalogue says where the model found objects; a picture lets a person judge at a glance whether those are the
objects they meant (missed clumps, boxes on stars, a frame rendered too dark). The axes use the catalogue's pixel
frame (COCO convention, origin at the top-left corner, y down), so a row's ``x_min .. y_max`` is the drawn box. The
figure is drawn on matplotlib's Agg canvas without pyplot (no global state, no display needed) and saved atomically.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from astrodet.inference.model import Detections
from astrodet.io import atomic_path

DEFAULT_PLOT_MAX = 50
MIN_SIDE_PX = 800  # small cutouts are enlarged so that the legend stays readable
MAX_SIDE_PX = 2400  # survey frames are shrunk: a picture is for looking at, the catalogue holds the numbers
DPI = 100
# Tableau's ten colours minus grey (7), which vanishes on a sky image; more classes cycle.
CLASS_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_BAND_FIELD = re.compile(r"[_.-]?\{band\}")


def class_colour(class_id: int) -> str:
    return CLASS_COLOURS[class_id % len(CLASS_COLOURS)]


def display_pixels(pixels: np.ndarray) -> np.ndarray:
    """What imshow gets: 8-bit RGB or greyscale as is; any other input (float data, other band counts) as the mean
    over channels stretched linearly between its 0.5 and 99.5 percentiles, since such data has no colour of its own."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.dtype == np.uint8 and pixels.shape[2] == 3:
        return pixels
    if pixels.dtype == np.uint8 and pixels.shape[2] == 1:
        return pixels[:, :, 0]
    grey = np.asarray(pixels, dtype=np.float64).mean(axis=2)
    finite = grey[np.isfinite(grey)]
    if finite.size == 0:
        return np.zeros(grey.shape)
    low, high = np.percentile(finite, [0.5, 99.5])
    scaled = (grey - low) / (high - low) if high > low else grey - low
    return np.clip(np.nan_to_num(scaled, nan=0.0), 0.0, 1.0)


def figure_size_px(width: int, height: int) -> tuple[int, int]:
    """The picture's size: the frame's aspect ratio, its longer side between MIN_SIDE_PX and MAX_SIDE_PX."""
    longest = max(width, height)
    scale = min(max(longest, MIN_SIDE_PX), MAX_SIDE_PX) / longest
    return max(round(width * scale), 1), max(round(height * scale), 1)


def plot_detections(
    path: str | os.PathLike[str],
    pixels: np.ndarray,
    found: Detections,
    classes: Sequence[str],
    score_threshold: float,
    origin: tuple[int, int] = (0, 0),
    pixel_scale: float | None = None,
) -> Path:
    """Write a PNG of ``pixels`` (H, W, C), the model's input, with ``found``'s boxes. ``origin`` is the input's
    top-left corner in the frame the boxes are given in (a ``--crop`` window of a larger image); ``pixel_scale``
    (arcsec/px), when known, is noted in the legend. Returns the path written."""
    height, width = pixels.shape[:2]
    left, top = origin
    width_px, height_px = figure_size_px(width, height)
    line_width = max(1.0, width_px / width * 72 / DPI)  # points: one image pixel wide, at least 1 point
    figure = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.0, 0.0, 1.0, 1.0))
    axes.set_axis_off()
    shown = display_pixels(pixels)
    extent = (left, left + width, top + height, top)
    if shown.ndim == 2:  # fixed grey levels: imshow would otherwise stretch each picture to its own range
        axes.imshow(shown, cmap="gray", vmin=0, vmax=255 if shown.dtype == np.uint8 else 1.0, extent=extent)
    else:
        axes.imshow(shown, extent=extent)
    for (x0, y0, x1, y1), label in zip(found.boxes, found.labels, strict=True):
        colour = class_colour(int(label))
        axes.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=colour, linewidth=line_width))
    axes.set_xlim(left, left + width)
    axes.set_ylim(top + height, top)
    counts = np.bincount(found.labels, minlength=len(classes))
    handles = [
        Patch(facecolor="none", edgecolor=class_colour(k), linewidth=2, label=f"{name}: {counts[k]}")
        for k, name in enumerate(classes)
    ]
    title = f"score \u2265 {score_threshold:g}"
    if pixel_scale is not None:
        title += f", {pixel_scale:.3g}\u2033/px"
    font = max(8.0, 10.0 * width_px / 800)
    axes.legend(handles=handles, title=title, loc="best", fontsize=font, title_fontsize=font, framealpha=0.75)
    target = Path(path)
    with atomic_path(target) as tmp_name:
        figure.savefig(tmp_name, format="png", dpi=DPI)
    return target


def plot_names(files: Sequence[str]) -> list[str]:
    """A PNG name per input: ``<stem>.png``, restricted to safe characters so that it can only name a file inside
    the plot folder (per-band groups lose their ``{band}``); stems shared by several inputs (``a/x.png``,
    ``b/x.png``) get ``_<input index>`` added."""
    stems = []
    for file in files:
        name = _BAND_FIELD.sub("", Path(file).name)  # f1_{band}.fits, a per-band group: f1
        stem = name[: -len(".fits.gz")] if name.lower().endswith(".fits.gz") else Path(name).stem
        stems.append(_UNSAFE.sub("_", stem).lstrip(".") or "input")
    uses = Counter(stems)
    names: list[str] = []
    taken: set[str] = set()
    for index, stem in enumerate(stems):
        name = f"{stem}_{index}" if uses[stem] > 1 else stem
        while f"{name}.png" in taken:  # a stem that happens to read like another's "<stem>_<index>"
            name = f"{name}_{index}"
        taken.add(f"{name}.png")
        names.append(f"{name}.png")
    return names
