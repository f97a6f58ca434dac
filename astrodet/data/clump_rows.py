"""The row walk of ``astrodet convert clumps``: each clump row's first failing reason (the order is
:mod:`astrodet.data.clumps`' module doc), its galaxy's image, and the box it gets.

Why grouped by galaxy: an image is opened (and decoded in full) once per galaxy, and RA/Dec -> pixels is one
vectorised WCS call per galaxy, so a catalogue of 100,000 clumps costs one pass over its images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from astrodet.data.clump_images import FitsImages, GalaxyImage, ImageProblem, PictureImages
from astrodet.data.clump_tables import (
    DEC_ALIASES,
    FWHM_ALIASES,
    ID_ALIASES,
    LABEL_ALIASES,
    ODD_ALIASES,
    RA_ALIASES,
    GalaxyTable,
    Rows,
    id_text,
    parse_label,
    position,
)
from astrodet.data.clumpscout import RESERVED_ANNOTATION_KEYS
from astrodet.data.cuts import as_float
from astrodet.data.rejects import RejectsLedger
from astrodet.data.skyboxes import boxes_inside, centre_pixels_masked, sky_to_coco, square_boxes
from astrodet.data.toolkit import id_value, short_number

if TYPE_CHECKING:
    from astrodet.data.clumps import ClumpsOptions

DUPLICATE_DECIMALS = 3


@dataclass(frozen=True)
class KeptBox:
    """A converted clump row: its row number, category, COCO box and the table's other values."""

    number: int
    label: int
    bbox: tuple[float, float, float, float]
    extra: dict[str, Any]


@dataclass(frozen=True)
class Pending:
    """A clump row whose own fields parsed, waiting for its galaxy's image."""

    index: int
    ra: float
    dec: float
    label: int


