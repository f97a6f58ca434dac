"""Finished chunks of a long ``astrodet predict`` run, kept in ``<out>.parts/`` so ``--resume`` can skip them.

Why: a survey-size run takes hours and may be killed; redoing finished work is waste, and the final catalogue must
still be written once, atomically, and equal an uninterrupted run. Each chunk's rows and rejects are one JSON file
written atomically (Python's JSON keeps every float exactly, NaN included), so a killed run leaves only whole
chunks. ``manifest.json`` holds a key of everything that decides the output (model, inputs, options); resuming
with a different key is refused rather than mixing two runs in one catalogue.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from astrodet.errors import AstrodetInputError
from astrodet.io import atomic_write_text

MANIFEST = "manifest.json"
_CHUNK = re.compile(r"^chunk-(\d{6})\.json$")


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_key(settings: dict[str, Any]) -> str:
    """A hash of the settings that decide a run's output."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def resumed_run_created(folder: Path, manifest: dict[str, Any], key: str) -> str:
    """The creation time of the run ``manifest`` records, once its key is ``key``: a resume with another model, inputs
    or options is refused (the chunk folder of one catalogue and the Parquet dataset of ``--parquet-dataset`` alike)."""
    if manifest.get("key") != key:
        raise AstrodetInputError(
            f"--resume: {folder} was made by a run with another model, inputs or options; rerun with the same ones, "
            "or delete the folder to start again"
        )
    return str(manifest["created"])


class PartsFolder:
    """``<out>.parts/``: the manifest and one ``chunk-NNNNNN.json`` per finished chunk."""

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.folder = Path(f"{out}.parts")

    def start(self, key: str, created: str, resume: bool) -> str:
        """Open the folder for a run with ``key``; returns the run's creation time (kept across resumes)."""
        manifest_path = self.folder / MANIFEST
        if self.folder.exists():
            if not resume:
                raise AstrodetInputError(
                    f"{self.folder}: an unfinished run's parts are here; pass --resume to continue it, or delete "
                    "the folder to start again"
                )
            try:
                manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                manifest = None
            if manifest is not None:
                return resumed_run_created(self.folder, manifest, key)
            self.remove()  # no readable manifest: nothing here can be trusted to belong to this run
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(manifest_path, json.dumps({"key": key, "created": created}, indent=1) + "\n")
        return created

    def chunk_path(self, index: int) -> Path:
        return self.folder / f"chunk-{index:06d}.json"

    def done(self) -> set[int]:
        """Indices of the chunks already written."""
        if not self.folder.is_dir():
            return set()
        return {int(m.group(1)) for name in os.listdir(self.folder) if (m := _CHUNK.match(name))}

    def save(self, index: int, chunk: dict[str, Any]) -> None:
        atomic_write_text(self.chunk_path(index), json.dumps(chunk))

    def load(self, index: int) -> dict[str, Any]:
        return json.loads(self.chunk_path(index).read_text(encoding="utf-8"))

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
