"""A rejects ledger shared by the converters: every input row is either converted or reported, never lost silently.

Why: catalogue conversions drop rows for many reasons (missing image, box off the image, NaN); a user must be able
to find each dropped row in their own file and see why, and the counts must add up
(``N rows in = M converted + K rejected``), which :meth:`RejectsLedger.summary` checks rather than assumes.
Row numbers count the header as row 1 (the first data row is row 2), as a spreadsheet shows them.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from astrodet.io import atomic_write_text

REPORT_COLUMNS = ("file", "row", "reason", "message")


@dataclass(frozen=True)
class Reject:
    """One rejected input row: where it is, a machine-readable reason code, a human message and its values."""

    file: str
    row: int
    reason: str
    message: str
    values: Mapping[str, str] = field(default_factory=dict)


class RejectsLedger:
    """Collects rejected rows, counts them by reason and writes them as a CSV report."""

    def __init__(self) -> None:
        self._rejects: list[Reject] = []

    def add(
        self,
        file: str | os.PathLike[str],
        row: int,
        reason: str,
        message: str,
        values: Mapping[str, object] | None = None,
    ) -> None:
        """Record one rejected row; ``row`` is 1-based with the header as row 1."""
        clean = {str(k): "" if v is None else str(v) for k, v in (values or {}).items()}
        self._rejects.append(Reject(str(file), int(row), reason, message, clean))

    def __len__(self) -> int:
        return len(self._rejects)

    def __iter__(self) -> Iterator[Reject]:
        return iter(self._rejects)

    def rejects(self, file: str | os.PathLike[str] | None = None) -> list[Reject]:
        """The rejects, optionally only those of one input file."""
        if file is None:
            return list(self._rejects)
        return [r for r in self._rejects if r.file == str(file)]

    def count(self, file: str | os.PathLike[str] | None = None) -> int:
        return len(self.rejects(file))

    def counts(self, file: str | os.PathLike[str] | None = None) -> dict[str, int]:
        """Rejects by reason, most frequent first (ties by name), optionally for one input file."""
        counter = Counter(r.reason for r in self.rejects(file))
        return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))

    def summary(
        self, rows_in: int, rows_out: int, file: str | os.PathLike[str] | None = None, out_label: str = "converted"
    ) -> str:
        """``"N rows in = M converted + K rejected (reason: count, ...)"``; raises if the numbers do not add up."""
        rejected = self.count(file)
        if rows_in != rows_out + rejected:
            raise RuntimeError(
                f"row accounting broken: {rows_in} rows in != {rows_out} {out_label} + {rejected} rejected"
                + (f" for {file}" if file is not None else "")
            )
        return format_summary(rows_in, rows_out, self.counts(file), out_label)

    def to_csv_text(self) -> str:
        """The report as CSV text: file,row,reason,message then the rows' own columns (union, first-seen order)."""
        value_columns: dict[str, None] = {}
        for r in self._rejects:
            for key in r.values:
                value_columns.setdefault(key, None)
        # an input column called e.g. "row" is written as "input_row" so it cannot shadow the report's own columns
        header = [f"input_{k}" if k in REPORT_COLUMNS else k for k in value_columns]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([*REPORT_COLUMNS, *header])
        for r in self._rejects:
            writer.writerow([r.file, r.row, r.reason, r.message, *(r.values.get(k, "") for k in value_columns)])
        return buffer.getvalue()

    def write_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the report atomically (a header-only file when nothing was rejected, so its absence means no run)."""
        atomic_write_text(path, self.to_csv_text())
        return Path(path)


def format_summary(rows_in: int, rows_out: int, counts: Mapping[str, int], out_label: str = "converted") -> str:
    rejected = sum(counts.values())
    detail = ", ".join(f"{reason}: {n}" for reason, n in counts.items())
    return f"{rows_in} rows in = {rows_out} {out_label} + {rejected} rejected" + (f" ({detail})" if detail else "")


def read_rejects_csv(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """Read a report written by :meth:`RejectsLedger.write_csv` (for tests and follow-up tools)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@dataclass(frozen=True)
class ConversionSummary:
    """What a converter did: the row accounting, the files written and what they hold.

    Returned by every ``convert_*`` function so that callers (the CLI, the default-dataset builder, tests) check
    the same numbers the user sees.
    """

    rows_in: int
    rows_out: int
    rejected: dict[str, int]
    outputs: dict[str, Path]
    rejects_csv: Path | None = None
    images_out: int = 0
    categories: dict[str, int] = field(default_factory=dict)
    out_label: str = "converted"
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.rows_in != self.rows_out + self.n_rejected:
            raise RuntimeError(
                f"row accounting broken: {self.rows_in} rows in != {self.rows_out} {self.out_label}"
                f" + {self.n_rejected} rejected"
            )

    @property
    def n_rejected(self) -> int:
        return sum(self.rejected.values())

    def line(self) -> str:
        """``"N rows in = M <out_label> + K rejected (reason: count, ...)"``."""
        return format_summary(self.rows_in, self.rows_out, self.rejected, self.out_label)
