"""Sky matching: the rule on the command line, angular separations, the greedy rule shared with pixels, and agreement
with the centre rule on a cutout whose pixels map to the sky through a TAN projection."""

from __future__ import annotations

import time

import numpy as np
import pytest

from astrodet.errors import AstrodetInputError
from astrodet.evaluation.detection import ImageRecord, evaluate_detections
from astrodet.evaluation.matching import MatchRule, match
from astrodet.evaluation.sky import box_centres, image_pixels_to_sky, match_sky, sky_pairs

SKY = MatchRule("sky", radius=1.0)
ARCSEC = 1 / 3600


def _offset(ra: float, dec: float, east_arcsec: float, north_arcsec: float) -> list[float]:
    """A position offset by small angles on the sky (east = increasing RA)."""
    return [ra + east_arcsec * ARCSEC / np.cos(np.radians(dec)), dec + north_arcsec * ARCSEC]


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("radius:1.5arcsec", MatchRule("sky", radius=1.5)),
        ("radius:1.5 arcsec", MatchRule("sky", radius=1.5)),
        ("radius:0.5arcmin", MatchRule("sky", radius=30.0)),
        ("sky:2", MatchRule("sky", radius=2.0)),
        ("radius:4px", MatchRule("centre", radius=4.0)),
        ("centre:4px", MatchRule("centre", radius=4.0)),
        ("centre:2.5", MatchRule("centre", radius=2.5)),
        ("iou:0.5", MatchRule("iou", iou_threshold=0.5)),
    ],
)
def test_parse_reads_the_unit_as_the_rule(text: str, rule: MatchRule) -> None:
    assert MatchRule.parse(text) == rule


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("radius:1.5", "with a unit"),
        ("radius:", "with a unit"),
        ("radius:2furlong", "with a unit"),
        ("centre:x", "with a unit"),
        ("sky", "radius > 0 arcsec"),
        ("sky:-1", "radius > 0 arcsec"),
        ("near:3", "kind must be"),
        ("iou:high", "not a number"),
    ],
)
def test_parse_refuses_with_a_message(text: str, message: str) -> None:
    with pytest.raises(AstrodetInputError, match=message):
        MatchRule.parse(text)


def test_sky_rule_description() -> None:
    assert MatchRule("sky", radius=1.5).describe() == {
        "kind": "sky",
        "radius_arcsec": 1.5,
        "text": "sky separation <= 1.5 arcsec, one-to-one, greedy by score",
    }
    with pytest.raises(AstrodetInputError, match="match_sky"):
        match([[0, 0, 1, 1]], [0.9], [[0, 0, 1, 1]], SKY)


def test_radius_is_inclusive_and_angular_at_any_declination() -> None:
    for dec in (0.0, 60.0, 89.9):
        truth = [[150.0, dec]]
        inside = [_offset(150.0, dec, 0.6, 0.79)]  # ~0.99 arcsec
        outside = [_offset(150.0, dec, 0.6, 0.81)]  # ~1.01 arcsec
        assert match_sky(inside, [0.9], truth, SKY).n_matched == 1
        assert match_sky(outside, [0.9], truth, SKY).n_matched == 0
    pred, truth = [[10.0, 5.0 + ARCSEC]], [[10.0, 5.0]]
    _, _, sep = sky_pairs(np.array(pred), np.array(truth), 2.0)
    assert match_sky(pred, [0.9], truth, MatchRule("sky", radius=float(sep[0]))).n_matched == 1  # at the radius


def test_ra_wraps_around_zero() -> None:
    assert match_sky([[359.99999, 0.0]], [0.9], [[0.00001, 0.0]], SKY).n_matched == 1


def test_greedy_by_score_nearest_free_truth_and_ties() -> None:
    truths = [_offset(20, 0, 0.5, 0), _offset(20, 0, 0.2, 0)]
    # the higher score visits first and takes the nearest truth (listed second)
    result = match_sky([[20.0, 0.0], [20.0, 0.0]], [0.5, 0.9], truths, SKY)
    assert result.pred_to_true.tolist() == [0, 1]
    # two truths at the same distance: the first listed wins
    twins = [_offset(20, 0, 0.5, 0), _offset(20, 0, -0.5, 0)]
    assert match_sky([[20.0, 0.0]], [0.9], twins, SKY).pred_to_true.tolist() == [0]


