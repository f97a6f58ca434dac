"""The Clump Scout box table: its columns, label codes and crop frame, and the checks that give each row its first
failing reason (the order is :mod:`astrodet.data.clumpscout`'s module doc).

Why vectorised: the real train table has 32,270 rows; coordinates are parsed as numpy columns and each geometric
check is one array expression, so a conversion takes under a second. A row keeps the first reason it fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from astrodet.data.toolkit import CsvTable, basename, short_number

COLUMNS = ("image_id", "local_ids", "filename", "label", "label_text", "x1", "x2", "y1", "y2")
COORDS = ("x1", "x2", "y1", "y2")
CATEGORIES = {1: "clump", 2: "odd_clump"}
CROP_SIZE = 200  # px: side of the central crop the table's coordinates refer to
DEFAULT_SOURCE_SIZE = (400, 400)  # px: the Clump Scout cutouts
FRAMES = ("crop", "full")
DUPLICATE_DECIMALS = 3
# reasons after which a row says nothing usable about its image (no image record is made from it)
IMAGE_UNUSABLE = (
    "malformed_row",
    "missing_value",
    "conflicting_ids",
    "missing_image",
    "unreadable_image",
    "wrong_image_size",
)


@dataclass(frozen=True)
class Frame:
    """Where the table's boxes land: ``crop`` (the central crop, Popp's frame) or ``full`` (the whole cutout)."""

    name: str
    source_size: tuple[int, int]  # (W, H) of the source cutouts
    margin: float  # crop frame: fraction of the crop side a box must keep from the edge

    @property
    def crop_origin(self) -> tuple[int, int]:
        return ((self.source_size[0] - CROP_SIZE) // 2, (self.source_size[1] - CROP_SIZE) // 2)

    @property
    def offset(self) -> tuple[int, int]:
        """Added to the table's coordinates to get output image pixels."""
        return (0, 0) if self.name == "crop" else self.crop_origin

    @property
    def output_size(self) -> tuple[int, int]:
        return (CROP_SIZE, CROP_SIZE) if self.name == "crop" else self.source_size


class ImageCheck(Protocol):
    def check(self, name: str) -> tuple[str | None, str]: ...


@dataclass
class CheckedRows:
    """Each row's first failing reason (None: kept) and message, its parsed values, and each image's galaxy."""

    reasons: list[str | None]
    messages: list[str]
    coords: dict[str, np.ndarray]  # x1, x2, y1, y2 (float) and label (int, 0 when unknown)
    names: list[str]  # image file basename per row
    galaxy_of: dict[str, str]  # image basename -> local_ids of the first row naming it


