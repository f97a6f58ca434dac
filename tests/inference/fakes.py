"""Framework-free stand-ins for trained models, implementing the inference protocols, so predict is tested exactly.

``PeakDetector`` reports every local maximum of the image's summed channels above a threshold, with a fixed-size
box around it: it depends only on the pixels near each peak, so tiling, stitching and coordinate shifts can be
checked against predicting the whole image at once, to the pixel.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from astrodet.inference.model import SIMULATOR_RECIPE, Detections, ImageRecipe


class PeakDetector:
    """Local maxima (``window`` px) of R+G+B above ``threshold`` -> ``2 * half`` px boxes; score = brightness."""

    framework = "fake"
    task = "detection"

    def __init__(
        self,
        threshold: float = 300.0,
        half: float = 6.0,
        window: int = 7,
        input_size: int | None = 200,
        recipe: ImageRecipe = SIMULATOR_RECIPE,
        delay: float = 0.0,
        log: str | None = None,
    ) -> None:
        self.classes = ("clump", "odd clump")
        self.recipe = recipe
        self.input_size = input_size
        self.threshold = threshold
        self.half = half
        self.window = window
        self.delay = delay
        self.log = log  # a file that gets a line per image predicted (appended: several processes may share it)
        self.shapes: list[tuple[int, ...]] = []

    def predict(self, images: Sequence[np.ndarray]) -> list[Detections]:
        out = []
        for image in images:
            self.shapes.append(image.shape)
            assert image.dtype == np.uint8 and image.ndim == 3
            out.append(self._peaks(image))
        if self.delay:
            time.sleep(self.delay)
        if self.log:
            with open(self.log, "a", encoding="utf-8") as handle:
                handle.write("image\n" * len(images))
        return out

    def _peaks(self, image: np.ndarray) -> Detections:
        total = image.astype(np.float64).sum(axis=2)
        peak = (ndimage.maximum_filter(total, size=self.window, mode="nearest") == total) & (total > self.threshold)
        rows, cols = np.nonzero(peak)
        height, width = total.shape
        x, y = cols + 0.5, rows + 0.5
        boxes = np.column_stack([
            np.clip(x - self.half, 0, width), np.clip(y - self.half, 0, height),
            np.clip(x + self.half, 0, width), np.clip(y + self.half, 0, height),
        ])  # fmt: skip
        scores = np.minimum(total[rows, cols] / 765.0, 1.0)
        labels = (image[rows, cols, 0].astype(int) > image[rows, cols, 2].astype(int) + 40).astype(int)
        return Detections(boxes, scores, labels)


class MeanColourClassifier:
    """A classifier whose probabilities are the mean R, G, B of the image, normalised."""

    framework = "fake"
    task = "classification"

    def __init__(self, recipe: ImageRecipe = SIMULATOR_RECIPE) -> None:
        self.classes = ("red", "green", "blue")
        self.recipe = recipe
        self.input_size = None

    def predict(self, images: Sequence[np.ndarray]) -> np.ndarray:
        means = np.array([image.reshape(-1, 3).mean(axis=0) + 1.0 for image in images])
        return means / means.sum(axis=1, keepdims=True)


def main(argv: Sequence[str]) -> int:
    """``astrodet`` with ``load_model`` giving a :class:`PeakDetector` (for subprocess tests); delay (s per call)
    and log file from the environment."""
    from astrodet import cli
    from astrodet.inference import command

    delay = float(os.environ.get("FAKE_DETECTOR_DELAY", "0"))
    log = os.environ.get("FAKE_DETECTOR_LOG")
    command.load_model = lambda config, weights, device="auto": PeakDetector(delay=delay, log=log)
    return cli.main(list(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
