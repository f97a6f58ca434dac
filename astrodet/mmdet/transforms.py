"""astrodet's entries in mmdet's TRANSFORMS: exact quarter turns for detection, the cutout pipeline for classification.

``RandomRot90``: the sky has no up or left, so training draws from all eight flips and quarter turns of a cutout, as
the Detectron2 side does (``astrodet.detectron2.augment``). mmdet 3.3 has no exact 90-degree rotation: ``Rotate``
interpolates about the pixel-centre ((w - 1) / 2), which puts boxes off by one pixel and crops non-square images, and
``RandomFlip``'s ``'diagonal'`` is a 180-degree turn (both flips), not a 90-degree one. Pipelines therefore use
mmdet's own ``RandomFlip(prob=[0.25, 0.25, 0.25], direction=['horizontal', 'vertical', 'diagonal'])`` (the same
distribution as Detectron2's two independent 0.5 flips) followed by this transform; together they are uniform over
the eight symmetries of the square.

``RealSkyDegrade``: the real-sky degradations of :mod:`astrodet.data.degrade` (JPEG round trips, coarse pixels),
the same core calls as Detectron2's ``ASTRODET.AUG.JPEG_*`` / ``DEGRADE_*``; photometric, boxes untouched.

Classification (``AstroImageClassifier``): ``LoadCutout`` (PNG/JPEG/.npy/FITS), ``CutoutResize`` (centre crop +
square resize, the geometry the Detectron2 mapper applies), ``CutoutFlipRot`` (flips and quarter turns),
``PackClsInputs``.

Multi-band float detection: ``LoadFitsImage`` reads a record's FITS cube, per-band FITS files or ``.npy`` array and
normalises it by the config's image recipe through :func:`astrodet.data.normalise.read_record`, the function
Detectron2's ``FitsDatasetMapper`` and ``astrodet predict`` call; mmdet's ``RandomFlip`` and ``RandomRot90`` then
act on every band of the (H, W, C) float32 ``img``.
"""

from __future__ import annotations

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmdet.registry import TRANSFORMS
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import BaseDataElement

from astrodet.data.degrade import DegradationParams, RealSkyDegradation, check_uint8_image
from astrodet.data.normalise import read_record
from astrodet.data.wholeimage import crop_and_resize, load_cutout
from astrodet.inference.model import ImageRecipe


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


@TRANSFORMS.register_module()
class RealSkyDegrade(BaseTransform):
    """JPEG round trip and coarser pixels, each with its probability: real SDSS cutouts are 8-bit JPEGs and often
    coarse pixels enlarged (docs/real_sky.md), the simulated PNGs neither.

    Required keys: ``img`` ((H, W, C) uint8; a float image is refused). Modified key: ``img``. Added key:
    ``real_sky`` (the :class:`DegradationParams` drawn). ``channel_order`` is the loader's: ``'bgr'`` for mmcv's
    ``LoadImageFromFile`` default, so the JPEG step (whose chroma subsampling is not channel-symmetric) sees RGB.

    Args:
        jpeg_prob, jpeg_quality, blur_prob, blur_factor: as :class:`astrodet.data.degrade.RealSkyDegradation`.
        channel_order: ``'bgr'`` or ``'rgb'`` (``'rgb'`` also covers one-channel greyscale images).
    """

    def __init__(
        self,
        jpeg_prob: float = 0.0,
        jpeg_quality: tuple[int, int] = (60, 95),
        blur_prob: float = 0.0,
        blur_factor: tuple[float, float] = (1.0, 4.0),
        channel_order: str = "bgr",
    ) -> None:
        if channel_order not in ("bgr", "rgb"):
            raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
        self.degradation = RealSkyDegradation(jpeg_prob, tuple(jpeg_quality), blur_prob, tuple(blur_factor))
        self.channel_order = channel_order

    @cache_randomness
    def _draw(self) -> DegradationParams:
        # mmengine seeds numpy's global generator per data-loader worker, as for RandomRot90.
        return self.degradation.draw(np.random)

    def transform(self, results: dict) -> dict:
        image = results["img"]
        check_uint8_image(image, f"{results.get('img_path', 'image')} (RealSkyDegrade)")
        params = self._draw()
        results["real_sky"] = params
        if self.channel_order == "bgr":
            degraded = RealSkyDegradation.apply(image[:, :, ::-1], params)[:, :, ::-1]
        else:
            degraded = RealSkyDegradation.apply(image, params)
        results["img"] = np.ascontiguousarray(degraded)
        return results

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.degradation}, channel_order={self.channel_order!r})"


