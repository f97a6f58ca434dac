"""``RandomRot90``: exact quarter-turn rotations for sky images, in mmdet's TRANSFORMS.

The sky has no up or left, so training draws from all eight flips and quarter turns of a cutout, as the Detectron2
side does (``astrodet.detectron2.augment``). mmdet 3.3 has no exact 90-degree rotation: ``Rotate`` interpolates
about the pixel-centre ((w - 1) / 2), which puts boxes off by one pixel and crops non-square images, and
``RandomFlip``'s ``'diagonal'`` is a 180-degree turn (both flips), not a 90-degree one. Pipelines therefore use
mmdet's own ``RandomFlip(prob=[0.25, 0.25, 0.25], direction=['horizontal', 'vertical', 'diagonal'])`` (the same
distribution as Detectron2's two independent 0.5 flips) followed by this transform; together they are uniform over
the eight symmetries of the square.
"""

from __future__ import annotations

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmdet.registry import TRANSFORMS
from mmdet.structures.mask import BitmapMasks


def quarter_turn_matrix(width: int) -> np.ndarray:
    """Homography of one counter-clockwise quarter turn (``np.rot90``) of a ``width``-wide frame: (x, y) -> (y, W - x).

    Coordinates are continuous pixel-corner coordinates (a box [0, 0, 1, 1] covers the top-left pixel), as mmdet's
    boxes and COCO's are; the entries are 0, +-1 and W, so boxes projected with it stay exact.
    """
    return np.array([[0, 1, 0], [-1, 0, width], [0, 0, 1]], dtype=np.float32)


@TRANSFORMS.register_module()
class RandomRot90(BaseTransform):
    """Rotate the image, boxes, bitmap masks and segmentation map by 0, 1, 2 or 3 quarter turns (uniform).

    Required keys: ``img``. Modified keys: ``img``, ``img_shape``, ``gt_bboxes``, ``gt_masks``, ``gt_seg_map``,
    ``homography_matrix``. Added key: ``rot90_k`` (the quarter turns applied, counter-clockwise).

    Args:
        prob: probability of rotating at all; when rotating, k is drawn uniformly from 1, 2, 3. The default 0.75
            makes k uniform over 0..3.
    """

    def __init__(self, prob: float = 0.75) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"prob must be in [0, 1], got {prob}")
        self.prob = prob

    @cache_randomness
    def _random_k(self) -> int:
        # mmengine seeds numpy's global generator per data-loader worker; mmdet's own transforms draw from it too.
        if np.random.rand() >= self.prob:  # noqa: NPY002
            return 0
        return int(np.random.randint(1, 4))  # noqa: NPY002

    def transform(self, results: dict) -> dict:
        k = self._random_k()
        results["rot90_k"] = k
        height, width = results["img"].shape[:2]
        matrix = np.eye(3, dtype=np.float32)  # recorded even for k = 0, as RandomFlip records its no-flip
        for _ in range(k):  # each turn swaps the frame's width and height
            matrix = quarter_turn_matrix(width) @ matrix
            width, height = height, width
        previous = results.get("homography_matrix")
        results["homography_matrix"] = matrix if previous is None else matrix @ previous
        if k == 0:
            return results
        results["img"] = np.ascontiguousarray(np.rot90(results["img"], k))
        results["img_shape"] = results["img"].shape[:2]
        if results.get("gt_bboxes") is not None:
            results["gt_bboxes"].project_(matrix)
        if results.get("gt_masks") is not None:
            masks = results["gt_masks"]
            if not isinstance(masks, BitmapMasks):
                raise TypeError(f"RandomRot90 rotates BitmapMasks only, got {type(masks).__name__}")
            results["gt_masks"] = BitmapMasks(np.rot90(masks.masks, k, axes=(1, 2)).copy(), height, width)
        if results.get("gt_seg_map") is not None:
            results["gt_seg_map"] = np.ascontiguousarray(np.rot90(results["gt_seg_map"], k))
        return results

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(prob={self.prob})"
