"""Tiling: a frame cut into tiles, predicted and stitched, gives the detections of the whole frame, each once."""

from __future__ import annotations

import itertools
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits

from astrodet.data.imaging import celestial_wcs, write_fits_image
from astrodet.inference.catalogue import read_catalogue
from astrodet.inference.model import Detections
from astrodet.inference.postprocess import PostProcessing, postprocess
from astrodet.inference.runner import PredictOptions, run_predict
from astrodet.inference.tiling import make_tiles, stitch, tile_views
from tests.inference.fakes import PeakDetector


def _blobs(height: int, width: int, centres: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width] + 0.5
    image = np.zeros((height, width))
    for x, y in centres:
        image += 250 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return np.repeat(np.clip(image, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)


def _predict(detector: PeakDetector, pixels: np.ndarray, tile: int | None) -> Detections:
    tiles = make_tiles(pixels.shape[0], pixels.shape[1], tile)
    found = stitch(tiles, detector.predict(tile_views(pixels, tiles)))
    return postprocess(found, PostProcessing(), pixels.shape[1], pixels.shape[0])


def test_tiles_cover_the_frame_and_fit_the_model() -> None:
    tiles = make_tiles(700, 950, 200)
    assert all(t.x1 - t.x0 == 200 and t.y1 - t.y0 == 200 for t in tiles)
    covered = np.zeros((700, 950), dtype=bool)
    for t in tiles:
        covered[t.y0 : t.y1, t.x0 : t.x1] = True
    assert covered.all()
    assert len(make_tiles(200, 150, 200)) == 1 and len(make_tiles(900, 900, None)) == 1


def test_objects_on_tile_borders_are_reported_once_where_the_whole_frame_sees_them() -> None:
    rng = np.random.default_rng(0)
    height, width = 700, 950
    tiles = make_tiles(height, width, 200)
    edges = sorted({t.x0 for t in tiles} | {t.x1 for t in tiles})
    on_edges = [(e + dx, y) for e in edges[1:-1] for dx, y in ((0.0, 123.4), (0.5, 371.0), (-2.0, 602.2))]
    cut_lines = [((a.x1 + b.x0) / 2, 250.0) for a, b in itertools.pairwise(tiles) if b.x0 < a.x1]
    scattered = rng.uniform([10, 10], [width - 10, height - 10], (60, 2))
    pixels = _blobs(height, width, np.vstack([on_edges, cut_lines, scattered]))
    whole = _predict(PeakDetector(input_size=None), pixels, None)
    detector = PeakDetector()
    tiled = _predict(detector, pixels, 200)
    assert max(max(s[:2]) for s in detector.shapes) == 200
    assert len(tiled) == len(whole) > 60
    assert np.array_equal(tiled.boxes, whole.boxes) and np.array_equal(tiled.scores, whole.scores)


def _mosaic(simulated: Path, out: Path, rows: int = 2, cols: int = 3) -> list[str]:
    """The cutout FITS of the simulated galaxies stitched into one frame per band, with a WCS of its own."""
    ids = sorted(p.stem for p in (simulated / "images").glob("*.png"))[: rows * cols]
    wcs = celestial_wcs(180.0, 10.0, 0.1, (400 * rows, 400 * cols))
    for band in "gri":
        display = np.zeros((400 * rows, 400 * cols), dtype=np.float32)
        for k, local_id in enumerate(ids):
            r, c = divmod(k, cols)
            data = fits.getdata(simulated / "fits_cutout" / f"{local_id}_{band}.fits")
            display[400 * r : 400 * (r + 1), 400 * c : 400 * (c + 1)] = data[::-1]
        write_fits_image(out / f"mosaic_{band}.fits", display[::-1], wcs, {"BUNIT": "nanomaggy/arcsec2"})
    return ids


def test_a_mosaic_of_simulated_galaxies_gives_each_cutouts_detections(simulated: Path, tmp_path: Path) -> None:
    ids = _mosaic(simulated, tmp_path)
    run_predict(PeakDetector(), PredictOptions([str(tmp_path / "mosaic_{band}.fits")], str(tmp_path / "m.fits"),
                                               progress=False))  # fmt: skip
    mosaic = read_catalogue(tmp_path / "m.fits")
    cutouts = [str(simulated / "images" / f"{i}.png") for i in ids]
    run_predict(PeakDetector(input_size=None), PredictOptions(cutouts, str(tmp_path / "c.fits"), progress=False))
    single = read_catalogue(tmp_path / "c.fits")
    margin = 12  # the detector's 7 px window and 12 px boxes see across a seam of the mosaic
    matched = 0
    for k in range(len(ids)):
        r, c = divmod(k, 3)
        own = single[single["image_index"] == k]
        inner = (own["x"] > margin) & (own["x"] < 400 - margin) & (own["y"] > margin) & (own["y"] < 400 - margin)
        mx, my = mosaic["x"] - 400 * c, mosaic["y"] - 400 * r
        in_cell = (mx > margin) & (mx < 400 - margin) & (my > margin) & (my < 400 - margin)
        assert in_cell.sum() == inner.sum()
        for row in own[inner]:
            distance = np.hypot(mx[in_cell] - row["x"], my[in_cell] - row["y"])
            assert (distance <= 1.0).sum() == 1  # found, and once
            matched += 1
    assert matched > 20
    x, y = np.asarray(mosaic["x"]), np.asarray(mosaic["y"])
    apart = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :]) + np.eye(len(x)) * 1e9
    assert apart.min() > 1.0  # no object twice
    sky = SkyCoord(mosaic["ra"] * u.deg, mosaic["dec"] * u.deg)
    wcs = celestial_wcs(180.0, 10.0, 0.1, (800, 1200))
    assert np.all(sky.separation(wcs.pixel_to_world(x - 0.5, 800 - y - 0.5)).arcsec < 1e-6)
