"""Training augmentations for sky images: flips and exact 90-degree rotations (the sky has no up or left)."""

from __future__ import annotations

import numpy as np
from detectron2.config import CfgNode
from detectron2.data import transforms as T


class Rot90Transform(T.Transform):
    """Rotate by ``k`` quarter turns counter-clockwise (``np.rot90``): exact, no interpolation, boxes stay tight."""

    def __init__(self, k: int, height: int, width: int) -> None:
        super().__init__()
        self.k = int(k) % 4
        self.height = height
        self.width = width

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.rot90(img, self.k))

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        # One counter-clockwise quarter turn of a W-wide frame maps (x, y) -> (y, W - x).
        out = np.asarray(coords, dtype=np.float64).copy()
        w, h = self.width, self.height
        for _ in range(self.k):
            out = np.stack([out[:, 1], w - out[:, 0]], axis=1)
            w, h = h, w
        return out

    def apply_segmentation(self, segmentation: np.ndarray) -> np.ndarray:
        return self.apply_image(segmentation)

    def inverse(self) -> T.Transform:
        h, w = (self.height, self.width) if self.k % 2 == 0 else (self.width, self.height)
        return Rot90Transform(4 - self.k, h, w)


class RandomRot90(T.Augmentation):
    """Pick 0, 1, 2 or 3 quarter turns uniformly."""

    def get_transform(self, image: np.ndarray) -> T.Transform:
        h, w = image.shape[:2]
        # detectron2 seeds numpy's global generator per data-loader worker; its own augmentations draw from it too.
        return Rot90Transform(int(np.random.randint(4)), h, w)  # noqa: NPY002


def sky_augmentations(cfg: CfgNode) -> list[T.Augmentation]:
    """The orientation augmentations ``cfg.ASTRODET.AUG`` switches on, shared by detection and classification."""
    augs: list[T.Augmentation] = []
    if cfg.ASTRODET.AUG.HFLIP:
        augs.append(T.RandomFlip(prob=0.5, horizontal=True, vertical=False))
    if cfg.ASTRODET.AUG.VFLIP:
        augs.append(T.RandomFlip(prob=0.5, horizontal=False, vertical=True))
    if cfg.ASTRODET.AUG.ROT90:
        augs.append(RandomRot90())
    return augs


def build_astro_augmentations(cfg: CfgNode, is_train: bool) -> list[T.Augmentation]:
    """Resize as detectron2 does, then (training only) flips and quarter-turn rotations.

    Popp et al. (2024) used horizontal and vertical flips; rotations by multiples of 90 degrees are exact on a
    pixel grid and keep boxes tight, so they are on by default too (cfg.ASTRODET.AUG).
    """
    if not is_train:
        return [T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST, "choice")]
    resize = T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MAX_SIZE_TRAIN, cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING)
    return [resize, *sky_augmentations(cfg)]
