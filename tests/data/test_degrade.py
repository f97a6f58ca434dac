"""Real-sky degradations (astrodet.data.degrade): JPEG round trips, coarse pixels, their parameter draws."""

from __future__ import annotations

import numpy as np
import pytest

from astrodet.data.degrade import DegradationParams, RealSkyDegradation, degrade_resolution, jpeg_reencode


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def galaxy_picture(size: int = 96) -> np.ndarray:
    """A smooth blob with a few sharp knots and noise: the kind of picture the augmentations meet."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[:size, :size] - size / 2
    disc = 200 * np.exp(-(x**2 + y**2) / (2 * (size / 6) ** 2))
    image = np.stack([disc, 0.8 * disc, 0.6 * disc], axis=2)
    for _ in range(6):
        cy, cx = rng.integers(size // 4, 3 * size // 4, 2)
        image[cy - 1 : cy + 2, cx - 1 : cx + 2, 2] += 120  # blue knots
    image += rng.normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _checkerboard(size: int = 64) -> np.ndarray:
    board = ((np.indices((size, size)).sum(axis=0) % 2) * 255).astype(np.uint8)
    return np.repeat(board[:, :, None], 3, axis=2)


def test_jpeg_changes_pixels_keeps_shape_and_dtype_and_loses_more_at_lower_quality() -> None:
    image = galaxy_picture()
    high, low = jpeg_reencode(image, 95), jpeg_reencode(image, 60)
    for out in (high, low):
        assert out.shape == image.shape and out.dtype == np.uint8
        assert not np.array_equal(out, image)
    assert _psnr(image, high) > 34  # close at quality 95 (4:2:0 chroma subsampling caps RGB near 36 dB)
    assert _psnr(image, low) < _psnr(image, high) - 2  # further at 60
    grey = image[:, :, :1]  # one channel: no chroma step, the quality alone sets the loss
    assert _psnr(grey, jpeg_reencode(grey, 95)) > 40
    assert _psnr(grey, jpeg_reencode(grey, 60)) < _psnr(grey, jpeg_reencode(grey, 95)) - 4


def test_jpeg_keeps_the_rgb_order_and_greyscale() -> None:
    red = np.zeros((32, 32, 3), np.uint8)
    red[..., 0] = 220
    out = jpeg_reencode(red, 60).astype(int)
    assert out[..., 0].min() > 200 and out[..., 1:].max() < 20  # still red, not blue (a BGR mix-up)
    grey = galaxy_picture()[:, :, :1]
    assert jpeg_reencode(grey, 80).shape == grey.shape
    # The codec is not symmetric in the channels (luma weights, chroma subsampling): BGR handed over as RGB comes
    # back different, which is why the adapters flip BGR to RGB around it.
    assert not np.array_equal(jpeg_reencode(red[:, :, ::-1].copy(), 60), out[:, :, ::-1])


def test_degrade_factor_one_is_identity_and_larger_factors_smooth_more() -> None:
    image = galaxy_picture()
    assert np.array_equal(degrade_resolution(image, 1.0), image)
    board = _checkerboard()
    contrast = [float(degrade_resolution(board, f).astype(float).std()) for f in (1.0, 2.0, 3.5)]
    assert contrast[0] > 120 and contrast[1] < 10 and contrast[2] < 10  # 2x2 blocks of a checkerboard average out
    smooth = degrade_resolution(image, 2.5)
    assert smooth.shape == image.shape and smooth.dtype == np.uint8
    assert np.abs(np.diff(smooth.astype(int), axis=1)).mean() < np.abs(np.diff(image.astype(int), axis=1)).mean()
    assert abs(float(smooth.mean()) - float(image.mean())) < 2  # area averaging keeps the flux


def test_draws_are_reproducible_and_within_range() -> None:
    degradation = RealSkyDegradation(jpeg_prob=0.5, jpeg_quality=(60, 95), blur_prob=0.3, blur_factor=(1.5, 4.0))
    first = [degradation.draw(np.random.default_rng(7)) for _ in range(3)]
    assert first[0] == first[1] == first[2]
    draws = [degradation.draw(rng) for rng in [np.random.default_rng(11)] for _ in range(2000)]
    qualities = [d.jpeg_quality for d in draws if d.jpeg_quality is not None]
    factors = [d.blur_factor for d in draws if d.blur_factor is not None]
    assert 0.45 < len(qualities) / len(draws) < 0.55 and 0.25 < len(factors) / len(draws) < 0.35
    assert set(qualities) == set(range(60, 96))  # every integer quality, both ends included
    assert 1.5 <= min(factors) and max(factors) <= 4.0 and max(factors) - min(factors) > 2.3
    off = RealSkyDegradation()
    assert not off.enabled and off.draw(np.random.default_rng(0)).is_identity


def test_apply_with_both_steps_and_with_none() -> None:
    image = galaxy_picture()
    assert RealSkyDegradation.apply(image, DegradationParams()) is image
    both = RealSkyDegradation.apply(image, DegradationParams(jpeg_quality=70, blur_factor=3.0))
    assert both.shape == image.shape and both.dtype == np.uint8
    assert _psnr(image, both) < _psnr(image, degrade_resolution(image, 3.0)) + 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(jpeg_prob=1.5), "jpeg_prob must be a probability"),
        (dict(blur_prob=-0.1), "blur_prob must be a probability"),
        (dict(jpeg_quality=(95, 60)), "jpeg_quality must satisfy"),
        (dict(jpeg_quality=(0, 60)), "jpeg_quality must satisfy"),
        (dict(jpeg_quality=(60.5, 90)), "jpeg_quality must be integers"),
        (dict(jpeg_quality=(60,)), "jpeg_quality must be a \\(low, high\\) pair"),
        (dict(blur_factor=(0.5, 2.0)), "blur_factor must satisfy"),
        (dict(jpeg_quality=80), "jpeg_quality must be a \\(low, high\\) pair, got 80"),
    ],
)
def test_bad_parameters_are_one_line_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        RealSkyDegradation(**kwargs)
    assert "\n" not in str(error.value)


def test_bad_calls_are_one_line_errors() -> None:
    image = galaxy_picture()
    for call, message in [
        (lambda: jpeg_reencode(image, 0), "jpeg quality must be an integer"),
        (lambda: degrade_resolution(image, 0.5), "degrade factor must be a finite number >= 1"),
        (lambda: jpeg_reencode(np.zeros((8, 8, 4), np.uint8), 80), "JPEG holds 1 \\(grey\\) or 3 \\(RGB\\)"),
        (lambda: jpeg_reencode(np.zeros((8, 8), np.uint8), 80), "expected an \\(H, W, C\\) image"),
    ]:
        with pytest.raises(ValueError, match=message) as error:
            call()
        assert "\n" not in str(error.value)


def test_a_float_image_is_refused_not_skipped() -> None:
    fits_like = galaxy_picture().astype(np.float32) / 255
    for call in (
        lambda: jpeg_reencode(fits_like, 80),
        lambda: degrade_resolution(fits_like, 2.0),
        lambda: RealSkyDegradation.apply(fits_like, DegradationParams()),
    ):
        with pytest.raises(ValueError, match=r"8-bit \(uint8\).*got float32"):
            call()
