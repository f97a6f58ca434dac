"""The dataset cache, and the one protocol that builds each cached dataset exactly once.

Why one protocol: a dataset astrodet makes itself (the simulated default, a converted real sample) is built on
first use, and several processes may ask for it at once (a multi-GPU launch, two users' jobs on one machine). One
builds while the others wait; a ``READY.json`` written last (atomically) marks a complete folder, so a reader never
meets a half-built one and a killed build is simply started again.

The lock is a POSIX record lock (``fcntl.lockf``), not ``flock``: record locks belong to the process that took
them, are not inherited by children forked while they are held (the simulator's worker pool), and are released by
the kernel when that process dies, even by ``kill -9``. A killed builder therefore never leaves a lock behind, and
no orphaned worker can keep one. A waiter says whom it waits for (the holder writes its pid into the lock file) and
gives up after ``$ASTRODET_LOCK_TIMEOUT`` seconds (default 3600) with a message instead of hanging.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from astrodet.io import atomic_write_json

READY_FILE = "READY.json"
LOCK_TIMEOUT_ENV = "ASTRODET_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT_S = 3600.0


def cache_dir() -> Path:
    """Where built datasets live: ``$ASTRODET_CACHE`` or ``~/.cache/astrodet``."""
    return Path(os.environ.get("ASTRODET_CACHE", Path.home() / ".cache" / "astrodet"))


def lock_timeout() -> float:
    """Seconds a waiter waits for another process's build: ``$ASTRODET_LOCK_TIMEOUT``, default one hour."""
    text = os.environ.get(LOCK_TIMEOUT_ENV)
    if not text:
        return DEFAULT_LOCK_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"${LOCK_TIMEOUT_ENV}: expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise ValueError(f"${LOCK_TIMEOUT_ENV}: expected a positive number of seconds, got {text!r}")
    return value


def _holder(fd: int) -> str:
    """What the current holder wrote into the lock file (pid, host, start time), for a waiter's message."""
    with contextlib.suppress(OSError):
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
        if text:
            return text
    return "another process"


@contextlib.contextmanager
def exclusive(lock_path: Path, what: str, timeout: float | None = None, poll_s: float = 0.2) -> Iterator[None]:
    """Hold an exclusive, process-owned lock on ``lock_path`` inside the block (see the module doc).

    ``what`` names the thing being built in the waiting and time-out messages. Not for threads of one process:
    POSIX record locks do not exclude the process that holds them.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    limit = lock_timeout() if timeout is None else timeout
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        start = time.monotonic()
        told = False
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as err:
                if err.errno not in (errno.EACCES, errno.EAGAIN):
                    raise
            waited = time.monotonic() - start
            if waited >= limit:
                raise TimeoutError(
                    f"{what}: still locked by {_holder(fd)} after {waited:.0f} s ({lock_path}); "
                    f"wait for that process or stop it (set ${LOCK_TIMEOUT_ENV} to wait longer)"
                )
            if not told:
                print(f"{what}: waiting for {_holder(fd)}, which is building it ({lock_path})", file=sys.stderr)
                told = True
            time.sleep(poll_s)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%H:%M:%S')}".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the record lock


def ready_info(folder: Path) -> dict[str, Any] | None:
    """The ``READY.json`` of a complete folder, or None while it is absent (not built, or being built)."""
    path = folder / READY_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def build_once(folder: Path, build: Callable[[Path], Mapping[str, Any]], what: str) -> dict[str, Any]:
    """Return ``folder``'s READY record, building the folder first (``build(folder)`` -> its record) if needed.

    The only place astrodet builds a cached dataset: the lock sits beside the folder (``<folder>.lock``), a
    leftover of an interrupted build is removed before building, and READY.json is written last.
    """
    info = ready_info(folder)
    if info is not None:
        return info
    with exclusive(folder.with_name(folder.name + ".lock"), what):
        info = ready_info(folder)  # another process may have finished it while this one waited
        if info is None:
            if folder.exists():  # an interrupted earlier build: start clean
                shutil.rmtree(folder)
            info = dict(build(folder))
            atomic_write_json(folder / READY_FILE, info, indent=2)
    return info
