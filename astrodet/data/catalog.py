"""Survey source lists -> whole-image classification COCO (``astrodet convert catalog``).

A catalogue (CSV, FITS table, VOTable, ECSV or whitespace/fixed-width text, read with ``astropy.table``; or the
Perseus Cluster Catalogue's headerless text, ``format: pcc``) gives positions and a label per source. Cutouts come
from one of three places:

- ``--cutouts DIR``: existing cutout files matched by name (``--pattern 'sdss_ra={ra}_dec={dec}.png'``: each
  ``{column}`` is the row's text in that column) or by coordinates (RA/Dec parsed from the file names with the same
  pattern, nearest within ``--match-radius`` arcsec). ``--match auto`` tries the name first. The COCO file points at
  the originals, or at copies in ``<out_stem>_images/`` with ``--copy-images`` (bytes kept; the extension fixed to
  the real format: the Perseus SDSS "PNGs" are JPEG) or ``--center-crop``/``--resize`` (PNG).
- ``--fits BAND.fits ...``: one 2-D image per band with a celestial WCS (or pixel columns, ``--x-col/--y-col``, 1-based
  as SExtractor writes them); centred ``--size`` cutouts with astropy's ``Cutout2D``, scaled by ``--scale`` (lupton:
  3 bands -> RGB asinh; asinh: per band 99.5 % interval + asinh; minmax: per band to [0, 1]; none: raw values) and
  written as PNG (3 or 1 bands, uint8), ``.npy`` (float32, H x W x bands) or FITS (bands x H x W, with the cutout WCS).
  Arrays are stored north up (row 0 at the top, as PNGs are); FITS cutouts keep FITS row order and their WCS.
- ``--npz FILE``: arrays of cutouts and labels (``X_<name>`` with ``y_<name>``, e.g. the DeepShadows sample);
  see :func:`astrodet.data.npzcutouts.convert_npz`.

A selection config (YAML/JSON, :mod:`astrodet.data.cuts`) maps labels to classes, drops some, and applies cuts in
order; ``--cut`` adds more. The column ``red_percent`` (share of strongly red pixels, the Perseus recipe's "remove
red objects" HSV mask) is computed from matched cutouts when a cut uses it. ``--balance`` downsamples every class to
the smallest. Every catalogue row ends up converted or rejected with one reason, in this order: malformed_line (pcc
text), duplicate_id, missing_coordinates / bad_coordinates, missing_label / dropped_class / unknown_class,
missing_image / ambiguous_image / shared_image / unreadable_image, outside_image / partial_cutout, cut:<cut>, then
balanced_out. Row numbers: line numbers for headerless text; data row + 1 (the header is row 1) for other text
tables; 1-based row index for FITS and VOTable tables. Readers live in :mod:`astrodet.data.tables`, cutout sources
in :mod:`astrodet.data.cutouts`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from astrodet import __version__
from astrodet.data.cutouts import SCALES, CutoutIndex, cut_bands, load_band, red_percent, scale_stack
from astrodet.data.cuts import ClassMapping, Cut, CutReport, as_float, build_mapping, load_config, parse_cuts
from astrodet.data.rejects import ConversionSummary
from astrodet.data.tables import Catalog, read_table
from astrodet.data.wholeimage import (
    Record,
    balance_records,
    finish,
    images_dir_for,
    parse_split,
    probe_image,
    relative_to_json,
    safe_stem,
    write_array_image,
    write_image_copy,
)
from astrodet.errors import AstrodetInputError

RA_ALIASES = ("ra", "ra_deg", "radeg", "raj2000", "ra_icrs", "alpha_j2000", "ra_j2000")
DEC_ALIASES = ("dec", "dec_deg", "decdeg", "dej2000", "decj2000", "dec_icrs", "delta_j2000", "dec_j2000")
GLON_ALIASES = ("l", "glon", "gal_long", "lii")
GLAT_ALIASES = ("b", "glat", "gal_lat", "bii")
ID_ALIASES = ("id", "objid", "object_id", "source_id", "name", "pcc_id", "number")
DERIVED_COLUMNS = ("red_percent",)
OUTPUT_FORMATS = ("auto", "png", "npy", "fits")
MATCH_MODES = ("auto", "name", "coords")


def _pick(columns: Sequence[str], given: str | None, aliases: Sequence[str]) -> str | None:
    if given:
        if given not in columns:
            raise AstrodetInputError(f"column {given!r} is not in the catalogue; columns: {', '.join(columns)}")
        return given
    lowered = {c.lower(): c for c in columns}
    return next((lowered[a] for a in aliases if a in lowered), None)


# --- conversion --------------------------------------------------------------------------------------------------


@dataclass
class CatalogOptions:
    """Everything ``convert_catalog`` needs besides the catalogue: resolved, checked settings."""

    out_json: Path
    fmt: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    cuts: tuple[Cut, ...] = ()
    mapping: ClassMapping | None = None
    label_col: str | None = None
    id_col: str | None = None
    ra_col: str | None = None
    dec_col: str | None = None
    x_col: str | None = None
    y_col: str | None = None
    frame: str = "icrs"
    cutouts: Path | None = None
    pattern: str | None = None
    match: str = "auto"
    match_radius: float = 1.0
    copy_images: bool = False
    center_crop: int | None = None
    resize: int | None = None
    fits: tuple[Path, ...] = ()
    bands: tuple[str, ...] = ()
    hdu: int | None = None
    size: int = 64
    scale: str = "lupton"
    stretch: float = 5.0
    q: float = 8.0
    output_format: str = "auto"
    allow_partial: bool = False
    pixel_scale: float | None = None
    balance: bool = False
    split: dict[str, float] | None = None
    seed: int = 0
    rejects_csv: Path | None = None


class _Converter:
    """One conversion run: resolves columns, walks the rows through each check, collects records and rejects."""

    def __init__(self, cat: Catalog, opts: CatalogOptions) -> None:
        self.cat = cat
        self.opts = opts
        self.ledger = cat.ledger
        cfg = opts.config
        cols = cat.columns
        self.id_col = _pick(cols, opts.id_col or cfg.get("id_column"), ID_ALIASES)
        galactic = opts.frame == "galactic"
        self.ra_col = _pick(cols, opts.ra_col or cfg.get("ra_column"), GLON_ALIASES if galactic else RA_ALIASES)
        self.dec_col = _pick(cols, opts.dec_col or cfg.get("dec_column"), GLAT_ALIASES if galactic else DEC_ALIASES)
        self.x_col = _pick(cols, opts.x_col or cfg.get("x_column"), ())
        self.y_col = _pick(cols, opts.y_col or cfg.get("y_column"), ())
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
            _pick(cols, label_col, ())
        self.label_col = label_col
        needed = [c.column for c in opts.cuts] + (self.mapping.columns if self.mapping else [])
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
        table_cuts = [c for c in self.opts.cuts if c.column not in DERIVED_COLUMNS]
        image_cuts = [c for c in self.opts.cuts if c.column in DERIVED_COLUMNS]
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
    ) -> dict[int, tuple[str, tuple[int, int], dict[str, Any]]]:
        if self.opts.cutouts is not None:
            return self._match_cutouts(alive, positions, derived)
        if self.opts.fits:
            return self._fits_cutouts(alive, positions)
        raise AstrodetInputError("no images: give --cutouts DIR, --fits FILE ... or --npz FILE")

    def _match_cutouts(
        self, alive: list[int], positions: Mapping[int, tuple[float, float] | None], derived: dict[int, dict[str, Any]]
    ) -> dict[int, tuple[str, tuple[int, int], dict[str, Any]]]:
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
        write_dir = images_dir_for(opts.out_json)
        writing = opts.copy_images or opts.center_crop is not None or opts.resize is not None
        taken: dict[str, int] = {}
        out: dict[int, tuple[str, tuple[int, int], dict[str, Any]]] = {}
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
            if opts.center_crop is not None and min(size) < opts.center_crop:
                self.reject(i, "image_too_small", f"{name} is {size[0]}x{size[1]} < --center-crop {opts.center_crop}")
                continue
            taken[name] = self.cat.numbers[i]
            if any(c.column == "red_percent" for c in opts.cuts):
                derived[i] = {"red_percent": red_percent(source)}
            fields: dict[str, Any] = {"source_file_name": relative_to_json(source, opts.out_json)}
            if writing:
                target, size = write_image_copy(
                    source, write_dir, safe_stem(self.key_of(i)), crop=opts.center_crop, resize=opts.resize
                )
            else:
                target = source
                fields = {}
            if opts.bands:
                fields["bands"] = list(opts.bands)
            out[i] = (relative_to_json(target, opts.out_json), (int(size[0]), int(size[1])), fields)
        return out

    def _fits_cutouts(
        self, alive: list[int], positions: Mapping[int, tuple[float, float] | None]
    ) -> dict[int, tuple[str, tuple[int, int], dict[str, Any]]]:
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
        write_dir = images_dir_for(opts.out_json)
        size = opts.size
        out: dict[int, tuple[str, tuple[int, int], dict[str, Any]]] = {}
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
            target = write_dir / f"{safe_stem(self.key_of(i))}{suffix}"
            if fmt == "fits":
                header = wcs0.to_header() if wcs0 is not None else None
                write_array_image(target, scale_stack(stack, opts.scale, opts.stretch, opts.q), "fits", header)
            else:
                scaled = scale_stack(stack[::-1], opts.scale, opts.stretch, opts.q)  # north up, as PNGs are shown
                if fmt == "png" and scaled.dtype != np.uint8:
                    scaled = np.round(scaled * 255.0).astype(np.uint8)
                write_array_image(target, scaled, fmt)
            out[i] = (relative_to_json(target, opts.out_json), (size, size), fields)
        return out


def _safe_format(pattern: str, raw: Mapping[str, str]) -> str:
    try:
        return pattern.format(**raw)
    except (KeyError, IndexError, ValueError):
        return pattern


def convert_catalog(
    catalog: str | os.PathLike[str], out_json: str | os.PathLike[str], **options: Any
) -> ConversionSummary:
    """Convert a catalogue plus cutouts (existing or cut from FITS) into classification COCO; see the module doc.

    ``options`` are the fields of :class:`CatalogOptions` (``config`` may be a path or a dict; ``cuts`` strings are
    added after the config's cuts; ``skip_cuts`` names columns whose config cuts are left out; ``split`` a string or
    mapping).
    """
    path = Path(catalog)
    config = options.pop("config", None) or {}
    config = load_config(config) if isinstance(config, str | os.PathLike) else dict(config)
    extra_cuts = parse_cuts(options.pop("cuts", None) or ())
    skip = set(options.pop("skip_cuts", None) or ())
    config_cuts = parse_cuts(config.get("cuts"))
    unknown_skips = sorted(skip - {c.column for c in config_cuts})
    if unknown_skips:
        raise AstrodetInputError(f"--skip-cut {unknown_skips}: the config has no cut on that column")
    cuts = tuple(c for c in config_cuts if c.column not in skip) + extra_cuts
    mapping = build_mapping(config, source="selection config")
    split = parse_split(options.pop("split", None))
    opts = CatalogOptions(out_json=Path(out_json), config=config, cuts=cuts, mapping=mapping, split=split, **options)
    _check_options(opts)
    fmt = opts.fmt or config.get("format")
    cat = read_table(path, fmt, config.get("numeric_columns"))
    conv = _Converter(cat, opts)
    conv.run()
    records = conv.records
    if opts.balance:
        records = balance_records(records, opts.seed, conv.ledger, str(path))
        conv.cut_report.add(
            "class balance (downsample to the smallest class)", len(conv.records), len(conv.records) - len(records)
        )
    categories = list(mapping.categories) if mapping is not None else sorted({r.category for r in records})
    info = {
        "description": "Catalogue sources as whole-image classification cutouts, converted by astrodet",
        "converter": "astrodet.data.catalog",
        "astrodet_version": __version__,
        "sources": {
            "catalog": str(path),
            "cutouts": str(opts.cutouts) if opts.cutouts else None,
            "fits": [str(p) for p in opts.fits] or None,
        },
        "options": _options_info(opts, fmt),
        "selection": conv.cut_report.steps,
    }
    notes = [f"selection: {line}" for line in conv.cut_report.lines()]
    return finish(
        out_json=opts.out_json,
        records=records,
        categories=categories,
        info=info,
        ledger=conv.ledger,
        source=path,
        rows_in=cat.rows_in,
        split=opts.split,
        seed=opts.seed,
        rejects_csv=opts.rejects_csv,
        notes=notes,
    )


def _check_options(opts: CatalogOptions) -> None:
    if opts.cutouts is not None and opts.fits:
        raise AstrodetInputError("give either --cutouts or --fits, not both")
    checks = (
        (opts.match in MATCH_MODES, f"--match must be one of {MATCH_MODES}"),
        (opts.scale in SCALES, f"--scale must be one of {SCALES}"),
        (opts.output_format in OUTPUT_FORMATS, f"--output-format must be one of {OUTPUT_FORMATS}"),
        (opts.size > 0, "--size must be a positive number of pixels"),
        (opts.match_radius > 0, "--match-radius must be > 0 arcsec"),
        (opts.center_crop is None or opts.center_crop > 0, "--center-crop must be > 0"),
        (opts.resize is None or opts.resize > 0, "--resize must be > 0"),
        (opts.pixel_scale is None or opts.pixel_scale > 0, "--pixel-scale must be > 0 arcsec/px"),
        (opts.frame in ("icrs", "fk5", "galactic"), "--frame must be icrs, fk5 or galactic"),
    )
    for ok, message in checks:
        if not ok:
            raise AstrodetInputError(message)


def _options_info(opts: CatalogOptions, fmt: str | None) -> dict[str, Any]:
    return {
        "format": fmt,
        "config": opts.config,
        "cuts": [c.text for c in opts.cuts],
        "match": opts.match if opts.cutouts else None,
        "pattern": opts.pattern or opts.config.get("name_pattern") if opts.cutouts else None,
        "match_radius_arcsec": opts.match_radius if opts.cutouts else None,
        "copy_images": opts.copy_images,
        "center_crop": opts.center_crop,
        "resize": opts.resize,
        "size": opts.size if opts.fits else None,
        "scale": opts.scale if opts.fits else None,
        "bands": list(opts.bands) or None,
        "balance": opts.balance,
        "split": opts.split,
        "seed": opts.seed,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``astrodet convert catalog`` (the shared --out/--split/--seed/... come from convert.py)."""
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--catalog", type=Path, metavar="FILE", help="source list: CSV, FITS, VOTable, ECSV, text")
    src.add_argument("--npz", type=Path, metavar="FILE", help="arrays X_<name> (cutouts) with y_<name> (labels)")
    parser.add_argument("--format", dest="fmt", help="astropy table format, or 'pcc' (default: from the config/suffix)")
    parser.add_argument("--config", type=Path, metavar="FILE", help="selection config (YAML/JSON): classes, cuts")
    parser.add_argument("--cut", action="append", dest="cuts", metavar="EXPR", help="extra cut, e.g. 'mag < 19.4'")
    parser.add_argument(
        "--skip-cut", action="append", dest="skip_cuts", metavar="COLUMN", help="leave out the config's cuts on COLUMN"
    )
    parser.add_argument("--label-col", help="label column (its values are the classes unless --config maps them)")
    parser.add_argument("--id-col", help="object id column (default: id/objid/name/...; else the row number)")
    parser.add_argument("--ra-col", help="RA (or l with --frame galactic) column")
    parser.add_argument("--dec-col", help="Dec (or b) column")
    parser.add_argument("--x-col", help="pixel x column (1-based, as SExtractor's X_IMAGE); with --fits")
    parser.add_argument("--y-col", help="pixel y column (1-based); with --fits")
    parser.add_argument("--frame", default="icrs", help="frame of the position columns: icrs (default), fk5, galactic")
    parser.add_argument("--cutouts", type=Path, metavar="DIR", help="folder of existing cutouts")
    parser.add_argument("--pattern", help="cutout file name pattern, e.g. 'sdss_ra={ra}_dec={dec}.png'")
    parser.add_argument("--match", choices=MATCH_MODES, default="auto", help="match cutouts by name, coords or both")
    parser.add_argument("--match-radius", type=float, default=1.0, help="arcsec, for --match coords (default 1)")
    parser.add_argument("--copy-images", action="store_true", help="copy matched cutouts beside the output")
    parser.add_argument("--center-crop", type=int, metavar="N", help="write the central NxN crop of each cutout")
    parser.add_argument("--resize", type=int, metavar="N", help="write each cutout resized to NxN")
    parser.add_argument("--fits", type=Path, nargs="+", default=(), metavar="FILE", help="one FITS image per band")
    parser.add_argument("--bands", nargs="+", default=(), help="band names in channel order, bluest first")
    parser.add_argument("--hdu", type=int, help="FITS HDU index of the image (default: the first with data)")
    parser.add_argument("--size", type=int, default=64, help="cutout side in pixels (default 64, DeepShadows)")
    parser.add_argument("--scale", choices=SCALES, default="lupton", help="pixel scaling of FITS cutouts")
    parser.add_argument("--stretch", type=float, default=5.0, help="Lupton stretch (default 5)")
    parser.add_argument("--q", type=float, default=8.0, help="Lupton Q (default 8)")
    parser.add_argument("--output-format", choices=OUTPUT_FORMATS, default="auto", help="cutout file format")
    parser.add_argument("--allow-partial", action="store_true", help="keep cutouts reaching off the image (0-filled)")
    parser.add_argument("--pixel-scale", type=float, help="arcsec/px of existing cutouts, recorded on each image")
    parser.add_argument("--balance", action="store_true", help="downsample every class to the smallest one")
    parser.add_argument("--classes", nargs="+", help="--npz: class names for labels 0, 1, ...")


