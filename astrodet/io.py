"""Atomic file output: every file astrodet writes appears whole or not at all.

A temporary file is written in the destination folder (same filesystem, so the final rename is atomic), flushed
and fsynced, then renamed over the target. An interrupted run leaves at most a hidden ``.*.tmp`` file that the next
run overwrites, never a half-written output under the real name.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it onto ``path`` only if the block succeeds."""
    if "r" in mode or "a" in mode or "+" in mode:
        raise ValueError(f"atomic_open writes whole files; mode {mode!r} is not supported")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = None) -> None:
    """Write JSON atomically; NaN/inf are refused (they are not JSON and break other readers)."""
    atomic_write_text(path, json.dumps(obj, indent=indent, allow_nan=False) + "\n")


def write_all_or_nothing(outputs: Iterable[tuple[Path, Callable[[Path], Any]]]) -> None:
    """Write a set of files that only make sense together (COCO splits + rejects report).

    Each writer is atomic on its own; if one fails, or the run is interrupted, the files already written by this call
    are removed, so a rerun never meets a mix of new and stale outputs.
    """
    done: list[Path] = []
    try:
        for path, write in outputs:
            write(path)
            done.append(path)
    except BaseException:
        for path in done:
            path.unlink(missing_ok=True)
        raise
