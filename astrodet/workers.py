"""Worker processes that cannot outlive the run that started them.

Why: a pool worker forked by a build keeps running after its parent is killed (``kill -9``, an out-of-memory kill,
a cluster pre-emption) and keeps writing into the output folder while the next run rebuilds it. On Linux each
worker asks the kernel to kill it when its parent dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``); elsewhere it only
checks, at start-up, that its parent is still the process that launched the pool.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int) -> None:
    """Process-pool initializer: SIGKILL this worker as soon as ``parent_pid`` (the pool's owner) dies.

    Pass ``initializer=die_with_parent, initargs=(os.getpid(),)``; the pool must be created from the thread that
    lives as long as the run (the main thread), since Linux signals on the death of the creating thread.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)
