"""Two views of one sky image that a contrastive encoder should map to the same place.

Why these and no others: a galaxy's class does not depend on its orientation on the sky (any of the 8 rotations by
90 degrees and flips), on a small shift or rescale of the cutout, on the seeing (a Gaussian PSF-like blur) or on the
depth of the exposure (added Gaussian noise). Colour jitter, hue shifts, greyscale conversion and channel swaps,
the usual natural-image augmentations, are left out: each channel is a photometric band, and the ratios between
bands (colours) carry physics (star formation, redshift) that the encoder must keep. Every operation here treats
all bands alike, and works on float tensors of any band count.

Views are a function of the image and a seed (:meth:`SkyViews.views`): the same step of a resumed run draws the
same views as the uninterrupted run, whatever process or data-loader worker makes them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.transforms import v2


@dataclass(frozen=True)
class ViewSettings:
    """Strength of each augmentation.

    ``min_scale``: smallest crop, as a fraction of the image's area, before resizing back (shifts and rescales);
    ``max_aspect``: crops are squares stretched by at most this factor; ``blur_sigma``: range of the Gaussian blur
    in pixels, applied with probability ``blur_p``; ``noise``: the added noise's standard deviation is up to this
    fraction of each band's own standard deviation in the view.
    """

    size: int
    min_scale: float = 0.6
    max_aspect: float = 1.1
    blur_sigma: tuple[float, float] = (0.1, 1.5)
    blur_p: float = 0.5
    noise: float = 0.2

    def __post_init__(self) -> None:
        if self.size < 8:
            raise ValueError(f"views of {self.size} pixels are too small for an encoder (at least 8)")
        if not 0 < self.min_scale <= 1:
            raise ValueError(f"min_scale must be in (0, 1], got {self.min_scale}")


class RandomRot90:
    """Rotate ``(..., H, W)`` by a random multiple of 90 degrees (exact: no interpolation, no fill)."""

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        turns = int(torch.randint(0, 4, ()).item())
        return torch.rot90(image, turns, dims=(-2, -1))


class RelativeNoise:
    """Add Gaussian noise of a random strength up to ``fraction`` of each band's standard deviation, so that the same
    setting means the same change of depth for PNG pixels (0-255 scale) and normalised FITS bands."""

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if self.fraction <= 0:
            return image
        strength = torch.rand(()) * self.fraction
        sigma = image.std(dim=(-2, -1), keepdim=True) * strength
        return image + torch.randn_like(image) * sigma


def _blur_kernel(max_sigma: float) -> int:
    """An odd kernel covering +-3 sigma of the widest blur."""
    return 2 * max(1, round(3 * max_sigma)) + 1


class SkyViews:
    """The augmentation pipeline: crop-resize, rotation by 90 degrees, flip, PSF-like blur, noise."""

    def __init__(self, settings: ViewSettings) -> None:
        self.settings = settings
        aspect = (1 / settings.max_aspect, settings.max_aspect)
        self.transform = v2.Compose(
            [
                v2.RandomResizedCrop(settings.size, scale=(settings.min_scale, 1.0), ratio=aspect, antialias=True),
                RandomRot90(),
                v2.RandomHorizontalFlip(),  # with the rotations: all 8 symmetries of the square
                v2.RandomApply(
                    [v2.GaussianBlur(_blur_kernel(settings.blur_sigma[1]), sigma=settings.blur_sigma)],
                    p=settings.blur_p,
                ),
                RelativeNoise(settings.noise),
            ]
        )

    def views(self, image: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Two augmented views of ``(C, H, W)`` float ``image``, drawn from ``seed`` alone (the global random state
        is left as it was)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.transform(image), self.transform(image)
