"""The images of a Clump Scout conversion: checking the cutouts rows name, adding clump-free galaxies (from a
galaxies table or every PNG of the folder) and writing the central crops.

Why clump-free images matter: purity is measured on every galaxy that was inspected, including those where
volunteers marked nothing, so the converter keeps them as images without boxes.
"""

from __future__ import annotations

import io
import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from astrodet.data.clumpscout_table import CROP_SIZE
from astrodet.data.imaging import UnreadableImage, decode_image
from astrodet.data.rejects import RejectsLedger
from astrodet.data.toolkit import ConversionOutputs, basename, id_value, pick_column, read_csv
from astrodet.errors import AstrodetInputError

# galaxies table: accepted column names (lower case) for each field
GALAXY_COLUMNS: dict[str, tuple[str, ...]] = {
    "local_ids": ("local_ids", "local_id"),
    "ra": ("ra", "ra_deg", "raj2000", "ra_icrs"),
    "dec": ("dec", "dec_deg", "dej2000", "decj2000", "dec_icrs"),
    "pixel_scale": ("pixel_scale", "pixel_scale_arcsec", "pixscale", "pix_scale", "arcsec_per_pixel", "scale"),
    "filename": ("filename", "file_name", "file", "png", "image_file"),
    "subject_id": ("image_id", "subject_id"),
    "bands": ("bands", "band"),
}


@dataclass
class SourceImage:
    """One source cutout: its file name and what is known about its galaxy."""

    name: str  # basename of the PNG
    galaxy_id: str
    fields: dict[str, Any] = field(default_factory=dict)  # subject_id, ra, dec, pixel_scale, bands


class ImageChecker:
    """Looks up cutouts by basename in the images folder and decodes each lazily, once, in full (a cutout that
    cannot be decoded is an ``unreadable_image`` reject, not a failure later while cropping or training).

    Without a folder (annotation-only conversions) every image counts as usable.
    """

    def __init__(self, images_dir: Path | None, source_size: tuple[int, int]) -> None:
        self.images_dir = images_dir
        self.source_size = source_size
        self.listing = set(os.listdir(images_dir)) if images_dir is not None else set()
        self._cache: dict[str, tuple[str | None, str]] = {}

    def check(self, name: str) -> tuple[str | None, str]:
        """(reason, message) for an unusable image, (None, "") for a usable one."""
        if self.images_dir is None:
            return None, ""
        if name not in self._cache:
            self._cache[name] = self._check(self.images_dir, name)
        return self._cache[name]

    def _check(self, images_dir: Path, name: str) -> tuple[str | None, str]:
        if name not in self.listing:
            return "missing_image", f"image {name} not found in {images_dir}"
        try:
            size, _ = decode_image(images_dir / name)  # in full: a cut-short PNG has a header that parses
        except UnreadableImage as err:
            return "unreadable_image", f"image {name} cannot be read: {err.problem}"
        if size != self.source_size:
            w, h = self.source_size
            return "wrong_image_size", f"image {name} is {size[0]}x{size[1]}, expected {w}x{h}"
        return None, ""


def _parse_bands(text: str) -> list[str] | None:
    parts = [p for p in re.split(r"[,;| ]+", text.strip()) if p]
    if len(parts) == 1 and len(parts[0]) > 1 and all(c in "ugrizyY" for c in parts[0]):
        parts = list(parts[0])  # "gri" -> ["g", "r", "i"]
    return parts or None


def _galaxy_fields(header: list[str], row: list[str], cols: dict[str, int | None]) -> tuple[dict[str, Any], str]:
    """The image fields of one galaxies-table row, or ({}, message) when a value is invalid."""
    fields: dict[str, Any] = {}
    rules: dict[str, tuple[Callable[[float], bool], str]] = {
        "ra": (lambda v: 0 <= v <= 360, "degrees in [0, 360]"),
        "dec": (lambda v: -90 <= v <= 90, "degrees in [-90, 90]"),
        "pixel_scale": (lambda v: v > 0, "arcsec/px > 0"),
    }
    for key, (ok, expected) in rules.items():
        j = cols[key]
        if j is None or not row[j].strip():
            continue  # unknown: left out of the image record
        try:
            value = float(row[j])
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and ok(value)):
            return {}, f"{header[j]} must be {expected}, got {row[j]!r}"
        fields[key] = value
    if cols["subject_id"] is not None:
        fields["subject_id"] = id_value(row[cols["subject_id"]])
    if cols["bands"] is not None:
        fields["bands"] = _parse_bands(row[cols["bands"]])
    return {k: v for k, v in fields.items() if v is not None}, ""


