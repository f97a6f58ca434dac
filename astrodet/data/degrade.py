"""Real-sky degradations of 8-bit cutouts: JPEG round trips and coarse pixels, as training augmentations.

Why: the detector trained on the simulator's smooth, lossless PNGs finds few real clumps (docs/real_sky.md). The real
cutouts it meets differ in two ways the simulator's own bytes need not change for:

- they are 8-bit JPEGs: Stripe 82, Galaxy Zoo 2 and the Perseus SDSS stamps all carry the standard IJG tables at
  quality 75 with 4:2:0 chroma subsampling (read from the files' quantisation tables), so training draws qualities
  around that and subsamples chroma the same way;
- at the PSF-matched scale many are crops of 23-100 px enlarged 2-9 times to the model's input: blocky, blurred
  coarse pixels rather than a smooth bicubic resample.

:func:`degrade_resolution` averages blocks of ``factor`` x ``factor`` pixels (Pillow's box filter: exact area
averaging, non-integer factors allowed) and enlarges the result back with a **bilinear** resample, because bilinear
is what the models' own test-time resize applies when they enlarge a small real crop (Detectron2's
``ResizeShortestEdge``: PIL bilinear; mmdet's ``Resize``: cv2 bilinear). :meth:`RealSkyDegradation.apply` with both
degradations compresses the coarse image before enlarging it, the order real stamps go through (imaged at coarse
pixels, saved as JPEG, enlarged by the model). Both are photometric: boxes never move. Images are RGB (or
greyscale) ``(H, W, C)`` uint8; callers holding BGR flip the channels first, since chroma subsampling is not
symmetric in the channels. Framework-free: both adapters call this module, so they produce the same pixels.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image

JPEG_QUALITY_LIMITS = (1, 100)  # Pillow's quality scale (IJG): 1 worst, 100 least lossy


class RandomSource(Protocol):
    """Anything with ``random() -> float`` in [0, 1): numpy's ``Generator``, ``RandomState`` or the ``np.random``
    module itself (the adapters pass the module: the frameworks seed its global generator per worker)."""

    def random(self) -> float: ...


def check_uint8_image(image: np.ndarray, what: str = "image") -> None:
    """Refuse anything but an ``(H, W, C)`` uint8 array: float FITS images have no JPEG or 8-bit pixel grid."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        dtype = image.dtype if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(
            f"{what}: real-sky degradations act on 8-bit (uint8) PNG/JPEG pixels, got {dtype}; "
            "float images (FITS bands, classification cutouts) have no JPEG form: turn these augmentations off"
        )
    if image.ndim != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{what}: expected an (H, W, C) image, got shape {image.shape}")