def _parse_floats(values: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Floats and a finite mask; unparseable strings become NaN. Fast path: numpy parses the whole column."""
    try:
        array = np.array(values, dtype=np.float64)
    except ValueError:
        array = np.empty(len(values), dtype=np.float64)
        for i, text in enumerate(values):
            try:
                array[i] = float(text)
            except ValueError:
                array[i] = np.nan
    return array, np.isfinite(array)


def _parse_label(text: str) -> int | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value in CATEGORIES else None


def _reject_rows(
    reasons: list[str | None], messages: list[str], mask: np.ndarray, reason: str, message: Callable[[int], str]
) -> None:
    """Give ``reason`` to the rows in ``mask`` that have no reason yet."""
    for i in np.flatnonzero(mask):
        if reasons[i] is None:
            reasons[i] = reason
            messages[i] = message(int(i))


def check_rows(table: CsvTable, frame: Frame, images: ImageCheck) -> CheckedRows:
    """Give each row its first failing reason (or None); ``images`` checks the cutout a row names."""
    header, rows = table.header, table.rows
    n = len(rows)
    width = len(header)
    reasons: list[str | None] = [None] * n
    messages = [""] * n
    for i, row in enumerate(rows):
        if len(row) != width:
            reasons[i] = "malformed_row"
            messages[i] = f"expected {width} fields, got {len(row)}"
    index = {name: header.index(name) for name in COLUMNS}
    column = {name: [row[j] if j < len(row) else "" for row in rows] for name, j in index.items()}
    names = [basename(f) for f in column["filename"]]
    galaxies = [g.strip() for g in column["local_ids"]]

    for i in range(n):
        if reasons[i] is None and (not names[i] or not galaxies[i]):
            reasons[i] = "missing_value"
            messages[i] = "filename is empty" if not names[i] else "local_ids is empty"

    galaxy_of: dict[str, str] = {}
    for i in range(n):
        if reasons[i] is None:
            first = galaxy_of.setdefault(names[i], galaxies[i])
            if first != galaxies[i]:
                reasons[i] = "conflicting_ids"
                messages[i] = f"image {names[i]} belongs to local_ids {first} in an earlier row, not {galaxies[i]}"

    for i in range(n):
        if reasons[i] is None:
            reason, message = images.check(names[i])
            if reason is not None:
                reasons[i], messages[i] = reason, message

    coords: dict[str, np.ndarray] = {}
    bad_any = np.zeros(n, dtype=bool)
    for name in COORDS:
        values = [v if r is None else "0" for v, r in zip(column[name], reasons, strict=True)]
        coords[name], finite = _parse_floats(values)
        bad = ~finite & ~bad_any
        _reject_rows(
            reasons, messages, bad, "not_finite", lambda i, c=name: f"{c} is not a finite number: {column[c][i]!r}"
        )
        bad_any |= ~finite

    labels = np.array([_parse_label(t) or 0 for t in column["label"]], dtype=np.int64)
    _reject_rows(
        reasons,
        messages,
        labels == 0,
        "unknown_label",
        lambda i: f"label must be 1 (clump) or 2 (odd clump), got {column['label'][i]!r}",
    )
    coords["label"] = labels
    _check_geometry(reasons, messages, coords, frame)
    _check_duplicates(reasons, messages, coords, names, table.numbers)
    return CheckedRows(reasons, messages, coords, names, galaxy_of)


def _px(value: float) -> str:
    """A pixel coordinate in a message: two decimals, short for absurd values."""
    return short_number(value, ".2f")


def _check_geometry(
    reasons: list[str | None], messages: list[str], coords: dict[str, np.ndarray], frame: Frame
) -> None:
    """non_positive_size, then outside_crop_margin (crop frame) or outside_image (full frame)."""
    x1, x2, y1, y2 = (coords[c] for c in COORDS)
    with np.errstate(invalid="ignore", over="ignore"):  # 1e308 - -1e308 is inf: rejected, not a warning
        _reject_rows(
            reasons,
            messages,
            x2 - x1 <= 0,
            "non_positive_size",
            lambda i: f"box width x2 - x1 = {short_number(x2[i] - x1[i], 'g')} must be > 0",
        )
        _reject_rows(
            reasons,
            messages,
            y2 - y1 <= 0,
            "non_positive_size",
            lambda i: f"box height y2 - y1 = {short_number(y2[i] - y1[i], 'g')} must be > 0",
        )
        if frame.name == "crop":
            low, high = frame.margin * CROP_SIZE, CROP_SIZE - frame.margin * CROP_SIZE
            outside = (x1 < low) | (y1 < low) | (x2 > high) | (y2 > high)
            _reject_rows(
                reasons,
                messages,
                outside,
                "outside_crop_margin",
                lambda i: (
                    f"box x {_px(x1[i])}..{_px(x2[i])}, y {_px(y1[i])}..{_px(y2[i])} is not within "
                    f"[{low:g}, {high:g}] of the {CROP_SIZE}x{CROP_SIZE} crop (margin {frame.margin:g})"
                ),
            )
        else:
            (ox, oy), (w, h) = frame.crop_origin, frame.source_size
            outside = (x1 + ox < 0) | (y1 + oy < 0) | (x2 + ox > w) | (y2 + oy > h)
            _reject_rows(
                reasons,
                messages,
                outside,
                "outside_image",
                lambda i: (
                    f"box x {_px(x1[i] + ox)}..{_px(x2[i] + ox)}, y {_px(y1[i] + oy)}..{_px(y2[i] + oy)}"
                    f" is not inside the {w}x{h} image"
                ),
            )


def _check_duplicates(
    reasons: list[str | None], messages: list[str], coords: dict[str, np.ndarray], names: list[str], numbers: list[int]
) -> None:
    """A kept row with the same image and box (to 1e-3 px) as an earlier kept row is a duplicate."""
    with np.errstate(over="ignore", invalid="ignore"):  # huge values of rejected rows round to inf: never compared
        rounded = np.round(np.stack([coords[c] for c in COORDS], axis=1), DUPLICATE_DECIMALS)
    first_row: dict[tuple[Any, ...], int] = {}
    for i in range(len(names)):
        if reasons[i] is None:
            key = (names[i], *rounded[i].tolist())
            if key in first_row:
                reasons[i] = "duplicate"
                messages[i] = f"same image and box (to 1e-{DUPLICATE_DECIMALS} px) as row {numbers[first_row[key]]}"
            else:
                first_row[key] = i