def add_galaxies(
    path: Path, images: dict[str, SourceImage], checker: ImageChecker, ledger: RejectsLedger
) -> str:
    """Merge a galaxies table into ``images`` (coordinates for known galaxies, new clump-free images for the rest);
    returns its accounting line."""
    table = read_csv(path, "local_ids[,image_id,ra,dec,pixel_scale,filename,bands]")
    header = table.header
    cols = {key: pick_column(header, aliases) for key, aliases in GALAXY_COLUMNS.items()}
    if cols["local_ids"] is None:
        raise AstrodetInputError(
            f"{path}: no local_ids column (galaxy id, as in the boxes table); columns: {','.join(header)}"
        )
    by_galaxy: dict[str, list[SourceImage]] = {}
    for image in images.values():
        by_galaxy.setdefault(image.galaxy_id, []).append(image)
    seen: dict[str, int] = {}
    used = added = 0
    for i, row in enumerate(table.rows):
        number, values = table.numbers[i], table.values(i)
        if len(row) != len(header):
            ledger.add(path, number, "malformed_row", f"expected {len(header)} fields, got {len(row)}", values)
            continue
        galaxy = row[cols["local_ids"]].strip()
        if not galaxy:
            ledger.add(path, number, "missing_value", "local_ids is empty", values)
            continue
        if galaxy in seen:
            ledger.add(path, number, "duplicate", f"local_ids {galaxy} already in row {seen[galaxy]}", values)
            continue
        seen[galaxy] = number
        fields, problem = _galaxy_fields(header, row, cols)
        if problem:
            ledger.add(path, number, "bad_value", problem, values)
            continue
        if galaxy in by_galaxy:
            for image in by_galaxy[galaxy]:
                image.fields.update(fields)
            used += 1
            continue
        name = (basename(row[cols["filename"]]) if cols["filename"] is not None else "") or f"{galaxy}.png"
        if name in images:
            message = f"image {name} belongs to local_ids {images[name].galaxy_id}, not {galaxy}"
            ledger.add(path, number, "conflicting_ids", message, values)
            continue
        reason, message = checker.check(name)
        if reason is not None:
            ledger.add(path, number, reason, message, values)
            continue
        images[name] = SourceImage(name, galaxy, fields)
        by_galaxy[galaxy] = [images[name]]
        used += 1
        added += 1
    line = ledger.summary(len(table.rows), used, file=path, out_label="used")
    return f"{path}: {line}; {added} galaxies added as images without boxes"


def add_empty_pngs(images_dir: Path, images: dict[str, SourceImage], checker: ImageChecker) -> str:
    """Every usable PNG in the images folder becomes an image (a negative when it has no boxes)."""
    added, skipped = 0, {}
    for name in sorted(checker.listing):
        if not name.lower().endswith(".png") or name in images:
            continue
        reason, _ = checker.check(name)
        if reason is not None:
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        images[name] = SourceImage(name, Path(name).stem)
        added += 1
    detail = ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items()))
    return f"{images_dir}: {added} PNGs without boxes added as images" + (f"; skipped {detail}" if detail else "")


def write_crops(images_dir: Path, outputs: ConversionOutputs, names: Iterable[str], origin: tuple[int, int]) -> None:
    """Write the central crops into the run's images folder. Rerun-safe: the previous run's crop of a name, of the
    right size and newer than its source, is taken over (a hard link) instead of decoded and written again."""
    ox, oy = origin
    for name in names:
        source, previous = images_dir / name, outputs.previous_image(name)
        if previous.is_file() and previous.stat().st_mtime >= source.stat().st_mtime:
            try:
                with Image.open(previous) as im:
                    if im.size == (CROP_SIZE, CROP_SIZE):
                        outputs.keep_previous_image(name)
                        continue
            except (OSError, UnidentifiedImageError):
                pass
        with Image.open(source) as im:
            crop = im.crop((ox, oy, ox + CROP_SIZE, oy + CROP_SIZE))
            buffer = io.BytesIO()
            crop.save(buffer, format="PNG")
        outputs.write_image(name, buffer.getvalue())
