"""A small multi-band float FITS detection set, as the FITS contract describes one (for adapter and predict tests).

Each image is a (C, H, W) float32 cube with BAND1..BANDC, BUNIT nanomaggy/arcsec2 and a celestial WCS: sky noise
plus a few Gaussian sources whose COCO boxes are in the array frame (row 0 = the first FITS row, no flip).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from astrodet.data.coco import CocoBuilder, write_coco
from astrodet.data.imaging import celestial_wcs, fits_header

UGRIZ = ("u", "g", "r", "i", "z")
CLASSES = ("clump", "odd_clump")


def write_fits_cube(path: Path, cube: np.ndarray, bands: tuple[str, ...], ra: float = 150.0) -> None:
    cards = {"BUNIT": "nanomaggy/arcsec2", **{f"BAND{k}": band for k, band in enumerate(bands, start=1)}}
    header = fits_header(celestial_wcs(ra, 2.0, 0.396, cube.shape[1:]), cards)
    fits.PrimaryHDU(np.asarray(cube, dtype=np.float32), header).writeto(path)


def write_fits_detection_set(
    folder: Path, bands: tuple[str, ...] = UGRIZ, size: int = 64, per_split: int = 4, seed: int = 0
) -> dict[str, Path]:
    """``{"train": json, "val": json}``: ``per_split`` cubes each, 2-3 sources per image with boxes of 2 x FWHM."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size]
    files = {}
    for split in ("train", "val"):
        builder = CocoBuilder()
        for name in CLASSES:
            builder.add_category(name)
        for k in range(per_split):
            cube = rng.normal(0.0, 0.02, (len(bands), size, size))
            stem = f"{split}_{k}"
            image_id = builder.add_image(f"{stem}.fits", size, size, bands=list(bands))
            for j in range(int(rng.integers(2, 4))):
                x, y = rng.uniform(12, size - 12, 2)
                sigma = 2.5
                blob = np.exp(-((cols + 0.5 - x) ** 2 + (rows + 0.5 - y) ** 2) / (2 * sigma**2))
                cube += blob[None] * np.linspace(1.0, 2.0, len(bands))[:, None, None] * 2.0
                half = 2.355 * sigma  # box of 2 x FWHM
                builder.add_annotation(image_id, [x - half, y - half, 2 * half, 2 * half], 1 + j % 2)
            write_fits_cube(folder / f"{stem}.fits", cube, bands)
        files[split] = folder / f"{split}.json"
        write_coco(builder.to_dict(), files[split])
    return files


def tiny_fits_cache(tmp_path_factory) -> Path:
    """An ASTRODET_CACHE holding the catalogue's ``tiny_fits`` set (the 5-band FITS form of ``tiny``)."""
    from astrodet.data import catalogue
    from tests.conftest import astrodet_cache_env

    cache = tmp_path_factory.mktemp("astrodet_fits_cache")
    with astrodet_cache_env(cache):
        catalogue.ensure("tiny_fits", progress=False)
    return cache