@TRANSFORMS.register_module()
class LoadCutout(BaseTransform):
    """``results['img']`` = the cutout as (H, W, C) float32 in the file's units (see ``wholeimage.load_cutout``)."""

    def __init__(self, channels: int | None = None) -> None:
        self.channels = channels

    def transform(self, results: dict) -> dict:
        image = load_cutout(results["img_path"])
        if self.channels is not None and image.shape[2] != self.channels:
            if image.shape[2] != 1:
                raise ValueError(f"{results['img_path']}: {image.shape[2]} bands, the config expects {self.channels}")
            image = np.repeat(image, self.channels, axis=2)
        results["img"] = image
        results["img_shape"] = results["ori_shape"] = image.shape[:2]
        return results


@TRANSFORMS.register_module()
class LoadFitsImage(BaseTransform):
    """``results['img']`` = the record's bands as the model input of ``recipe`` ((H, W, C) float32, array frame).

    Required keys: ``img_path`` (and ``band_files`` / ``bands`` when the record has them). Added keys: ``img``,
    ``img_shape``, ``ori_shape``. ``recipe`` is the config's ``image_recipe`` dict (a float recipe).
    """

    def __init__(self, recipe: dict) -> None:
        self.recipe = ImageRecipe.from_dict(dict(recipe))
        if self.recipe.kind != "float":
            raise ValueError(f"LoadFitsImage reads float recipes; got kind {self.recipe.kind!r}")

    def transform(self, results: dict) -> dict:
        image = read_record(results["img_path"], self.recipe, results.get("band_files"), results.get("bands"))
        results["img"] = image
        results["img_shape"] = results["ori_shape"] = image.shape[:2]
        return results

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(bands={self.recipe.bands}, stretch={self.recipe.stretch!r})"


@TRANSFORMS.register_module()
class CutoutResize(BaseTransform):
    """Central crop (0 = none) then a square resize to ``size``: Detectron2's ClassificationMapper geometry."""

    def __init__(self, size: int, crop: int = 0) -> None:
        self.size = int(size)
        self.crop = int(crop)

    def transform(self, results: dict) -> dict:
        results["img"] = crop_and_resize(results["img"], self.crop, self.size)
        results["img_shape"] = results["img"].shape[:2]
        return results


@TRANSFORMS.register_module()
class CutoutFlipRot(BaseTransform):
    """Independent horizontal / vertical flips (p = 0.5 each) and a uniform quarter turn: the sky's symmetries."""

    def __init__(self, hflip: bool = True, vflip: bool = True, rot90: bool = True) -> None:
        self.hflip, self.vflip, self.rot90 = hflip, vflip, rot90

    def transform(self, results: dict) -> dict:
        image = results["img"]
        # mmengine seeds numpy's global generator per worker, as mmcv's own random transforms rely on
        if self.hflip and np.random.rand() < 0.5:  # noqa: NPY002
            image = image[:, ::-1]
        if self.vflip and np.random.rand() < 0.5:  # noqa: NPY002
            image = image[::-1]
        if self.rot90:
            image = np.rot90(image, int(np.random.randint(4)))  # noqa: NPY002
        results["img"] = np.ascontiguousarray(image)
        return results


@TRANSFORMS.register_module()
class PackClsInputs(BaseTransform):
    """``{'inputs': (C, H, W) float tensor, 'data_samples': BaseDataElement(gt_label, vote_fractions, img_id)}``."""

    def transform(self, results: dict) -> dict:
        image = np.ascontiguousarray(results["img"].transpose(2, 0, 1))
        sample = BaseDataElement(metainfo={"img_id": results.get("img_id"), "img_path": results.get("img_path")})
        sample.gt_label = torch.tensor(int(results["gt_label"]))
        if results.get("vote_fractions") is not None:
            sample.vote_fractions = torch.tensor(results["vote_fractions"], dtype=torch.float32)
        return {"inputs": torch.from_numpy(image), "data_samples": sample}
