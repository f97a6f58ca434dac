"""Imaging helpers: WCS orientation, deterministic FITS/PNG output, Lupton colour mapping."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales
from PIL import Image

from astrodet.data.imaging import (
    celestial_wcs,
    fits_header,
    fits_pixel_to_png,
    lupton_rgb,
    png_bytes,
    png_to_fits_pixel,
    write_fits_image,
    write_png,
)


def test_celestial_wcs_centre_scale_and_orientation():
    wcs = celestial_wcs(150.0, 2.0, 0.25, (101, 81))
    assert wcs.has_celestial
    ra, dec = wcs.pixel_to_world_values(40.0, 50.0)  # 0-based centre of an 81 x 101 (nx x ny) array
    assert ra == pytest.approx(150.0, abs=1e-12) and dec == pytest.approx(2.0, abs=1e-12)
    assert np.allclose(proj_plane_pixel_scales(wcs) * 3600.0, 0.25)
    ra_right, _ = wcs.pixel_to_world_values(41.0, 50.0)
    _, dec_up = wcs.pixel_to_world_values(40.0, 51.0)
    assert ra_right < 150.0  # east is left: RA decreases to the right
    assert dec_up > 2.0  # north is up (increasing FITS row)


def test_celestial_wcs_custom_reference_pixel_and_bad_scale():
    wcs = celestial_wcs(10.0, -30.0, 0.396, (50, 50), crpix=(12.5, 7.25))
    ra, dec = wcs.pixel_to_world_values(11.5, 6.25)
    assert (ra, dec) == pytest.approx((10.0, -30.0), abs=1e-12)
    with pytest.raises(ValueError, match="pixel_scale"):
        celestial_wcs(10.0, 0.0, 0.0, (5, 5))


def test_png_fits_pixel_conventions_roundtrip():
    col, row = png_to_fits_pixel(0.5, 0.5, 400)  # centre of the top-left PNG pixel
    assert (col, row) == (0.0, 399.0)  # first FITS column, last (top, northern) FITS row
    xs, ys = np.array([12.25, 200.0]), np.array([399.5, 200.0])
    back_x, back_y = fits_pixel_to_png(*png_to_fits_pixel(xs, ys, 400), 400)
    assert np.allclose(back_x, xs) and np.allclose(back_y, ys)


def test_write_fits_image_roundtrip_deterministic_no_dates(tmp_path):
    data = np.arange(35, dtype=np.float32).reshape(5, 7)
    wcs = celestial_wcs(200.0, 45.0, 0.396, data.shape)
    cards = {"BUNIT": ("nanomaggy", "per pixel"), "FILTER": "r"}
    write_fits_image(tmp_path / "a.fits", data, wcs, cards)
    write_fits_image(tmp_path / "b.fits", data, wcs, cards)
    raw = (tmp_path / "a.fits").read_bytes()
    assert raw == (tmp_path / "b.fits").read_bytes()
    assert len(raw) % 2880 == 0
    with fits.open(tmp_path / "a.fits") as hdul:
        assert len(hdul) == 1
        assert np.array_equal(hdul[0].data, data)
        header = hdul[0].header
        assert header["BUNIT"] == "nanomaggy" and header["FILTER"] == "r"
        assert not [k for k in header if k.startswith(("DATE", "MJD"))]
        read_wcs = WCS(header)
        expected = [float(v) for v in wcs.pixel_to_world_values(3.0, 2.0)]
        assert [float(v) for v in read_wcs.pixel_to_world_values(3.0, 2.0)] == pytest.approx(expected, abs=1e-12)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.fits", "b.fits"]  # no temporary files left


def test_write_fits_image_with_prebuilt_header(tmp_path):
    wcs = celestial_wcs(1.0, 1.0, 1.0, (4, 4))
    header = fits_header(wcs, {"OBJECT": "x"})
    write_fits_image(tmp_path / "h.fits", np.zeros((4, 4), np.float32), header=header)
    with fits.open(tmp_path / "h.fits") as hdul:
        assert hdul[0].header["OBJECT"] == "x"
        assert hdul[0].header["CTYPE1"] == "RA---TAN"
    with pytest.raises(ValueError, match="2-D"):
        write_fits_image(tmp_path / "bad.fits", np.zeros(3))


def test_lupton_rgb_band_to_channel_mapping_and_monotonic():
    zero = np.zeros((4, 4))
    bright = np.full((4, 4), 30.0)
    only_i = lupton_rgb(zero, zero, bright)
    only_g = lupton_rgb(bright, zero, zero)
    assert only_i.dtype == np.uint8 and only_i.shape == (4, 4, 3)
    assert only_i[0, 0, 0] > 100 and only_i[0, 0, 2] < only_i[0, 0, 0]  # i -> red
    assert only_g[0, 0, 2] > 100 and only_g[0, 0, 0] < only_g[0, 0, 2]  # g -> blue
    ramp = np.linspace(0.0, 50.0, 16).reshape(4, 4)
    grey = lupton_rgb(ramp, ramp, ramp).astype(int).sum(axis=2).ravel()
    assert np.all(np.diff(grey) >= -1) and grey[-1] > grey[0] + 300  # -1: rounding once saturated
    sky = lupton_rgb(zero, zero, zero)
    assert sky.max() < 40  # empty sky stays dark


def test_png_roundtrip_deterministic_without_metadata(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    write_png(tmp_path / "a.png", rgb)
    raw = (tmp_path / "a.png").read_bytes()
    assert raw == png_bytes(rgb)
    assert b"tIME" not in raw and b"tEXt" not in raw
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), rgb)
    with pytest.raises(ValueError, match="uint8"):
        png_bytes(rgb.astype(float))
