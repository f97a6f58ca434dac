"""Walks the rows of a catalogue through the checks of ``astrodet convert catalog`` (see :mod:`astrodet.data.catalog`
for the order of reasons): ids, positions, classes, table cuts, the row's image (an existing cutout matched by name or
position, or one cut from FITS frames), then cuts on image-derived columns.

Kept apart from the options and the command line (:mod:`astrodet.data.catalog`) so the per-row logic reads on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from astrodet.data.cutouts import CutoutIndex, cut_bands, load_band, red_percent, scale_stack
from astrodet.data.cuts import Cut, CutReport, as_float
from astrodet.data.tables import Catalog
from astrodet.data.toolkit import ConversionOutputs, pick_column, relative_to_json, safe_stem
from astrodet.data.wholeimage import Record, array_image_bytes, copy_image, probe_image
from astrodet.errors import AstrodetInputError

if TYPE_CHECKING:
    from astrodet.data.catalog import CatalogOptions

RA_ALIASES = ("ra", "ra_deg", "radeg", "raj2000", "ra_icrs", "alpha_j2000", "ra_j2000")
DEC_ALIASES = ("dec", "dec_deg", "decdeg", "dej2000", "decj2000", "dec_icrs", "delta_j2000", "dec_j2000")
GLON_ALIASES = ("l", "glon", "gal_long", "lii")
GLAT_ALIASES = ("b", "glat", "gal_lat", "bii")
ID_ALIASES = ("id", "objid", "object_id", "source_id", "name", "pcc_id", "number")
DERIVED_COLUMNS = ("red_percent",)

# an image found for a row: (file name relative to the JSON, (width, height), image record fields)
Matched = tuple[str, tuple[int, int], dict[str, Any]]


def _column(columns: Sequence[str], given: str | None, aliases: Sequence[str]) -> str | None:
    index = pick_column(columns, aliases, given, where="the catalogue")
    return None if index is None else columns[index]


class CatalogRows:
    """One conversion run: resolves columns, walks the rows through each check, collects records and rejects."""

    def __init__(self, cat: Catalog, opts: CatalogOptions, outputs: ConversionOutputs) -> None:
        self.cat = cat
        self.opts = opts
        self.outputs = outputs
        self.out_json = outputs.out_json
        self.ledger = cat.ledger
        cfg = opts.config
        cols = cat.columns
        self.id_col = _column(cols, opts.id_col or cfg.get("id_column"), ID_ALIASES)
        galactic = opts.frame == "galactic"
        self.ra_col = _column(cols, opts.ra_col or cfg.get("ra_column"), GLON_ALIASES if galactic else RA_ALIASES)
        self.dec_col = _column(cols, opts.dec_col or cfg.get("dec_column"), GLAT_ALIASES if galactic else DEC_ALIASES)
        self.x_col = _column(cols, opts.x_col or cfg.get("x_column"), ())
        self.y_col = _column(cols, opts.y_col or cfg.get("y_column"), ())
        if (self.x_col is None) != (self.y_col is None):
            raise AstrodetInputError("give both --x-col and --y-col (pixel positions) or neither")
        if self.x_col is not None and not opts.fits:
            raise AstrodetInputError("pixel positions (--x-col/--y-col) need --fits images")
        if self.x_col is None and (self.ra_col is None or self.dec_col is None):
            kind = "l/b" if galactic else "RA/Dec"
            raise AstrodetInputError(
                f"{cat.path}: no {kind} columns found (columns: {', '.join(cols)}); name them with --ra-col/--dec-col"
            )
        self.mapping = opts.mapping
        label_col = opts.label_col or cfg.get("label_column")
        if self.mapping is None:
            if not label_col:
                raise AstrodetInputError("no classes: give --label-col or a --config with label_column/classes")
            _column(cols, label_col, ())  # refuses a column the catalogue does not have
        self.label_col = label_col
        needed = [c.column for c in opts.applied_cuts] + (self.mapping.columns if self.mapping else [])
        unknown = sorted({c for c in needed if c not in cols and c not in DERIVED_COLUMNS})
        if unknown:
            raise AstrodetInputError(f"cut/class column(s) {unknown} not in the catalogue; columns: {', '.join(cols)}")
        if "red_percent" in needed and opts.cutouts is None:
            raise AstrodetInputError("red_percent is computed from matched cutouts: it needs --cutouts")
        self.cut_report = CutReport()
        self.records: list[Record] = []

    def reject(self, i: int, reason: str, message: str) -> None:
        self.ledger.add(self.cat.path, self.cat.numbers[i], reason, message, self.cat.raw[i])

    def key_of(self, i: int) -> str:
        value = self.cat.rows[i].get(self.id_col) if self.id_col else None
        return str(value) if value is not None else f"row{self.cat.numbers[i]}"

    def _position(self, i: int) -> tuple[tuple[float, float] | None, str, str]:
        """``((ra, dec) or None when pixel positions are used, reason, message)``; ra/dec in ICRS degrees."""
        row = self.cat.rows[i]
        if self.x_col is not None:
            x, y = as_float(row.get(self.x_col)), as_float(row.get(self.y_col))
            if x is None or y is None:
                return None, "missing_coordinates", f"{self.x_col}/{self.y_col} missing or not numbers"
            return None, "", ""
        lon, lat = as_float(row.get(self.ra_col)), as_float(row.get(self.dec_col))
        if lon is None or lat is None:
            return None, "missing_coordinates", f"{self.ra_col}/{self.dec_col} missing or not numbers"
        if not (-360 <= lon <= 360 and -90 <= lat <= 90):
            return None, "bad_coordinates", f"{self.ra_col}={lon}, {self.dec_col}={lat} are not sky coordinates"
        if self.opts.frame != "icrs":
            from astropy import units as u
            from astropy.coordinates import SkyCoord

            icrs = SkyCoord(lon * u.deg, lat * u.deg, frame=self.opts.frame).icrs
            return (float(icrs.ra.deg), float(icrs.dec.deg)), "", ""
        return (lon % 360.0, lat), "", ""

    def _category(self, i: int) -> tuple[str | None, str, str]:
        row = self.cat.rows[i]
        if self.mapping is not None:
            return self.mapping.classify(row)
        value = row.get(self.label_col)
        if value is None:
            return None, "missing_label", f"{self.label_col} is empty"
        number = as_float(value)
        return (str(int(number)) if number is not None and number == int(number) else str(value)), "", ""

    def run(self) -> None:
        n = len(self.cat.rows)
        alive = list(range(n))
        seen: dict[str, int] = {}
        positions: dict[int, tuple[float, float] | None] = {}
        categories: dict[int, str] = {}
        survivors = []
        for i in alive:
            key = self.key_of(i)
            if key in seen:
                self.reject(i, "duplicate_id", f"id {key} already in row {seen[key]}")
                continue
            seen[key] = self.cat.numbers[i]
            pos, reason, message = self._position(i)
            if reason:
                self.reject(i, reason, message)
                continue
            positions[i] = pos
            survivors.append(i)
        self.cut_report.add("rows with ids and positions", n, n - len(survivors))
        before, alive, survivors = len(survivors), survivors, []
        for i in alive:
            category, reason, message = self._category(i)
            if category is None:
                self.reject(i, reason, message)
                continue
            categories[i] = category
            survivors.append(i)
        self.cut_report.add("class mapping (dropped / unknown classes)", before, before - len(survivors))
        # catalogue-only cuts first (cheap), then image matching, then cuts on image-derived columns
        table_cuts = [c for c in self.opts.applied_cuts if c.column not in DERIVED_COLUMNS]
        image_cuts = [c for c in self.opts.applied_cuts if c.column in DERIVED_COLUMNS]
        survivors = self._apply_cuts(survivors, table_cuts, {})
        derived: dict[int, dict[str, Any]] = {}
        matched = self._images(survivors, positions, derived)
        survivors = self._apply_cuts([i for i in survivors if i in matched], image_cuts, derived)
        for i in survivors:
            file_name, size, image_fields = matched[i]
            row = self.cat.rows[i]
            label_text = row.get(self.mapping.label_column) if self.mapping and self.mapping.label_column else None
            annotation = {
                "label_text": label_text if label_text is not None else row.get(self.label_col),
                "catalog": {k: v for k, v in row.items() if v is not None},
                **derived.get(i, {}),
            }
            fields = dict(image_fields)
            pos = positions[i]
            if pos is not None:
                fields.setdefault("ra", round(pos[0], 7))
                fields.setdefault("dec", round(pos[1], 7))
            if self.opts.pixel_scale is not None:
                fields.setdefault("pixel_scale", self.opts.pixel_scale)
            self.records.append(
                Record(
                    self.key_of(i), categories[i], self.cat.numbers[i], file_name, size[0], size[1], fields, annotation
                )
            )

    def _apply_cuts(self, alive: list[int], cuts: Sequence[Cut], derived: Mapping[int, Mapping[str, Any]]) -> list[int]:
        for cut in cuts:
            kept, missing = [], 0
            for i in alive:
                value = derived.get(i, {}).get(cut.column, self.cat.rows[i].get(cut.column))
                problem = cut.check(value)
                if problem is None:
                    kept.append(i)
                    continue
                missing += as_float(value) is None and not isinstance(cut.value, str)
                self.reject(i, cut.reason, problem)
            self.cut_report.add(f"cut {cut.text}", len(alive), len(alive) - len(kept), missing)
            alive = kept
        return alive

    # image sources ------------------------------------------------------------------------------------------------

    def _images(
        self, alive: list[int], positions: Mapping[int, tuple[float, float] | None], derived: dict[int, dict[str, Any]]
    ) -> dict[int, Matched]:
        if self.opts.cutouts is not None:
            return self._match_cutouts(alive, positions, derived)
        if self.opts.fits:
            return self._fits_cutouts(alive, positions)
        raise AstrodetInputError("no images: give --cutouts DIR, --fits FILE ... or --npz FILE")

    def _match_cutouts(
        self, alive: list[int], positions: Mapping[int, tuple[float, float] | None], derived: dict[int, dict[str, Any]]
    ) -> dict[int, Matched]:
        opts = self.opts
        assert opts.cutouts is not None
        pattern = opts.pattern or self.opts.config.get("name_pattern")
        if not pattern:
            raise AstrodetInputError("--cutouts needs --pattern (e.g. 'sdss_ra={ra}_dec={dec}.png') or name_pattern")
        index = CutoutIndex(opts.cutouts, pattern, self.ra_col, self.dec_col)
        if opts.match == "coords" and not index.can_match_coords:
            raise AstrodetInputError(f"--match coords: no file in {opts.cutouts} matches {pattern!r} with a position")
        unknown = [f for f in index.fields if f not in self.cat.columns]
        if unknown and opts.match != "coords":
            raise AstrodetInputError(f"--pattern {pattern!r} names column(s) {unknown} not in the catalogue")
        writing = opts.copy_images or opts.centre_crop is not None or opts.resize is not None
        taken: dict[str, int] = {}
        out: dict[int, Matched] = {}
        for i in alive:
            name = index.by_name(self.cat.raw[i]) if opts.match in ("auto", "name") else None
            why = f"no file named {_safe_format(pattern, self.cat.raw[i])} in {opts.cutouts}"
            pos = positions.get(i)
            if name is None and opts.match in ("auto", "coords") and pos is not None and index.can_match_coords:
                name, why = index.by_coords(pos[0], pos[1], opts.match_radius)
            if name is None:
                self.reject(i, "ambiguous_image" if why.startswith("ambiguous") else "missing_image", why)
                continue
            if name in taken:
                self.reject(i, "shared_image", f"{name} already matched to row {taken[name]}")
                continue
            source = opts.cutouts / name
            reason, message, size, _ = probe_image(source)
            if reason is not None or size is None:
                self.reject(i, reason or "unreadable_image", message)
                continue
            if opts.centre_crop is not None and min(size) < opts.centre_crop:
                self.reject(i, "image_too_small", f"{name} is {size[0]}x{size[1]} < --centre-crop {opts.centre_crop}")
                continue
            taken[name] = self.cat.numbers[i]
            if any(c.column == "red_percent" for c in opts.applied_cuts):
                derived[i] = {"red_percent": red_percent(source)}
            fields: dict[str, Any] = {"source_file_name": relative_to_json(source, self.out_json)}
            if writing:
                file_name, size = copy_image(
                    self.outputs, source, safe_stem(self.key_of(i)), crop=opts.centre_crop, resize=opts.resize
                )
            else:
                file_name = relative_to_json(source, self.out_json)
                fields = {}
            if opts.bands:
                fields["bands"] = list(opts.bands)
            out[i] = (file_name, (int(size[0]), int(size[1])), fields)
        return out

    def _fits_cutouts(
        self, alive: list[int], positions: Mapping[int, tuple[float, float] | None]
    ) -> dict[int, Matched]:
        from astropy.wcs.utils import proj_plane_pixel_scales

        opts = self.opts
        names = list(opts.bands) or [p.stem for p in opts.fits]
        if len(names) != len(opts.fits):
            raise AstrodetInputError(f"--bands names {len(names)} bands for {len(opts.fits)} --fits files")
        bands = [load_band(p, n, opts.hdu) for p, n in zip(opts.fits, names, strict=True)]
        if self.x_col is None and any(b.wcs is None for b in bands):
            missing = [str(b.path) for b in bands if b.wcs is None]
            raise AstrodetInputError(f"no celestial WCS in {missing}: give pixel columns with --x-col/--y-col")
        if self.x_col is not None and len({b.data.shape for b in bands}) > 1:
            raise AstrodetInputError("pixel positions need every band on the same pixel grid (same image shape)")
        fmt = opts.output_format
        if fmt == "auto":
            fmt = "png" if opts.scale != "none" and len(bands) in (1, 3) else "npy"
        if fmt == "png" and opts.scale == "none":
            raise AstrodetInputError("--output-format png needs a scaling (lupton, asinh or minmax), not --scale none")
        suffix = {"png": ".png", "npy": ".npy", "fits": ".fits"}[fmt]
        size = opts.size
        out: dict[int, Matched] = {}
        for i in alive:
            row, pos = self.cat.rows[i], positions.get(i)
            if self.x_col is not None:  # 1-based FITS / SExtractor pixels -> 0-based
                stack, wcs0, reason, problem = cut_bands(
                    bands,
                    size,
                    pixel=(float(row[self.x_col]) - 1.0, float(row[self.y_col]) - 1.0),
                    allow_partial=opts.allow_partial,
                )
            else:
                assert pos is not None
                stack, wcs0, reason, problem = cut_bands(bands, size, sky=pos, allow_partial=opts.allow_partial)
            if reason or stack is None:
                self.reject(i, reason, problem)
                continue
            fields: dict[str, Any] = {"bands": names}
            if wcs0 is not None:
                fields["pixel_scale"] = round(float(proj_plane_pixel_scales(wcs0)[0]) * 3600.0, 6)
            if fmt == "fits":
                header = wcs0.to_header() if wcs0 is not None else None
                data = array_image_bytes(scale_stack(stack, opts.scale, opts.stretch, opts.q), "fits", header)
            else:
                scaled = scale_stack(stack[::-1], opts.scale, opts.stretch, opts.q)  # north up, as PNGs are shown
                if fmt == "png" and scaled.dtype != np.uint8:
                    scaled = np.round(scaled * 255.0).astype(np.uint8)
                data = array_image_bytes(scaled, fmt)
            file_name = self.outputs.write_image(f"{safe_stem(self.key_of(i))}{suffix}", data)
            out[i] = (file_name, (size, size), fields)
        return out


def _safe_format(pattern: str, raw: Mapping[str, str]) -> str:
    try:
        return pattern.format(**raw)
    except (KeyError, IndexError, ValueError):
        return pattern


