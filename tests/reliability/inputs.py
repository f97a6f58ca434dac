"""Small inputs for every converter, and the call that converts each, shared by the reliability tests.

Each maker writes into a folder and returns a :class:`Case`: the converter call (keyword options as the CLI would
give them) and the input paths a user names, so a test can aim any output at any input.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from PIL import Image

from astrodet.data.catalog import convert_catalog
from astrodet.data.clumpscout import COLUMNS, convert_clumpscout
from astrodet.data.galaxyzoo import convert_galaxyzoo
from astrodet.data.npzcutouts import convert_npz
from astrodet.data.rejects import ConversionSummary


@dataclass
class Case:
    """One converter on one small input: ``run(out_json, **extra)`` converts; ``inputs`` names each input path."""

    name: str
    convert: Callable[..., ConversionSummary]
    source: Path
    options: dict[str, Any]
    inputs: dict[str, Path] = field(default_factory=dict)

    def run(self, out_json: str | os.PathLike[str], **extra: Any) -> ConversionSummary:
        return self.convert(self.source, out_json, **{**self.options, **extra})


def noise_image(path: Path, size: tuple[int, int], seed: int = 0, fmt: str | None = None) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format=fmt)
    return path


def cut_short(path: Path, keep: float = 0.6) -> Path:
    """Truncate a file to ``keep`` of its bytes, as an interrupted download or copy leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def clumpscout_case(folder: Path, n: int = 8, seed: int = 0) -> Case:
    """Crops of ``n`` 400x400 PNGs with one to three boxes each; ``seed`` changes the boxes (for old/new runs)."""
    images = folder / "pngs"
    for i in range(n):
        noise_image(images / f"g{i}.png", (400, 400), seed=i)
    rng = np.random.default_rng(seed)
    table = folder / "boxes.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for i in range(n):
            for _ in range(1 + i % 3):
                x, y = (float(v) for v in rng.uniform(20, 160, 2).round(1))
                writer.writerow([900 + i, f"g{i}", f"x/g{i}.png", 1 + (i % 4 == 3), "clumpy", x, x + 12, y, y + 12])
    return Case("clumpscout", convert_clumpscout, table, {"images_dir": images}, {"boxes": table, "images": images})


def galaxyzoo_case(folder: Path, n: int = 8, seed: int = 0) -> Case:
    """A labelled list of ``n`` JPEGs, cropped to 40 px; ``seed`` changes the labels."""
    images = folder / "jpgs"
    labels = ["spiral", "elliptical"]
    rng = np.random.default_rng(seed)
    table = folder / "labels.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["galaxy_id", "label", "file"])
        for i in range(n):
            noise_image(images / f"{i}.jpg", (64, 64), seed=i, fmt="JPEG")
            writer.writerow([i, labels[int(rng.integers(2))], f"jpgs/{i}.jpg"])
    mapping = folder / "mapping.json"
    mapping.write_text(json.dumps({"categories": labels, "labels": {label: label for label in labels}}, indent=1))
    return Case(
        "galaxyzoo",
        convert_galaxyzoo,
        table,
        {"images_dir": images, "mapping": mapping, "centre_crop": 40},
        {"table": table, "images": images, "mapping": mapping},
    )


def catalog_case(folder: Path, n: int = 8, seed: int = 0) -> Case:
    """A catalogue of ``n`` sources with PNG cutouts named by id, copied beside the output; a selection config."""
    cutouts = folder / "cutouts"
    rng = np.random.default_rng(seed)
    table = folder / "sources.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "ra", "dec", "kind"])
        for i in range(n):
            noise_image(cutouts / f"obj{i}.png", (32, 32), seed=i)
            writer.writerow([f"obj{i}", 10 + i * 0.01, -5 + i * 0.01, ["a", "b"][int(rng.integers(2))]])
    config = folder / "selection.yaml"
    config.write_text("label_column: kind\nname_pattern: '{id}.png'\n")
    return Case(
        "catalog",
        convert_catalog,
        table,
        {"config": config, "cutouts": cutouts, "copy_images": True},
        {"catalog": table, "cutouts": cutouts, "config": config},
    )


def fits_catalog_case(folder: Path, n: int = 6) -> Case:
    """A catalogue of pixel positions on one FITS frame, cut into 16 px cutouts."""
    frame = folder / "frame.fits"
    fits.PrimaryHDU(np.random.default_rng(0).normal(size=(80, 80)).astype(np.float32)).writeto(frame)
    table = folder / "positions.csv"
    table.write_text("id,x,y,kind\n" + "".join(f"s{i},{20 + i * 8},{30 + i * 5},{'ab'[i % 2]}\n" for i in range(n)))
    options = {"label_col": "kind", "fits": [frame], "x_col": "x", "y_col": "y", "size": 16, "scale": "minmax"}
    return Case("catalog_fits", convert_catalog, table, options, {"catalog": table, "fits": frame})


def npz_case(folder: Path, n: int = 6, seed: int = 0) -> Case:
    """Two labelled arrays of ``n`` 8-bit cutouts (written as PNG); ``seed`` changes the pixels."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for name in ("train", "test"):
        arrays[f"X_{name}"] = rng.integers(0, 256, size=(n, 16, 16, 3)).astype(np.float32) / 255.0
        arrays[f"y_{name}"] = np.arange(n) % 2
    npz = folder / "cutouts.npz"
    np.savez(npz, **arrays)
    return Case("npz", convert_npz, npz, {}, {"npz": npz})


MAKERS: dict[str, Callable[[Path], Case]] = {
    "clumpscout": clumpscout_case,
    "galaxyzoo": galaxyzoo_case,
    "catalog": catalog_case,
    "catalog_fits": fits_catalog_case,
    "npz": npz_case,
}
