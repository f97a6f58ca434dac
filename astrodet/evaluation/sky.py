"""Matching on the sky: one-to-one within an angular radius, greedy by score, as the pixel rules.

Why a module of its own: survey catalogues are compared by position on the sky, not by boxes, and need no images.
The candidate pairs come from astropy's ``search_around_sky`` (a k-d tree, so a catalogue of millions of rows costs
no N x M matrix), their separations from ``SkyCoord.separation``; the choice among them is
:func:`astrodet.evaluation.matching.greedy_match`, the same code the pixel rules use. Positions are (N, 2) arrays of
ICRS RA, Dec in degrees.

A COCO image written by astrodet's converters carries ``ra``, ``dec`` (its centre) and ``pixel_scale``: its pixels
map to the sky through a north-up, east-left TAN projection centred on the image
(:func:`astrodet.data.imaging.celestial_wcs`), the convention of Clump Scout cutouts and of the simulator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord, search_around_sky

from astrodet.data.imaging import celestial_wcs, png_to_fits_pixel
from astrodet.errors import AstrodetInputError
from astrodet.evaluation.matching import (
    MatchResult,
    MatchRule,
    as_rows,
    check_scores,
    greedy_match,
    same_class_pairs,
)

# search radius margin: search_around_sky's chord test may drop a pair at exactly the radius, so search a little
# wider and apply "separation <= radius" ourselves
_SEARCH_MARGIN = 1.0 + 1e-9


def as_sky(positions: Any, what: str = "positions") -> np.ndarray:
    """``positions`` as a float (N, 2) array of RA, Dec in degrees, refusing non-finite values and |Dec| > 90."""
    arr = as_rows(positions, ("RA", "Dec in degrees"), what, "RA/Dec")
    if (np.abs(arr[:, 1]) > 90).any():
        raise AstrodetInputError(f"{what} have |Dec| > 90 degrees")
    return arr


def _coords(positions: np.ndarray) -> SkyCoord:
    return SkyCoord(positions[:, 0] * u.deg, positions[:, 1] * u.deg, frame="icrs")


def sky_pairs(
    pred_sky: np.ndarray, true_sky: np.ndarray, radius_arcsec: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (prediction, truth) pair within ``radius_arcsec`` (inclusive): indices and separations in arcsec."""
    if len(pred_sky) == 0 or len(true_sky) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    pred_index, true_index, sep, _ = search_around_sky(
        _coords(pred_sky), _coords(true_sky), radius_arcsec * _SEARCH_MARGIN * u.arcsec
    )
    sep_arcsec = sep.to_value(u.arcsec)
    keep = sep_arcsec <= radius_arcsec
    return pred_index[keep].astype(np.int64), true_index[keep].astype(np.int64), sep_arcsec[keep]


def match_sky(
    pred_sky: Any,
    pred_scores: Any,
    true_sky: Any,
    rule: MatchRule,
    pred_classes: Any = None,
    true_classes: Any = None,
) -> MatchResult:
    """Match predicted to true RA/Dec one-to-one, highest score first, each taking its nearest free truth within the
    rule's radius (arcsec); class-aware when both class arrays are given.
    """
    if rule.kind != "sky":
        raise AstrodetInputError(f"match_sky needs a sky rule (radius in arcsec), got {rule}")
    pred = as_sky(pred_sky, "predicted positions")
    true = as_sky(true_sky, "true positions")
    scores = check_scores(pred_scores, pred.shape[0])
    pred_index, true_index, sep = sky_pairs(pred, true, float(rule.radius))
    if pred_classes is not None and true_classes is not None:
        keep = same_class_pairs(pred_index, true_index, pred_classes, true_classes, pred.shape[0], true.shape[0])
        pred_index, true_index, sep = pred_index[keep], true_index[keep], sep[keep]
    return greedy_match(scores, true.shape[0], pred_index, true_index, -sep)


def image_pixels_to_sky(image: Mapping[str, Any], x: Any, y: Any) -> np.ndarray:
    """RA, Dec (N, 2) of continuous pixel positions (COCO convention) of a COCO image with ra, dec, pixel_scale."""
    fields = {}
    for key in ("ra", "dec", "pixel_scale", "width", "height"):
        value = image.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise AstrodetInputError(
                f"image {image.get('id')!r} ({image.get('file_name')}): sky matching needs its {key!r} "
                "(ra, dec of the centre in degrees and pixel_scale in arcsec/px, as astrodet's converters write)"
            )
        fields[key] = float(value)
    width, height = int(fields["width"]), int(fields["height"])
    wcs = celestial_wcs(fields["ra"], fields["dec"], fields["pixel_scale"], (height, width))
    col, row = png_to_fits_pixel(np.asarray(x, dtype=float), np.asarray(y, dtype=float), height)
    ra, dec = wcs.pixel_to_world_values(col, row)
    return np.stack([np.asarray(ra, dtype=float) % 360.0, np.asarray(dec, dtype=float)], axis=-1).reshape(-1, 2)


def box_centres(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x, y of the centres of XYXY boxes."""
    return (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
