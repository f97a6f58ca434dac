"""How visible a labelled clump is in the picture a detector sees: display-space statistics around its position.

Why: a detector trained on simulated colour images learns which brightenings carry a label. Whether the simulated
labels look like the real ones is a question about the pictures (8-bit colour images after each survey's own
stretch, at the model's scale), not about fluxes, which the real JPEGs do not give. These statistics are measured
the same way on real and simulated images, so a simulator's labelling floors, clump sizes and display stretch can be
set from real images (``tools/clump_visibility.py``, docs/real_sky.md).

All lengths are in units of the PSF FWHM ``w`` in picture pixels, on the luminance (mean of R, G, B in [0, 1]):

- ``step``: mean luminance within 0.35 w of the position minus the median of the annulus 1.0-1.6 w (the disc there);
- ``rel``: ``step`` over that disc level;
- ``sn``: ``step`` over the annulus's robust scatter (1.4826 MAD): noise and disc structure together;
- ``ext``: the ring 0.5-0.8 w above the disc level, over ``step``: ~0.3 for a point source, toward 1 for broad ones;
- ``disc``: the disc level itself (how bright the survey's stretch shows the disc).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from astrodet.data.wholeimage import centre_crop_box
from astrodet.inference.scale_match import plan_crop

STATISTICS = ("step", "rel", "sn", "ext", "disc")
QUANTILES = (10, 25, 50, 75, 90)
CORE, RING, ANNULUS = 0.35, (0.5, 0.8), (1.0, 1.6)  # radii in PSF FWHMs


@dataclass(frozen=True)
class ModelView:
    """A real cutout as a detector sees it: the centre crop at the training PSF scale, resized to the model input."""

    picture: np.ndarray  # (input_size, input_size, 3) uint8
    left: int  # the crop's corner in the cutout's pixels
    top: int
    zoom: float  # model pixels per cutout pixel
    psf_px: float  # PSF FWHM in model pixels

    def position(self, x: float, y: float) -> tuple[float, float]:
        """A cutout position (continuous pixels) in the picture."""
        return (x - self.left) * self.zoom, (y - self.top) * self.zoom


def model_view(
    image: Image.Image, pixel_scale: float, psf_fwhm: float, target_psf_px: float, input_size: int
) -> ModelView:
    """The crop ``astrodet predict --match-psf`` hands the model (:func:`astrodet.inference.scale_match.plan_crop`),
    resized bilinearly to ``input_size`` as the frameworks' test-time resize does."""
    rgb = image.convert("RGB")
    plan = plan_crop(rgb.width, rgb.height, pixel_scale, psf_fwhm, target_psf_px, input_size)
    left, top, right, bottom = centre_crop_box(rgb.width, rgb.height, plan.side)
    picture = np.asarray(rgb.crop((left, top, right, bottom)).resize((input_size, input_size), Image.BILINEAR))
    zoom = input_size / plan.side
    return ModelView(picture, left, top, zoom, psf_fwhm / pixel_scale * zoom)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Mean of the colour channels of an 8-bit ``(H, W, 3)`` picture, in [0, 1]."""
    return np.asarray(rgb, dtype=float)[..., :3].mean(axis=2) / 255.0


def clump_statistics(picture: np.ndarray, x: float, y: float, psf_px: float) -> dict[str, float] | None:
    """The statistics at continuous picture position (``x``, ``y``) (pixel corners at integers), PSF FWHM ``psf_px``;
    None where the core or the annulus falls (almost) outside the picture."""
    if psf_px <= 0:
        raise ValueError(f"psf_px: expected a positive PSF FWHM in pixels, got {psf_px!r}")
    rows, cols = np.mgrid[0 : picture.shape[0], 0 : picture.shape[1]]
    radius = np.hypot(cols + 0.5 - x, rows + 0.5 - y) / psf_px
    core = picture[radius < CORE]
    ring = picture[(radius >= RING[0]) & (radius < RING[1])]
    annulus = picture[(radius >= ANNULUS[0]) & (radius < ANNULUS[1])]
    if core.size < 3 or ring.size < 3 or annulus.size < 10:
        return None
    disc = float(np.median(annulus))
    scatter = float(1.4826 * np.median(np.abs(annulus - disc)))
    step = float(core.mean()) - disc
    return {
        "step": step,
        "rel": step / max(disc, 1e-3),
        "sn": step / max(scatter, 1e-4),
        "ext": (float(ring.mean()) - disc) / step if step > 0 else float("nan"),
        "disc": disc,
    }


def quantile_table(rows: Iterable[dict[str, float]], quantiles: Sequence[int] = QUANTILES) -> dict[str, list[float]]:
    """Per statistic, its ``quantiles`` (percent) over ``rows`` (non-finite values, e.g. ``ext`` of a dip, left out)."""
    rows = list(rows)
    table = {}
    for name in STATISTICS:
        values = np.array([row[name] for row in rows], dtype=float)
        values = values[np.isfinite(values)]
        table[name] = [float(np.percentile(values, q)) for q in quantiles] if values.size else []
    return table


def standing_out(rows: Sequence[dict[str, float]], null: Sequence[dict[str, float]], level: float = 90.0) -> list:
    """The rows whose ``step`` exceeds the ``level`` percentile of ``null`` (the same statistic at positions without
    a catalogued clump): the catalogued clumps a volunteer or a model could see at all."""
    if not null:
        raise ValueError("standing_out: no null positions to compare with")
    cut = float(np.percentile([row["step"] for row in null], level))
    return [row for row in rows if row["step"] > cut]
