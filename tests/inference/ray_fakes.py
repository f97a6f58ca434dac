"""A model loader for Ray engine tests; module-level so that Ray pickles it by reference (workers import this)."""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence

import numpy as np

from astrodet.inference.model import Detections
from tests.inference.fakes import PeakDetector


class KillsItsWorkerOnce(PeakDetector):
    """A :class:`PeakDetector` whose process kills itself (SIGKILL, as the OOM killer or a lost node would) on its
    ``kill_on``-th ``predict`` call, once per run: the first process to get there creates ``marker`` and dies."""

    def __init__(self, marker: str, kill_on: int) -> None:
        super().__init__()
        self.marker, self.kill_on, self.calls = marker, kill_on, 0

    def predict(self, images: Sequence[np.ndarray]) -> list[Detections]:
        self.calls += 1
        if self.calls == self.kill_on:
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return super().predict(images)
            os.kill(os.getpid(), signal.SIGKILL)
        return super().predict(images)


def load_killer(device: str = "cpu", marker: str = "", kill_on: int = 2) -> KillsItsWorkerOnce:
    return KillsItsWorkerOnce(marker, kill_on)


def load_peaks(device: str = "cpu", log: str | None = None) -> PeakDetector:
    """The plain fake detector; ``log`` gets a line per image predicted (which inputs a resumed run predicted)."""
    return PeakDetector(log=log)
