"""The source rows of ``astrodet convert field``: which columns give positions, classes and box sizes, each row
checked into a :class:`Source` or a reject, and the box rule (see :mod:`astrodet.data.field` for the rules in words).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from astrodet.data.catalog_rows import DEC_ALIASES, GLAT_ALIASES, GLON_ALIASES, ID_ALIASES, RA_ALIASES
from astrodet.data.rejects import RejectsLedger
from astrodet.data.tables import Catalog
from astrodet.data.toolkit import pick_column
from astrodet.errors import AstrodetInputError

if TYPE_CHECKING:
    from astrodet.data.field import FieldOptions

DEFAULT_ELLIPSE_SCALE = 3.0


@dataclass
class Source:
    """One accepted row before the frames: where it is, what it is and its size rule's numbers."""

    index: int  # row index in the catalogue
    key: str
    category: str
    position: tuple[float, float]  # pixel (0-based centre) or sky (lon, lat degrees)
    shape: tuple[float, ...]


class FieldColumns:
    """The catalogue columns of one run, resolved once (given names are checked, SExtractor names found)."""

    def __init__(self, cat: Catalog, opts: FieldOptions) -> None:
        cols = cat.columns

        def find(given: str | None, aliases: tuple[str, ...] = ()) -> str | None:
            index = pick_column(cols, aliases, given, where=str(cat.path))
            return None if index is None else cols[index]

        self.id = find(opts.id_col, ID_ALIASES)
        x, y = find(opts.x_col, ("x_image",)), find(opts.y_col, ("y_image",))
        galactic = opts.frame == "galactic" or (
            opts.frame is None and find(None, RA_ALIASES) is None and find(None, GLON_ALIASES) is not None
        )
        lon = find(opts.ra_col, GLON_ALIASES if galactic else RA_ALIASES)
        lat = find(opts.dec_col, GLAT_ALIASES if galactic else DEC_ALIASES)
        self.frame = opts.frame or ("galactic" if galactic else "icrs")
        explicit_sky = opts.ra_col is not None or opts.dec_col is not None
        pixel_ok = x is not None and y is not None and len(opts.fits) == 1
        self.pixel = pixel_ok and not explicit_sky
        if opts.x_col is not None and len(opts.fits) != 1:
            raise AstrodetInputError(f"pixel positions (--x-col) need exactly one --fits frame, got {len(opts.fits)}")
        if not self.pixel and (lon is None or lat is None):
            raise AstrodetInputError(
                f"{cat.path}: no position columns (X_IMAGE/Y_IMAGE with one frame, RA/Dec or l/b) among "
                f"{', '.join(cols)}; name them with --x-col/--y-col or --ra-col/--dec-col"
            )
        self.position = (x, y) if self.pixel else (lon, lat)
        self.category = find(opts.class_col)
        a, b = find(opts.a_col, ("a_image",)), find(opts.b_col, ("b_image",))
        theta = find(opts.theta_col, ("theta_image",))
        x2, y2 = find(None, ("x2_image",)), find(None, ("y2_image",))
        kron = find(opts.kron_col, ("kron_radius",)) if opts.ellipse_scale is None else None
        if opts.box_size is not None:
            self.rule, self.shape = "fixed", ()
        elif opts.size_col is not None:
            self.rule, self.shape = "size", (find(opts.size_col),)
        elif a is not None and b is not None and theta is not None:
            self.rule, self.shape = "ellipse", (a, b, theta, kron)
        elif x2 is not None and y2 is not None:
            self.rule, self.shape = "moments", (x2, y2, kron)
        else:
            raise AstrodetInputError(
                f"{cat.path}: no box size: give --box-size, --size-col, or shape columns (A_IMAGE, B_IMAGE, "
                "THETA_IMAGE or X2_IMAGE, Y2_IMAGE; --a-col/--b-col/--theta-col)"
            )
        if self.rule == "moments" and opts.size_unit != "px":
            raise AstrodetInputError("second moments (X2_IMAGE, Y2_IMAGE) are px^2: --size-unit arcsec does not apply")

    def describe(self, opts: FieldOptions) -> str:
        """The box rule in words, for ``info.rules`` and the summary."""
        scale = self.shape[-1] if self.rule in ("ellipse", "moments") and self.shape[-1] else None
        k = f"k = {scale}" if scale else f"k = {opts.ellipse_scale or DEFAULT_ELLIPSE_SCALE}"
        unit = opts.size_unit
        if self.rule == "fixed":
            return f"a fixed {opts.box_size} px square"
        if self.rule == "size":
            return f"a square of side {self.shape[0]} ({unit})"
        if self.rule == "ellipse":
            return f"the axis-aligned box of the ellipse {k} x ({', '.join(map(str, self.shape[:3]))}) ({unit})"
        return f"half-sides k sqrt({self.shape[0]}), k sqrt({self.shape[1]}), {k}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def accept_rows(cat: Catalog, cols: FieldColumns, opts: FieldOptions, ledger: RejectsLedger) -> list[Source]:
    """The rows with a position, a class and a positive size; the others go to the ledger with their reason."""
    sources: list[Source] = []
    for i, row in enumerate(cat.rows):

        def reject(reason: str, message: str, row_index: int = i) -> None:
            ledger.add(cat.path, cat.numbers[row_index], reason, message, cat.raw[row_index])

        position = tuple(_number(row[c]) for c in cols.position)
        if None in position:
            bad = [c for c, v in zip(cols.position, position, strict=True) if v is None]
            reject("missing_position", f"{', '.join(str(c) for c in bad)}: empty, not a number or not finite")
            continue
        category = opts.category
        if cols.category is not None:
            if row[cols.category] is None:
                reject("missing_class", f"{cols.category} is empty")
                continue
            category = str(row[cols.category])
        shape_cols = [c for c in cols.shape if c is not None]
        shape = tuple(_number(row[c]) for c in shape_cols)
        if None in shape:
            bad = [c for c, v in zip(shape_cols, shape, strict=True) if v is None]
            reject("missing_size", f"{', '.join(bad)}: empty, not a number or not finite")
            continue
        positive = [c for c in shape_cols if c != (cols.shape[2] if cols.rule == "ellipse" else None)]
        bad = [c for c in positive if row[c] <= 0]
        if bad:
            reject("non_positive_size", f"{', '.join(f'{c} = {row[c]}' for c in bad)}: sizes must be > 0")
            continue
        if opts.pixel_origin == 1 and cols.pixel:
            position = (position[0] - 1.0, position[1] - 1.0)
        key = str(row[cols.id]) if cols.id is not None and row[cols.id] is not None else f"row{cat.numbers[i]}"
        sources.append(Source(i, key, category, position, shape))  # type: ignore[arg-type]
    return sources


def half_sides(source: Source, cols: FieldColumns, opts: FieldOptions, per_px: float) -> tuple[float, float]:
    """Half-width and half-height of the source's box in px; ``per_px`` converts its size unit to px."""
    if cols.rule == "fixed":
        return opts.box_size / 2, opts.box_size / 2  # type: ignore[operator]
    if cols.rule == "size":
        return source.shape[0] * per_px / 2, source.shape[0] * per_px / 2
    k = source.shape[-1] if cols.shape[-1] is not None else (opts.ellipse_scale or DEFAULT_ELLIPSE_SCALE)
    if cols.rule == "moments":
        return k * math.sqrt(source.shape[0]), k * math.sqrt(source.shape[1])
    a, b, theta = source.shape[0] * per_px, source.shape[1] * per_px, math.radians(source.shape[2])
    c2, s2 = math.cos(theta) ** 2, math.sin(theta) ** 2
    return k * math.sqrt(a * a * c2 + b * b * s2), k * math.sqrt(a * a * s2 + b * b * c2)