def jpeg_reencode(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode ``image`` (RGB or greyscale uint8, ``(H, W, 3|1)``) as a JPEG of ``quality`` in memory and decode it.

    Chroma is subsampled 4:2:0, as in the real SDSS stamps; the result has the input's shape and dtype.
    """
    check_uint8_image(image)
    low, high = JPEG_QUALITY_LIMITS
    if not low <= int(quality) <= high or int(quality) != quality:
        raise ValueError(f"jpeg quality must be an integer in [{low}, {high}], got {quality}")
    channels = image.shape[2]
    if channels not in (1, 3):
        raise ValueError(f"JPEG holds 1 (grey) or 3 (RGB) channels, the image has {channels}")
    picture = Image.fromarray(image[:, :, 0] if channels == 1 else image, mode="L" if channels == 1 else "RGB")
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=int(quality), subsampling="4:2:0")
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        out = np.asarray(decoded, dtype=np.uint8)
    return np.ascontiguousarray(out.reshape(image.shape))


def _check_factor(factor: float) -> None:
    if not np.isfinite(factor) or factor < 1.0:
        raise ValueError(f"degrade factor must be a finite number >= 1, got {factor}")


def _coarse_size(height: int, width: int, factor: float) -> tuple[int, int]:
    """``(width, height)`` of the coarse grid (Pillow's order), at least one pixel each way."""
    return max(1, round(width / factor)), max(1, round(height / factor))


def _resize_channels(image: np.ndarray, size: tuple[int, int], resample: Image.Resampling) -> np.ndarray:
    """Resize each channel as its own 8-bit image (any channel count; RGB resamples channel by channel too)."""
    planes = [np.asarray(Image.fromarray(image[:, :, c]).resize(size, resample)) for c in range(image.shape[2])]
    return np.ascontiguousarray(np.stack(planes, axis=2), dtype=np.uint8)


def downsample_area(image: np.ndarray, factor: float) -> np.ndarray:
    """Average ``factor`` x ``factor`` blocks (box filter: exact area weights for non-integer factors too)."""
    check_uint8_image(image)
    _check_factor(factor)
    return _resize_channels(image, _coarse_size(image.shape[0], image.shape[1], factor), Image.Resampling.BOX)


def upsample_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Enlarge back to ``height`` x ``width`` bilinearly, as the models' own resize enlarges a small real crop."""
    return _resize_channels(image, (width, height), Image.Resampling.BILINEAR)


def degrade_resolution(image: np.ndarray, factor: float) -> np.ndarray:
    """The image as if imaged with pixels ``factor`` times coarser, then enlarged back: same shape and dtype.

    ``factor`` 1 returns the pixels unchanged.
    """
    check_uint8_image(image)
    _check_factor(factor)
    if factor == 1.0:
        return image.copy()
    height, width = image.shape[:2]
    return upsample_bilinear(downsample_area(image, factor), height, width)


@dataclass(frozen=True)
class DegradationParams:
    """One draw: the JPEG quality and the pixel coarsening factor applied, ``None`` for a step not applied."""

    jpeg_quality: int | None = None
    blur_factor: float | None = None

    @property
    def is_identity(self) -> bool:
        return self.jpeg_quality is None and self.blur_factor is None


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value}")


def _check_range(name: str, pair: tuple[float, float], minimum: float, maximum: float) -> None:
    if len(pair) != 2:
        raise ValueError(f"{name} must be a (low, high) pair, got {pair!r}")
    low, high = pair
    if not minimum <= low <= high <= maximum:
        raise ValueError(f"{name} must satisfy {minimum} <= low <= high <= {maximum}, got ({low}, {high})")


@dataclass(frozen=True)
class RealSkyDegradation:
    """Draw and apply the real-sky degradations: a JPEG round trip with probability ``jpeg_prob`` at a quality
    uniform over the integers of ``jpeg_quality`` (inclusive), coarser pixels with probability ``blur_prob`` by a
    factor uniform in ``blur_factor``. Off (both probabilities 0) by default."""

    jpeg_prob: float = 0.0
    jpeg_quality: tuple[int, int] = (60, 95)
    blur_prob: float = 0.0
    blur_factor: tuple[float, float] = (1.0, 4.0)

    def __post_init__(self) -> None:
        for name in ("jpeg_quality", "blur_factor"):
            if not isinstance(getattr(self, name), (tuple, list)):
                raise ValueError(f"{name} must be a (low, high) pair, got {getattr(self, name)!r}")
        # Config files give lists; store tuples so the frozen instance stays hashable and comparable.
        object.__setattr__(self, "jpeg_quality", tuple(self.jpeg_quality))
        object.__setattr__(self, "blur_factor", tuple(float(f) for f in self.blur_factor))
        _check_probability("jpeg_prob", self.jpeg_prob)
        _check_probability("blur_prob", self.blur_prob)
        _check_range("jpeg_quality", self.jpeg_quality, *JPEG_QUALITY_LIMITS)
        if any(int(q) != q for q in self.jpeg_quality):
            raise ValueError(f"jpeg_quality must be integers, got {self.jpeg_quality}")
        _check_range("blur_factor", self.blur_factor, 1.0, float("inf"))

    @property
    def enabled(self) -> bool:
        return self.jpeg_prob > 0.0 or self.blur_prob > 0.0

    def draw(self, rng: RandomSource) -> DegradationParams:
        """One draw (four ``rng.random()`` calls whatever the outcome, so later draws do not depend on it)."""
        use_jpeg, quality_u, use_blur, factor_u = (float(rng.random()) for _ in range(4))
        low_q, high_q = (int(q) for q in self.jpeg_quality)
        quality = min(high_q, low_q + int(quality_u * (high_q - low_q + 1)))
        low_f, high_f = self.blur_factor
        factor = low_f + factor_u * (high_f - low_f)
        return DegradationParams(
            jpeg_quality=quality if use_jpeg < self.jpeg_prob else None,
            blur_factor=factor if use_blur < self.blur_prob else None,
        )

    @staticmethod
    def apply(image: np.ndarray, params: DegradationParams) -> np.ndarray:
        """``image`` (RGB/grey uint8) degraded by ``params``: coarsen, JPEG-compress the coarse image, enlarge back."""
        check_uint8_image(image)
        if params.is_identity:
            return image
        height, width = image.shape[:2]
        coarse = image if params.blur_factor is None else downsample_area(image, params.blur_factor)
        if params.jpeg_quality is not None:
            coarse = jpeg_reencode(coarse, params.jpeg_quality)
        if coarse.shape[:2] == (height, width):
            return coarse
        return upsample_bilinear(coarse, height, width)
