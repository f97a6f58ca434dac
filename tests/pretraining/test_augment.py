"""The views pretraining learns from: band order kept, sky-like changes only, a function of the seed alone."""

from __future__ import annotations

import pytest
import torch

from astrodet.pretraining.augment import RandomRot90, SkyViews, ViewSettings

BAND_LEVELS = torch.tensor([1.0, 2.0, 3.0, 5.0, 8.0])


def _constant_bands(size: int = 48) -> torch.Tensor:
    """Five bands, each one constant: any mixing or reordering of bands changes some pixel's value."""
    return BAND_LEVELS.view(-1, 1, 1).expand(-1, size, size).clone()


@pytest.mark.parametrize("seed", range(8))
def test_views_keep_every_band_in_its_channel(seed: int) -> None:
    views = SkyViews(ViewSettings(size=32, blur_p=1.0, noise=0.5))
    for view in views.views(_constant_bands(), seed):
        assert view.shape == (5, 32, 32)
        expected = BAND_LEVELS.view(-1, 1, 1).expand_as(view)
        assert torch.allclose(view, expected, atol=1e-4), view.mean(dim=(1, 2))


def test_views_of_a_structured_image_keep_each_band_s_own_picture() -> None:
    """Bands holding different pictures (a blob in band 0, a bar in band 1, empty band 2) stay apart."""
    image = torch.zeros(3, 48, 48)
    image[0, 20:28, 20:28] = 10.0
    image[1, 22:26, 5:43] = 4.0
    view0, view1 = SkyViews(ViewSettings(size=48, noise=0.0)).views(image, 7)
    for view in (view0, view1):
        assert view[2].abs().max() == 0  # nothing leaks into the empty band
        assert view[0].max() > 5 and view[1].max() <= 4.0 + 1e-4  # the blob stays in band 0, the bar in band 1


def test_views_are_drawn_from_the_seed_alone() -> None:
    image = torch.rand(4, 40, 40)
    views = SkyViews(ViewSettings(size=32))
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = views.views(image, 5)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's random state is left as it was
    torch.manual_seed(999)
    again = views.views(image, 5)
    other = views.views(image, 6)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])
    assert not torch.equal(first[0], first[1])  # the two views of one image differ


def test_rotations_by_90_degrees_cover_all_four_turns_exactly() -> None:
    image = torch.arange(16.0).view(1, 4, 4)
    turns = {RandomRot90()(image).flatten().tolist().__repr__() for _ in range(200)}
    expected = {torch.rot90(image, k, dims=(-2, -1)).flatten().tolist().__repr__() for k in range(4)}
    assert turns == expected


def test_view_settings_refuse_tiny_views() -> None:
    with pytest.raises(ValueError, match="too small"):
        ViewSettings(size=4)
