"""Pick and load the example images drawn in a report's grid (framework-free: COCO dicts and results)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from astrodet.data.imaging import FITS_SUFFIXES
from astrodet.data.normalise import preview_rgb
from astrodet.evaluation.detection import records_from_coco
from astrodet.evaluation.plots import ImagePanel


def example_panels(
    gt: Mapping[str, Any], results: Sequence[Mapping[str, Any]], image_root: str | Path, n: int
) -> list[ImagePanel]:
    """The first ``n`` images that have true boxes (in dataset order: deterministic), with truths and predictions."""
    if n <= 0:
        return []
    by_id = {img["id"]: img for img in gt["images"]}
    panels = []
    for record in records_from_coco(gt, results, extra_fields=()):
        if len(record.true_boxes) == 0:
            continue
        info = by_id[record.image_id]
        path = Path(image_root) / info["file_name"]
        if path.name.lower().endswith((*FITS_SUFFIXES, ".npy")):
            pixels = preview_rgb(path)  # float bands: a z-scaled picture in the boxes' array frame
        else:
            with Image.open(path) as im:
                pixels = np.asarray(im.convert("RGB"))
        title = str(info.get("galaxy_id", Path(info["file_name"]).stem))
        panels.append(
            ImagePanel(
                pixels,
                record.true_boxes,
                record.true_classes,
                record.pred_boxes,
                record.pred_scores,
                record.pred_classes,
                title,
            )
        )
        if len(panels) == n:
            break
    return panels
