"""``astrodet predict --engine ray --out RUN.parquet --parquet-dataset``: the catalogue as a folder of Parquet parts.

Why: a survey-size run should neither gather every row in one process before writing anything nor lose hours of
work when it is killed. ``RUN.parquet/`` holds ``part-NNNNNN.parquet``: part k covers the inputs k*S .. k*S+S-1 in
discovery order (S = ``--chunk-size``), its rows in input order, with the single-file catalogue's columns, dtypes and
provenance plus a ``part`` record (first input, inputs, predicted, their rejects). Each part is staged under a hidden
name and renamed (:mod:`astrodet.io`), so a killed run leaves only whole parts, and ``--resume`` predicts only the
inputs of the missing ones. ``_astrodet_run.json`` (the key of everything that decides the output) is written
first; ``_common_metadata`` (the schema with the single-file catalogue's metadata, counts included) last: its
presence means the dataset is complete. Readers (pyarrow.dataset, pandas, DuckDB, Spark) skip names starting with
``_`` or ``.``, so they see the parts only.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astrodet.errors import AstrodetInputError
from astrodet.inference import catalogue as cat
from astrodet.inference.parts import resumed_run_created
from astrodet.io import atomic_path, atomic_write_text

MANIFEST = "_astrodet_run.json"
COMMON_METADATA = "_common_metadata"  # the name Dask, Spark and Arrow's docs give a dataset's schema-only file
PART_GLOB = "part-*.parquet"


def part_name(index: int) -> str:
    return f"part-{index:06d}.parquet"


def part_ranges(inputs: int, part_size: int) -> list[range]:
    """The input indices of each part, in order."""
    return [range(start, min(start + part_size, inputs)) for start in range(0, inputs, part_size)]


@dataclass(frozen=True)
class DatasetTotals:
    """What the finished parts hold together: for the summary line and the rejects table."""

    rows: int
    predicted: int
    rejects: list[dict[str, str]]


class ParquetDataset:
    """One run's dataset folder: the manifest, the parts as they finish, then the common metadata."""

    def __init__(self, out: str | os.PathLike[str], inputs: int, part_size: int) -> None:
        self.folder = Path(out)
        self.part_size = part_size
        self.parts = part_ranges(inputs, part_size)

    def start(self, key: str, created: str, resume: bool) -> str:
        """Open the folder for a run with ``key``; returns the run's creation time (kept across resumes)."""
        manifest_path = self.folder / MANIFEST
        if self.folder.exists() and any(self.folder.iterdir()):
            if not manifest_path.is_file():
                raise AstrodetInputError(
                    f"--out {self.folder}: a folder that is not an astrodet Parquet dataset (no {MANIFEST}); "
                    "choose a new --out"
                )
            if not resume:
                raise AstrodetInputError(
                    f"--out {self.folder}: holds a run's parts; pass --resume to continue it, or delete the folder "
                    "to start again"
                )
            try:
                manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            except ValueError:
                raise AstrodetInputError(f"{manifest_path}: unreadable; delete the folder to start again") from None
            created = resumed_run_created(self.folder, manifest, key)
            for stale in self.folder.glob(".part-*.tmp"):  # staged by a killed run, never renamed
                stale.unlink()
            (self.folder / COMMON_METADATA).unlink(missing_ok=True)  # written again when every part is there
            return created
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {"key": key, "created": created, "inputs": sum(map(len, self.parts)), "parts": len(self.parts)}
        atomic_write_text(manifest_path, json.dumps(record, indent=1) + "\n")
        return created

    def done(self) -> set[int]:
        """The parts already written."""
        return {k for k in range(len(self.parts)) if (self.folder / part_name(k)).is_file()}

    def write_part(
        self, index: int, results: Mapping[int, dict[str, Any]], columns: Sequence[tuple[str, str]], meta: dict
    ) -> None:
        """Part ``index`` from the results of its inputs (JSON results as the engines make them), atomically."""
        inputs = self.parts[index]
        if sorted(results) != list(inputs):
            raise RuntimeError(f"part {index}: results for inputs {sorted(results)}, expected {list(inputs)}")
        rows: dict[str, list] = {name: [] for name, _ in columns}
        rejects: list[dict[str, str]] = []
        predicted = 0
        for i in inputs:
            predicted += results[i]["predicted"]
            rejects.extend(results[i]["rejects"])
            for name in rows:
                rows[name].extend(results[i]["rows"][name])
        record = {"index": index, "first_input": inputs.start, "inputs": len(inputs), "predicted": predicted,
                  "rejects": rejects}  # fmt: skip
        cat.write_catalogue(cat.build_table(columns, rows, {**meta, "part": record}), self.folder / part_name(index))

    def write_results(
        self, results: Iterable[tuple[int, dict[str, Any]]], columns: Sequence[tuple[str, str]], meta: dict
    ) -> None:
        """Write each part as soon as all its inputs' results have arrived (in any order)."""
        pending: dict[int, dict[int, dict[str, Any]]] = {}
        for index, result in results:
            k = index // self.part_size
            pending.setdefault(k, {})[index] = result
            if len(pending[k]) == len(self.parts[k]):
                self.write_part(k, pending.pop(k), columns, meta)
        if pending:
            raise RuntimeError(f"parts {sorted(pending)} are incomplete: some of their inputs never came back")

    def finish(self, columns: Sequence[tuple[str, str]], meta: dict) -> DatasetTotals:
        """Check every part (its inputs as planned), then write the common metadata (``meta`` plus the reject count):
        the dataset is complete. Returns the totals for the rejects table and the summary."""
        import pyarrow.parquet as pq

        rows = predicted = 0
        rejects: list[dict[str, str]] = []
        for k, inputs in enumerate(self.parts):
            path = self.folder / part_name(k)
            if not path.is_file():
                raise RuntimeError(f"{path}: missing; the run did not finish (rerun with --resume)")
            record = cat.parquet_meta(pq.read_schema(path)).get("part", {})
            if (record.get("first_input"), record.get("inputs")) != (inputs.start, len(inputs)):
                raise RuntimeError(f"{path}: covers other inputs than planned ({record}); delete the folder")
            rows += pq.read_metadata(path).num_rows
            predicted += int(record["predicted"])
            rejects.extend(record["rejects"])
        table = cat.build_table(columns, {}, {**meta, "rejected": len(rejects)})
        with atomic_path(self.folder / COMMON_METADATA) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table.write(tmp, format="parquet", overwrite=True)
        return DatasetTotals(rows, predicted, rejects)


def read_dataset(folder: Path):
    """A finished dataset as one astropy Table, rows in input order, meta from ``_common_metadata``; a one-line
    error for an unfinished one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    common = folder / COMMON_METADATA
    if not common.is_file():
        raise AstrodetInputError(
            f"{folder}: an unfinished Parquet dataset (no {COMMON_METADATA}); finish it with astrodet predict "
            "... --resume"
        )
    schema = pq.read_schema(common)
    parts = [pq.read_table(path).replace_schema_metadata(None) for path in sorted(folder.glob(PART_GLOB))]
    arrow = pa.concat_tables(parts) if parts else schema.empty_table()
    return cat.arrow_to_table(arrow, cat.parquet_meta(schema))
