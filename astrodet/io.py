"""Atomic file output: every file astrodet writes appears whole or not at all.

A temporary file is written in the destination folder (same filesystem, so the final rename is atomic), flushed
and fsynced, then renamed over the target. An interrupted run can leave a hidden ``.<name>.<random>.tmp`` beside the
target but never a half-written file under the real name; the converters remove such leftovers of their own outputs
(:mod:`astrodet.data.outputs`, which also publishes a set of files as one unit).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[str]:
    """A temporary sibling path of ``path`` for a writer that wants a file name (astropy's ``Table.write``, ...);
    fsynced and renamed onto ``path`` only if the block succeeds, removed otherwise."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield tmp_name
        with open(tmp_name, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it onto ``path`` only if the block succeeds."""
    if "r" in mode or "a" in mode or "+" in mode:
        raise ValueError(f"atomic_open writes whole files; mode {mode!r} is not supported")
    with atomic_path(path) as tmp_name, open(tmp_name, mode, **kwargs) as handle:
        yield handle


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = None) -> None:
    """Write JSON atomically; NaN/inf are refused (they are not JSON and break other readers)."""
    atomic_write_text(path, json.dumps(obj, indent=indent, allow_nan=False) + "\n")


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make the renames and links made in a folder durable (before a later rename that depends on them)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def clone(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """A second name for ``source``'s bytes at ``target``: a hard link (instant, no space), else a copy."""
    try:
        os.link(source, target)
    except OSError:  # a file system without hard links, or source on another one
        shutil.copy2(source, target)


def clone_tree(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """A folder's files under a second name, each :func:`clone`-d."""
    shutil.copytree(source, target, symlinks=True, copy_function=clone)
