"""Pixel -> sky: RA/Dec from a FITS WCS and from a cutout's centre + pixel scale, checked with astropy coordinates."""

from __future__ import annotations

import csv
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS

from astrodet.inference.sky import SkyFrame, box_size_arcsec
from astrodet.inference.sources import SkyHint, read_meta


def _rotated_wcs(shape: tuple[int, int]) -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [359.99, -30.0]  # RA wraps through 0 inside the image
    wcs.wcs.crpix = [12.0, 31.0]
    scale, angle = 0.3 / 3600, np.radians(25.0)
    wcs.wcs.cd = scale * np.array([[-np.cos(angle), np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    wcs.pixel_shape = (shape[1], shape[0])
    return wcs


def test_wcs_positions_follow_the_header() -> None:
    height = 60
    frame = SkyFrame.from_header_wcs(_rotated_wcs((height, 40)), height)
    # FITS pixel (crpix - 1) is the display point (crpix_x - 0.5, height - crpix_y + 0.5)
    ra, dec = frame.world(np.array([11.5]), np.array([height - 30.5]))
    assert np.allclose([ra[0], dec[0]], [359.99, -30.0], atol=1e-10)
    assert abs(frame.pixel_scale - 0.3) < 1e-9
    x, y = np.array([3.0, 30.0, 11.5]), np.array([7.0, 50.0, 0.5])
    ra, dec = frame.world(x, y)
    expected = frame.wcs.pixel_to_world(x - 0.5, height - y - 0.5)
    got = SkyCoord(ra * u.deg, dec * u.deg)
    assert np.all(got.separation(expected).arcsec < 1e-6)
    assert np.all((ra >= 0) & (ra < 360))


def test_centre_and_scale_give_a_north_up_east_left_tangent_plane() -> None:
    hint = SkyHint(ra=200.0, dec=40.0, pixel_scale=0.2)
    frame = SkyFrame.from_hint(hint, width=400, height=400)
    centre = SkyCoord(200.0 * u.deg, 40.0 * u.deg)
    ra, dec = frame.world(np.array([200.0, 200.0, 300.0, 200.0]), np.array([200.0, 100.0, 200.0, 300.0]))
    points = SkyCoord(ra * u.deg, dec * u.deg)
    assert points[0].separation(centre).arcsec < 1e-6
    separations = centre.separation(points[1:]).arcsec
    assert np.allclose(separations, 100 * 0.2, rtol=1e-6)
    angles = centre.position_angle(points[1:]).deg
    assert np.allclose(angles, [0.0, 270.0, 180.0], atol=1e-4)  # up = north, right = west, down = south
    assert SkyFrame.from_hint(SkyHint(200.0, 40.0, None), 400, 400) is None


def test_simulated_clump_positions_from_meta_and_from_cutout_fits_match_the_truth(simulated: Path) -> None:
    from astrodet.inference.images import load_fits
    from astrodet.inference.model import SIMULATOR_RECIPE
    from astrodet.inference.sources import discover

    meta = read_meta(simulated / "galaxies.csv")
    with open(simulated / "clumps.csv", newline="") as handle:
        clumps = list(csv.DictReader(handle))
    for local_id in sorted({c["local_ids"] for c in clumps}):
        rows = [c for c in clumps if c["local_ids"] == local_id]
        x = np.array([float(c["x"]) for c in rows])
        y = np.array([float(c["y"]) for c in rows])
        truth = SkyCoord([float(c["ra"]) for c in rows] * u.deg, [float(c["dec"]) for c in rows] * u.deg)
        hint = meta.lookup(str(simulated / "images" / f"{local_id}.png"))
        from_meta = SkyFrame.from_hint(hint, 400, 400).world(x, y)
        (unit,) = discover([str(simulated / "fits_cutout" / f"{local_id}_{{band}}.fits")], ("i", "r", "g"))
        from_fits = load_fits(unit, SIMULATOR_RECIPE, ("i", "r", "g")).sky.world(x, y)
        for ra, dec in (from_meta, from_fits):
            assert np.all(truth.separation(SkyCoord(ra * u.deg, dec * u.deg)).arcsec < 1e-4)


def test_box_size_is_the_geometric_mean_side_in_arcsec() -> None:
    boxes = np.array([[0.0, 0.0, 4.0, 9.0]])
    assert np.allclose(box_size_arcsec(boxes, 0.5), [3.0])
    assert np.isnan(box_size_arcsec(boxes, None)).all()
