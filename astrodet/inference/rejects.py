"""Why an input was not predicted on: the reasons of the rejects table, and the exception that carries one.

Why: a long run must never stop on one bad image, yet every input must be accounted for (inputs = predicted +
rejected), so each problem of one image becomes a row ``file, reason, message`` of ``<stem>_rejects.csv``.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from collections.abc import Mapping, Sequence

from astrodet.io import atomic_write_text

UNREADABLE_IMAGE = "unreadable_image"  # the file cannot be decoded (truncated, not an image, no data)
NO_CELESTIAL_WCS = "no_celestial_wcs"  # a FITS input without RA/Dec axes in its WCS
ALL_NAN = "all_nan"  # a FITS band holds no finite pixel
WRONG_BAND_COUNT = "wrong_band_count"  # fewer or more bands than the model's recipe renders
RECIPE_MISMATCH = "recipe_mismatch"  # pixels the model's training recipe cannot reproduce (mode, units, bands)
BAND_MISMATCH = "band_mismatch"  # the files of one per-band group differ in shape
NO_PSF_SCALE = "no_psf_scale"  # --match-psf cannot size this input's crop (no pixel scale or PSF, or too coarse)

REJECT_COLUMNS = ("file", "reason", "message")


class InputRejected(Exception):
    """One input cannot be predicted on; ``reason`` is one of the codes above, ``message`` says what to do."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def rejects_csv_text(rows: Sequence[Mapping[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(REJECT_COLUMNS)
    for row in rows:
        writer.writerow([row[c] for c in REJECT_COLUMNS])
    return buffer.getvalue()


def write_rejects(path: str | os.PathLike[str], rows: Sequence[Mapping[str, str]]) -> None:
    """Write the rejects table atomically (header only when nothing was rejected, so its presence means a run)."""
    atomic_write_text(path, rejects_csv_text(rows))


def reason_counts(rows: Sequence[Mapping[str, str]]) -> dict[str, int]:
    """Rejects by reason, most frequent first (ties by name)."""
    counter = Counter(row["reason"] for row in rows)
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))
