"""Scale matching: crop a real cutout so that its PSF spans as many model-input pixels as the training images' did.

Why: a detector trained on the simulated Clump Scout set learned clumps as PSF-sized blobs of a certain size in the
pixels it sees (the 200 px training crop, fed to the model unresized). A real cutout at another pixel scale or seeing
shows the same clump at another size. The model resizes whatever it gets to its input side, so choosing the central
crop side ``N`` sets the scale: a PSF of FWHM ``w`` arcsec at ``s`` arcsec/px spans ``w / s * input / N`` input
pixels, and ``N = w / s * input / target`` makes that the training set's median (``target``, measured on the
training split alone, never tuned on real images). Where ``N`` exceeds the image, the whole image is used and the
PSF stays larger than in training (:attr:`CropPlan.whole_image` says so).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from astropy.table import Table

from astrodet.errors import AstrodetInputError

MIN_CROP_SIDE = 16  # px: the smallest window ``astrodet predict --crop`` accepts; a smaller crop holds no galaxy
DEFAULT_TRAINING_SET = "default"  # the named dataset the main job trains on (astrodet.data.catalogue)


class CropTooSmall(ValueError):
    """The matched crop would be under :data:`MIN_CROP_SIDE` px: the image is far coarser than the training set's."""


@dataclass(frozen=True)
class CropPlan:
    """The central square to hand the model: ``side`` px of the input image (its shorter side when
    ``whole_image``), and the PSF FWHM in model-input pixels after the model resizes it to ``input_size``."""

    side: int
    whole_image: bool
    psf_input_px: float


def _positive(value: float, what: str) -> float:
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise AstrodetInputError(f"{what}: expected a finite number > 0, got {value!r}")
    return number


def matched_side(pixel_scale: float, psf_fwhm: float, target_psf_px: float, input_size: int) -> float:
    """Crop side (px of the input image) whose resize to ``input_size`` makes the PSF ``target_psf_px`` wide."""
    psf_px = _positive(psf_fwhm, "psf_fwhm") / _positive(pixel_scale, "pixel_scale")
    return psf_px * _positive(input_size, "input_size") / _positive(target_psf_px, "training PSF FWHM (px)")


def plan_crop(
    width: int, height: int, pixel_scale: float, psf_fwhm: float, target_psf_px: float, input_size: int
) -> CropPlan:
    """The crop of a ``width`` x ``height`` image that matches the training PSF size; the whole image when the
    matched side exceeds its shorter side. Raises :class:`CropTooSmall` under :data:`MIN_CROP_SIDE` px."""
    exact = matched_side(pixel_scale, psf_fwhm, target_psf_px, input_size)
    side, shorter = round(exact), min(int(width), int(height))
    psf_px = psf_fwhm / pixel_scale
    if side >= shorter:
        return CropPlan(shorter, True, psf_px * input_size / shorter)
    if side < MIN_CROP_SIDE:
        raise CropTooSmall(
            f"the PSF ({psf_fwhm:g} arcsec at {pixel_scale:g} arcsec/px = {psf_px:.2f} px) needs a {exact:.1f} px "
            f"crop, under {MIN_CROP_SIDE} px: the image is too coarse for this model"
        )
    return CropPlan(side, False, psf_px * input_size / side)


def training_psf_px(galaxies_csv: str | Path, train_coco: str | Path, input_size: int) -> float:
    """Median PSF FWHM, in model-input pixels, of the images of a training split: ``psf_fwhm_arcsec /
    pixel_scale`` of each galaxy (the simulator's galaxies.csv) times ``input_size`` over the image's shorter side
    (the model's shortest-edge resize). Only the split's own galaxies count."""
    table = Table.read(str(galaxies_csv), format="ascii.csv")
    for column in ("local_ids", "psf_fwhm_arcsec", "pixel_scale"):
        if column not in table.colnames:
            raise AstrodetInputError(f"{galaxies_csv}: no column {column!r} (found {', '.join(table.colnames)})")
    by_id = {str(row["local_ids"]): row for row in table}
    images = json.loads(Path(train_coco).read_text(encoding="utf-8"))["images"]
    values = []
    for image in images:
        galaxy = str(image.get("galaxy_id"))
        if galaxy not in by_id:
            raise AstrodetInputError(f"{train_coco}: image {image['id']}: galaxy_id {galaxy} not in {galaxies_csv}")
        row = by_id[galaxy]
        psf_px = _positive(row["psf_fwhm_arcsec"], f"{galaxies_csv}: {galaxy}: psf_fwhm_arcsec") / _positive(
            row["pixel_scale"], f"{galaxies_csv}: {galaxy}: pixel_scale"
        )
        values.append(psf_px * input_size / min(int(image["width"]), int(image["height"])))
    if not values:
        raise AstrodetInputError(f"{train_coco}: no images")
    return float(statistics.median(values))


def default_training_psf_px(input_size: int = 200) -> float:
    """:func:`training_psf_px` of the embedded simulated set's train split (built on first use, then cached)."""
    from astrodet.data.catalogue import ensure

    splits = ensure(DEFAULT_TRAINING_SET)
    train = Path(splits["train"])
    return training_psf_px(train.parent / "simulation" / "galaxies.csv", train, input_size)