def run(args: argparse.Namespace) -> ConversionSummary:
    if args.npz is not None:
        from astrodet.data.npzcutouts import convert_npz

        return convert_npz(
            args.npz, args.out, classes=args.classes, split=args.split, seed=args.seed, rejects_csv=args.rejects
        )
    return convert_catalog(
        args.catalog,
        args.out,
        fmt=args.fmt,
        config=args.config,
        cuts=args.cuts,
        skip_cuts=args.skip_cuts,
        label_col=args.label_col,
        id_col=args.id_col,
        ra_col=args.ra_col,
        dec_col=args.dec_col,
        x_col=args.x_col,
        y_col=args.y_col,
        frame=args.frame,
        cutouts=args.cutouts,
        pattern=args.pattern,
        match=args.match,
        match_radius=args.match_radius,
        copy_images=args.copy_images,
        center_crop=args.center_crop,
        resize=args.resize,
        fits=tuple(args.fits),
        bands=tuple(args.bands),
        hdu=args.hdu,
        size=args.size,
        scale=args.scale,
        stretch=args.stretch,
        q=args.q,
        output_format=args.output_format,
        allow_partial=args.allow_partial,
        pixel_scale=args.pixel_scale,
        balance=args.balance,
        split=args.split,
        seed=args.seed,
        rejects_csv=args.rejects,
    )