def test_class_aware_and_empty() -> None:
    assert match_sky([[1.0, 1.0]], [0.9], [[1.0, 1.0]], SKY, pred_classes=[2], true_classes=[1]).n_matched == 0
    assert match_sky(np.zeros((0, 2)), [], [[1.0, 1.0]], SKY).true_to_pred.tolist() == [-1]
    assert match_sky([[1.0, 1.0]], [0.3], np.zeros((0, 2)), SKY).pred_to_true.tolist() == [-1]
    with pytest.raises(AstrodetInputError, match="Dec"):
        match_sky([[1.0, 95.0]], [0.3], [[1.0, 1.0]], SKY)


def test_a_large_catalogue_is_fast_and_one_to_one() -> None:
    rng = np.random.default_rng(1)
    truths = np.c_[rng.uniform(150, 150.5, 20000), rng.uniform(2, 2.5, 20000)]
    preds = truths + rng.normal(0, 0.3 * ARCSEC, truths.shape)
    start = time.perf_counter()
    result = match_sky(preds, rng.random(len(preds)), truths, SKY)
    assert time.perf_counter() - start < 10.0
    matched = result.pred_to_true[result.pred_to_true >= 0]
    assert len(set(matched.tolist())) == len(matched) > 19000


IMAGE = {"id": 1, "file_name": "a.png", "width": 200, "height": 200, "ra": 150.0, "dec": 2.0, "pixel_scale": 0.2}


def test_image_pixels_map_north_up_east_left() -> None:
    centre, right, up = image_pixels_to_sky(IMAGE, [100.0, 110.0, 100.0], [100.0, 100.0, 90.0])
    np.testing.assert_allclose(centre, [150.0, 2.0], atol=1e-10)
    assert right[0] < 150.0 and up[1] > 2.0  # east is left, north is up
    np.testing.assert_allclose((up[1] - 2.0) * 3600, 10 * 0.2, rtol=1e-6)
    with pytest.raises(AstrodetInputError, match="pixel_scale"):
        image_pixels_to_sky({**IMAGE, "pixel_scale": None}, [1.0], [1.0])


def test_sky_rule_agrees_with_the_centre_rule_on_a_cutout() -> None:
    rng = np.random.default_rng(4)
    for _ in range(20):
        c = rng.uniform(20, 180, (8, 2))
        true = np.c_[c - 5, c + 5]
        shift = rng.normal(0, 2.5, (10, 2))
        pred = true[rng.integers(0, 8, 10)] + np.c_[shift, shift]
        scores = rng.random(10)
        pred_sky = image_pixels_to_sky(IMAGE, *box_centres(pred))
        true_sky = image_pixels_to_sky(IMAGE, *box_centres(true))
        by_pixel = match(pred, scores, true, MatchRule("centre", radius=3.0)).pred_to_true
        by_sky = match_sky(pred_sky, scores, true_sky, MatchRule("sky", radius=3.0 * 0.2)).pred_to_true
        assert by_sky.tolist() == by_pixel.tolist()


def test_records_with_only_sky_positions() -> None:
    truths = [[10.0, 0.0], [10.0, 0.01]]
    record = ImageRecord(None, [1, 1], None, [0.9, 0.4], [1, 1], true_sky=truths, pred_sky=[[10.0, 0.0], [11, 0]])
    result = evaluate_detections([record], SKY)
    assert (result["completeness"], result["purity"]) == (0.5, 0.5)
    assert "completeness_by_size" not in result["bins"]  # no boxes: no sizes
    assert result["matching"]["radius_arcsec"] == 1.0
    with pytest.raises(AstrodetInputError, match="needs boxes"):
        evaluate_detections([record], MatchRule("centre", radius=2.0))
    boxes_only = ImageRecord([[0, 0, 4, 4]], None, [[0, 0, 4, 4]], [0.9])
    with pytest.raises(AstrodetInputError, match="RA/Dec"):
        evaluate_detections([boxes_only], SKY)
    with pytest.raises(AstrodetInputError, match="2 sky positions"):
        ImageRecord([[0, 0, 4, 4]], true_sky=truths)