class RowChecks:
    """Walks the clump table once: :meth:`run` fills ``kept`` (boxes), ``kept_of`` (galaxy -> indices into
    ``kept``), ``images`` (galaxy -> usable image) and records every other row in ``ledger``."""

    def __init__(
        self,
        table: Rows,
        opts: ClumpsOptions,
        source: FitsImages | PictureImages,
        galaxies: GalaxyTable | None,
        ledger: RejectsLedger,
    ) -> None:
        self.table, self.opts, self.source, self.galaxies, self.ledger = table, opts, source, galaxies, ledger
        self.id_col = table.column(ID_ALIASES, opts.id_col, "galaxy id", required=True)
        self.ra_col = table.column(RA_ALIASES, opts.ra_col, "RA", required=True)
        self.dec_col = table.column(DEC_ALIASES, opts.dec_col, "Dec", required=True)
        self.label_mode, self.label_col = self._label_column()
        self.size_col = table.column((), opts.size_col, "size") if opts.size_col else None
        self.fwhm_col = table.column(FWHM_ALIASES, opts.fwhm_col, "PSF FWHM") if self.size_col is None else None
        self.kept: list[KeptBox] = []
        self.kept_of: dict[str, list[int]] = {}
        self.images: dict[str, GalaxyImage] = {}
        self.galaxy_values: dict[str, Any] = {}
        self._problems: dict[str, ImageProblem] = {}
        self._galaxies_used = 0

    def _label_column(self) -> tuple[str | None, str | None]:
        opts, table = self.opts, self.table
        if opts.label_col or opts.odd_col:
            mode = "label" if opts.label_col else "odd"
            return mode, table.column((), opts.label_col or opts.odd_col, f"{mode} column")
        for mode, aliases in (("label", LABEL_ALIASES), ("odd", ODD_ALIASES)):
            name = table.column(aliases, None, mode)
            if name is not None:
                return mode, name
        return None, None  # every row is a clump

    @property
    def size_rule(self) -> str:
        factor = f"{self.opts.box_factor:g}"
        if self.size_col:
            return f"square of side {factor} x {self.size_col} ({self.opts.size_unit}), centred on the clump"
        sources = [f"--fwhm {self.opts.fwhm:g}"] if self.opts.fwhm else []
        sources += [f"clump column {self.fwhm_col}"] if self.fwhm_col else []
        sources += ["galaxies table psf_fwhm_arcsec (or psf_fwhm_px x pixel_scale)", "FITS header PSFFWHM (r band)"]
        return f"square of side {factor} x PSF FWHM (arcsec, first of: {'; '.join(sources)}) / pixel scale"

    def _reject(self, i: int, reason: str, message: str) -> None:
        self.ledger.add(self.table.path, self.table.numbers[i], reason, message, self.table.texts[i])

    # --- the walk ----------------------------------------------------------------------------------------------

    def run(self) -> None:
        pending: dict[str, list[Pending]] = {}
        for i, row in enumerate(self.table.rows):
            if row is None:
                got = self.table.widths[i]
                self._reject(i, "malformed_row", f"expected {len(self.table.columns)} fields, got {got}")
                continue
            galaxy = id_text(row.get(self.id_col))
            if not galaxy:
                self._reject(i, "missing_value", f"{self.id_col} is empty")
                continue
            where = position(row, self.ra_col, self.dec_col)
            if isinstance(where[0], str):
                self._reject(i, where[0], str(where[1]))
                continue
            label = 1 if self.label_mode is None else parse_label(row.get(self.label_col), self.label_mode)
            if label is None:
                expected = "1/2 or clump/odd_clump" if self.label_mode == "label" else "1/0, true/false or yes/no"
                got = row.get(self.label_col)
                self._reject(i, "unknown_label", f"{self.label_col} must be {expected}, got {got!r}")
                continue
            pending.setdefault(galaxy, []).append(Pending(i, float(where[0]), float(where[1]), label))
        self._open_table_galaxies()
        for galaxy in sorted(pending):
            image = self._image(galaxy)
            if isinstance(image, ImageProblem):
                for item in pending[galaxy]:
                    self._reject(item.index, image.reason, image.message)
                continue
            self._place(galaxy, image, pending[galaxy])

    def _open_table_galaxies(self) -> None:
        """Open every galaxies-table galaxy's image (clump-free ones become negatives); a failure is that row's."""
        if self.galaxies is None:
            return
        picture = isinstance(self.source, PictureImages)
        for galaxy, meta in sorted(self.galaxies.galaxies.items()):
            lacking = [k for k in ("ra", "dec", "pixel_scale") if getattr(meta, k) is None]
            if picture and lacking:
                message = f"{', '.join(lacking)} empty or missing: a cutout without WCS needs its centre and scale"
                self.ledger.add(self.galaxies.path, meta.number, "missing_value", message)
                self._problems[galaxy] = ImageProblem(
                    "galaxy_rejected", f"{self.galaxies.path.name} row {meta.number}: {message}"
                )
                continue
            image = self._image(galaxy)
            if isinstance(image, ImageProblem):
                self.ledger.add(self.galaxies.path, meta.number, image.reason, image.message)
            else:
                self._galaxies_used += 1

    def _image(self, galaxy: str) -> GalaxyImage | ImageProblem:
        if galaxy in self.images:
            return self.images[galaxy]
        if galaxy not in self._problems:
            try:
                self.images[galaxy] = self._open(galaxy)
                self.galaxy_values[galaxy] = id_value(galaxy)
                return self.images[galaxy]
            except ImageProblem as problem:
                self._problems[galaxy] = problem
        return self._problems[galaxy]

    def _open(self, galaxy: str) -> GalaxyImage:
        table = self.galaxies
        if table is not None and galaxy in table.rejected:
            reason, message = table.rejected[galaxy]
            raise ImageProblem("galaxy_rejected", f"galaxy {galaxy} was rejected ({reason}): {message}")
        if isinstance(self.source, FitsImages):
            return self.source.open(galaxy)
        meta = table.galaxies.get(galaxy) if table is not None else None
        if meta is None or meta.ra is None or meta.dec is None or meta.pixel_scale is None:
            where = table.path.name if table is not None else "the galaxies table"
            raise ImageProblem("unknown_galaxy", f"galaxy {galaxy} is not in {where}: its cutout's centre is unknown")
        return self.source.open(galaxy, meta.file_name, meta.ra, meta.dec, meta.pixel_scale)

    # --- placing the boxes of one galaxy ----------------------------------------------------------------------

    def _sides(self, galaxy: str, image: GalaxyImage, items: list[Pending]) -> list[float | tuple[str, str]]:
        """Box side in px per row, or (reason, message)."""
        scale = float(image.fields["pixel_scale"])
        meta = self.galaxies.galaxies.get(galaxy) if self.galaxies is not None else None
        sides: list[float | tuple[str, str]] = []
        for item in items:
            row = self.table.rows[item.index] or {}
            if self.size_col:
                size = as_float(row.get(self.size_col))
                if row.get(self.size_col) is None:
                    sides.append(("missing_size", f"{self.size_col} is empty"))
                elif size is None or size <= 0:
                    message = f"{self.size_col} must be a positive number of {self.opts.size_unit}"
                    sides.append(("bad_size", f"{message}, got {row.get(self.size_col)!r}"))
                else:
                    px = size if self.opts.size_unit == "px" else size / scale
                    sides.append(self.opts.box_factor * px)
                continue
            column = as_float(row.get(self.fwhm_col)) if self.fwhm_col else None
            if self.fwhm_col and row.get(self.fwhm_col) is not None and (column is None or column <= 0):
                message = f"{self.fwhm_col} must be a positive FWHM in arcsec, got {row[self.fwhm_col]!r}"
                sides.append(("bad_size", message))
                continue
            fwhm = self.opts.fwhm or column or (meta.fwhm_arcsec if meta else None) or image.fwhm_arcsec
            if fwhm is None:
                sides.append(("missing_size", "no PSF FWHM: give --fwhm, a FWHM column, or a FITS PSFFWHM header"))
            else:
                sides.append(self.opts.box_factor * fwhm / scale)
        return sides

    def _place(self, galaxy: str, image: GalaxyImage, items: list[Pending]) -> None:
        sides = self._sides(galaxy, image, items)
        sized = [k for k, side in enumerate(sides) if not isinstance(side, tuple)]
        for k, side in enumerate(sides):
            if isinstance(side, tuple):
                self._reject(items[k].index, *side)
        if not sized:
            return
        ra = np.array([items[k].ra for k in sized])
        dec = np.array([items[k].dec for k in sized])
        x, y = sky_to_coco(image.wcs, ra, dec)
        boxes = square_boxes(x, y, np.array([sides[k] for k in sized], dtype=float))
        inside = boxes_inside(boxes, image.width, image.height)
        masked = centre_pixels_masked(image.data, x, y) if image.data is not None else np.zeros(len(sized), bool)
        first_row: dict[tuple[float, ...], int] = {}
        with np.errstate(invalid="ignore", over="ignore"):
            rounded = np.round(boxes, DUPLICATE_DECIMALS)
        for j, k in enumerate(sized):
            item = items[k]
            bx, by, bw, bh = (float(v) for v in boxes[j])
            if not inside[j]:
                span = f"x {_px(bx)}..{_px(bx + bw)}, y {_px(by)}..{_px(by + bh)}"
                self._reject(
                    item.index,
                    "outside_image",
                    f"box {span} (RA/Dec through the WCS) is not inside the {image.width}x{image.height} image "
                    f"{image.path.name}",
                )
                continue
            if masked[j]:
                self._reject(
                    item.index, "masked_pixel", f"the pixel under the clump ({_px(x[j])}, {_px(y[j])}) is NaN/inf"
                )
                continue
            key = tuple(rounded[j].tolist())
            if key in first_row:
                number = self.table.numbers[first_row[key]]
                self._reject(
                    item.index, "duplicate", f"same galaxy and box (to 1e-{DUPLICATE_DECIMALS} px) as row {number}"
                )
                continue
            first_row[key] = item.index
            self.kept_of.setdefault(galaxy, []).append(len(self.kept))
            self.kept.append(KeptBox(self.table.numbers[item.index], item.label, (bx, by, bw, bh), self._extra(item)))

    def _extra(self, item: Pending) -> dict[str, Any]:
        """The row's table values for its annotation (a COCO key is stored as ``table_<name>``)."""
        row = self.table.rows[item.index] or {}
        return {(f"table_{k}" if k in RESERVED_ANNOTATION_KEYS else k): v for k, v in row.items()}

    def galaxies_line(self) -> str:
        """The galaxies table's own accounting: rows in = used + rejected (by reason)."""
        assert self.galaxies is not None
        path = self.galaxies.path
        line = self.ledger.summary(self.galaxies.rows_in, self._galaxies_used, file=path, out_label="used")
        return f"{path}: {line}"


def _px(value: float) -> str:
    return short_number(value, ".2f")
