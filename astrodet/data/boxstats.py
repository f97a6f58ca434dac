"""Box statistics of a Clump Scout-format boxes table: the yardstick that keeps the simulator honest.

Why: the simulated training set must label like Galaxy Zoo: Clump Scout volunteers did (Popp et al. 2024 tables),
so the same numbers are measured on the real tables and on simulated output and compared side by side: boxes per
galaxy (over galaxies with at least one box, as the real tables only list those), box side, label fractions,
boxes reaching outside the 200x200 training crop, and box-centre distance from the crop centre.

Input: CSV with at least ``local_ids, label, x1, x2, y1, y2`` (the real tables also have ``image_id, filename,
label_text``); coordinates in pixels of the central 200x200 crop of the 400x400 cutout.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from astrodet.errors import AstrodetInputError

REQUIRED_COLUMNS = ("local_ids", "label", "x1", "x2", "y1", "y2")
CROP_SIDE = 200.0
MAX_COUNT_BIN = 9  # boxes-per-galaxy distribution: 1..8 and "9+"


@dataclass(frozen=True)
class BoxTable:
    """Columns of a boxes table as arrays (one entry per box)."""

    galaxy: np.ndarray  # local_ids as strings
    label: np.ndarray  # int
    x1: np.ndarray
    x2: np.ndarray
    y1: np.ndarray
    y2: np.ndarray
    source: str = "<boxes>"

    def __len__(self) -> int:
        return int(self.label.size)


@dataclass(frozen=True)
class BoxStats:
    """Summary numbers of one boxes table (see :func:`box_stats`)."""

    n_boxes: int
    n_galaxies_with_boxes: int
    boxes_per_galaxy_mean: float
    boxes_per_galaxy_median: float
    boxes_per_galaxy_q25: float
    boxes_per_galaxy_q75: float
    boxes_per_galaxy_distribution: dict[str, float]  # "1".."8", "9+" -> fraction of galaxies with boxes
    side_median: float
    side_q25: float
    side_q75: float
    side_p05: float
    side_p95: float
    max_aspect_difference: float  # max |width - height| (px): 0 for square boxes
    label_fractions: dict[int, float]
    outside_crop_fraction: float
    centre_distance_median: float
    centre_distance_q25: float
    centre_distance_q75: float
    n_galaxies_total: int | None = None
    no_box_fraction: float | None = None
    extra: dict[str, float] = field(default_factory=dict)


def read_boxes_csv(path: str | os.PathLike[str]) -> BoxTable:
    """Read a Clump Scout-format boxes CSV; errors name the file, row and column."""
    path = Path(path)
    if not path.is_file():
        expected = ", ".join(REQUIRED_COLUMNS)
        raise AstrodetInputError(f"{path}: expected a boxes CSV file (columns {expected}), not found")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise AstrodetInputError(f"{path}: missing column(s) {', '.join(missing)}; expected {REQUIRED_COLUMNS}")
        galaxy, label, coords = [], [], []
        for line, row in enumerate(reader, start=2):
            try:
                label.append(int(row["label"]))
                coords.append([float(row[c]) for c in ("x1", "x2", "y1", "y2")])
            except (TypeError, ValueError) as err:
                raise AstrodetInputError(
                    f"{path}, row {line}: expected an integer label and numeric x1..y2 ({err})"
                ) from None
            if not all(math.isfinite(v) for v in coords[-1]):
                raise AstrodetInputError(f"{path}, row {line}: x1..y2 must be finite numbers")
            galaxy.append(row["local_ids"])
    array = np.asarray(coords, dtype=float).reshape(-1, 4)
    return BoxTable(
        galaxy=np.asarray(galaxy, dtype=str),
        label=np.asarray(label, dtype=int),
        x1=array[:, 0],
        x2=array[:, 1],
        y1=array[:, 2],
        y2=array[:, 3],
        source=str(path),
    )


def _quartiles(values: np.ndarray) -> tuple[float, float, float]:
    q25, q50, q75 = np.percentile(values, [25, 50, 75])
    return float(q25), float(q50), float(q75)


def box_stats(table: BoxTable, n_galaxies_total: int | None = None, crop_side: float = CROP_SIDE) -> BoxStats:
    """Measure ``table``. ``n_galaxies_total`` (galaxies including those without boxes, e.g. the length of a
    simulated galaxies.csv) adds the fraction of galaxies with no box, which a boxes table alone cannot show."""
    if len(table) == 0:
        raise AstrodetInputError(f"{table.source}: no boxes to measure")
    width = table.x2 - table.x1
    height = table.y2 - table.y1
    if np.any(width <= 0) or np.any(height <= 0):
        bad = int(np.flatnonzero((width <= 0) | (height <= 0))[0])
        raise AstrodetInputError(f"{table.source}: box {bad} has x2 <= x1 or y2 <= y1")
    side = np.sqrt(width * height)
    _, counts = np.unique(table.galaxy, return_counts=True)
    c25, c50, c75 = _quartiles(counts)
    s25, s50, s75 = _quartiles(side)
    distribution = {}
    for k in range(1, MAX_COUNT_BIN):
        distribution[str(k)] = float(np.mean(counts == k))
    distribution[f"{MAX_COUNT_BIN}+"] = float(np.mean(counts >= MAX_COUNT_BIN))
    outside = (table.x1 < 0) | (table.y1 < 0) | (table.x2 > crop_side) | (table.y2 > crop_side)
    centre = crop_side / 2.0
    distance = np.hypot((table.x1 + table.x2) / 2 - centre, (table.y1 + table.y2) / 2 - centre)
    d25, d50, d75 = _quartiles(distance)
    labels, label_counts = np.unique(table.label, return_counts=True)
    no_box = None
    if n_galaxies_total is not None:
        if n_galaxies_total < counts.size:
            raise AstrodetInputError(
                f"{table.source}: n_galaxies_total={n_galaxies_total} is below the {counts.size} galaxies with boxes"
            )
        no_box = 1.0 - counts.size / n_galaxies_total if n_galaxies_total else 0.0
    return BoxStats(
        n_boxes=len(table),
        n_galaxies_with_boxes=int(counts.size),
        boxes_per_galaxy_mean=float(counts.mean()),
        boxes_per_galaxy_median=c50,
        boxes_per_galaxy_q25=c25,
        boxes_per_galaxy_q75=c75,
        boxes_per_galaxy_distribution=distribution,
        side_median=s50,
        side_q25=s25,
        side_q75=s75,
        side_p05=float(np.percentile(side, 5)),
        side_p95=float(np.percentile(side, 95)),
        max_aspect_difference=float(np.max(np.abs(width - height))),
        label_fractions={int(k): float(v / len(table)) for k, v in zip(labels, label_counts, strict=True)},
        outside_crop_fraction=float(outside.mean()),
        centre_distance_median=d50,
        centre_distance_q25=d25,
        centre_distance_q75=d75,
        n_galaxies_total=n_galaxies_total,
        no_box_fraction=no_box,
    )


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def markdown_table(columns: Mapping[str, BoxStats]) -> str:
    """Side-by-side Markdown table of several tables' statistics (column header = the mapping's keys)."""
    names = list(columns)
    stats = [columns[n] for n in names]
    rows: list[tuple[str, Sequence[str]]] = [
        ("galaxies with >= 1 box", [str(s.n_galaxies_with_boxes) for s in stats]),
        ("boxes", [str(s.n_boxes) for s in stats]),
        ("boxes per galaxy: mean", [_fmt(s.boxes_per_galaxy_mean) for s in stats]),
        ("boxes per galaxy: median [IQR]", [
            f"{s.boxes_per_galaxy_median:g} [{s.boxes_per_galaxy_q25:g}-{s.boxes_per_galaxy_q75:g}]" for s in stats
        ]),
        ("box side (px): median [IQR]", [f"{s.side_median:.1f} [{s.side_q25:.1f}-{s.side_q75:.1f}]" for s in stats]),
        ("box side (px): 5th-95th percentile", [f"{s.side_p05:.1f}-{s.side_p95:.1f}" for s in stats]),
        ("odd-clump fraction (label 2)", [_fmt(s.label_fractions.get(2, 0.0), 3) for s in stats]),
        ("boxes reaching outside the 200x200 crop", [_fmt(s.outside_crop_fraction, 3) for s in stats]),
        ("box centre to crop centre (px): median [IQR]", [
            f"{s.centre_distance_median:.1f} [{s.centre_distance_q25:.1f}-{s.centre_distance_q75:.1f}]" for s in stats
        ]),
        ("galaxies with no clumps (fraction of all)", [_fmt(s.no_box_fraction, 3) for s in stats]),
    ]  # fmt: skip
    keys = sorted({k for s in stats for k in s.boxes_per_galaxy_distribution}, key=lambda k: int(k.rstrip("+")))
    for key in keys:
        fractions = [_fmt(s.boxes_per_galaxy_distribution.get(key), 3) for s in stats]
        rows.append((f"galaxies with {key} box(es)", fractions))
    lines = ["| statistic | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {label} | " + " | ".join(values) + " |" for label, values in rows]
    return "\n".join(lines) + "\n"
