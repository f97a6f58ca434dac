"""Training augmentations for sky images: flips and exact 90-degree rotations (the sky has no up or left), and the
real-sky degradations (JPEG round trips, coarse pixels: :mod:`astrodet.data.degrade`) that ``ASTRODET.AUG`` can add.
"""

from __future__ import annotations

import numpy as np
from detectron2.config import CfgNode
from detectron2.data import transforms as T

from astrodet.data.degrade import DegradationParams, RealSkyDegradation, check_uint8_image


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


class RealSkyTransform(T.Transform):
    """Apply one draw of :class:`RealSkyDegradation` to the pixels; photometric, so coordinates stay as they are.

    ``image_format`` is the mapper's ``INPUT.FORMAT``: BGR images are flipped to RGB around the JPEG step, whose
    chroma subsampling treats the channels differently.
    """

    def __init__(self, params: DegradationParams, image_format: str) -> None:
        super().__init__()
        self.params = params
        self.image_format = image_format

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        check_uint8_image(img, f"INPUT.FORMAT {self.image_format} image")
        if self.image_format == "BGR":
            return np.ascontiguousarray(RealSkyDegradation.apply(img[:, :, ::-1], self.params)[:, :, ::-1])
        return RealSkyDegradation.apply(img, self.params)

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        return coords

    def apply_segmentation(self, segmentation: np.ndarray) -> np.ndarray:
        return segmentation

    def inverse(self) -> T.Transform:
        return T.NoOpTransform()


class RandomRealSky(T.Augmentation):
    """Draw JPEG quality and pixel coarsening per image (``ASTRODET.AUG.JPEG_*`` / ``DEGRADE_*``)."""

    FORMATS = ("RGB", "BGR", "L")  # 8-bit formats whose channels the JPEG step can order

    def __init__(self, degradation: RealSkyDegradation, image_format: str) -> None:
        super().__init__()
        if image_format not in self.FORMATS:
            raise ValueError(f"INPUT.FORMAT {image_format!r}: the real-sky augmentations read {self.FORMATS}")
        self.degradation = degradation
        self.image_format = image_format

    def get_transform(self, image: np.ndarray) -> T.Transform:
        check_uint8_image(image, f"INPUT.FORMAT {self.image_format} image")  # a float image is an error, not a skip
        # detectron2 seeds numpy's global generator per data-loader worker, as for RandomRot90.
        params = self.degradation.draw(np.random)
        if params.is_identity:
            return T.NoOpTransform()
        return RealSkyTransform(params, self.image_format)


def real_sky_degradation(cfg: CfgNode) -> RealSkyDegradation:
    """``ASTRODET.AUG``'s JPEG and coarse-pixel settings (validated: a bad value is a one-line error)."""
    aug = cfg.ASTRODET.AUG
    return RealSkyDegradation(
        jpeg_prob=float(aug.JPEG_PROB),
        jpeg_quality=tuple(aug.JPEG_QUALITY),
        blur_prob=float(aug.DEGRADE_PROB),
        blur_factor=tuple(aug.DEGRADE_FACTOR),
    )


def sky_augmentations(cfg: CfgNode) -> list[T.Augmentation]:
    """The training augmentations ``cfg.ASTRODET.AUG`` switches on, shared by detection and classification:
    orientation, then (when their probabilities are above 0) the real-sky degradations of 8-bit images."""
    augs: list[T.Augmentation] = []
    if cfg.ASTRODET.AUG.HFLIP:
        augs.append(T.RandomFlip(prob=0.5, horizontal=True, vertical=False))
    if cfg.ASTRODET.AUG.VFLIP:
        augs.append(T.RandomFlip(prob=0.5, horizontal=False, vertical=True))
    if cfg.ASTRODET.AUG.ROT90:
        augs.append(RandomRot90())
    degradation = real_sky_degradation(cfg)
    if degradation.enabled:
        if cfg.ASTRODET.IMAGE_RECIPE.KIND == "float":
            raise ValueError(
                "ASTRODET.AUG.JPEG_PROB/DEGRADE_PROB act on 8-bit pictures; IMAGE_RECIPE.KIND 'float' reads FITS"
            )
        augs.append(RandomRealSky(degradation, cfg.INPUT.FORMAT))
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
