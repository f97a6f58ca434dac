"""Clump catalogues in RA/Dec (Adams et al. 2022, Mehta et al. 2021, the simulator's ``clumps.csv``) + the
galaxies' images -> COCO detection boxes (``astrodet convert clumps``).

Input: a clump table (CSV, or any table astropy reads: FITS, VOTable, ECSV) with one row per clump: a galaxy id
(``--id-col``; default the first of local_ids, local_id, galaxy_id, id, objid, ...), RA and Dec (``--ra-col``,
``--dec-col``; degrees or sexagesimal text, RA in hours), optionally a class (``--label-col``: 1 / 2, clump /
odd_clump, Clump Scout's clumpy / 'clumpy, odd') or an odd flag (``--odd-col``: 1 / 0, true / false: Adams'
'Unusual'); without either (and no ``label``/``unusual`` column) every row is a clump. Every other column (fluxes,
magnitudes, flags) is kept on the row's annotation. Images, one of:

- ``--fits DIR``: FITS with a celestial WCS, ``<id>.fits`` (a (C, H, W) cube with BAND1..BANDC, or one 2-D frame)
  or ``<id>_<band>.fits`` per band (``--bands`` picks and orders them; default every band found, ugrizy order),
  e.g. the simulator's ``fits_cutout/`` (``astrodet simulate --cutout-fits``) or its native ``fits/``. RA/Dec go
  through the WCS. Image records follow the FITS contract: ``file_name`` (the cube, or the first band's file),
  ``band_files``, ``bands``; boxes are in the FITS ARRAY frame (row 0 = the first row of the data, south for the
  simulator's files): nothing is flipped, so they are the PNG's boxes mirrored top to bottom.
- ``--images DIR`` with ``--galaxies CSV``: PNG/JPEG cutouts without WCS; the galaxies table gives each cutout's
  centre (ra, dec), pixel scale (``pixel_scale`` or ``--scale-col``, arcsec/px) and file (``filename``, else
  ``--pattern``, default ``{id}.png``, ``{id}.jpg``, ``{id}.jpeg``; ``{id:020d}`` zero-pads an integer id). The
  cutout is taken as centred on (ra, dec), TAN, north up and east left as SDSS cutouts are (``--north down`` /
  ``--east right`` otherwise). Boxes are in the PNG frame (row 0 at the top).

Box: a square centred on the clump, of side ``--box-factor`` (default 1.5, the simulator's
:data:`~astrodet.data.skyboxes.BOX_SIDE_PER_FWHM`) times a size: ``--size-col`` (per clump, ``--size-unit`` arcsec or
px) or the PSF FWHM in arcsec, looked up in order: ``--fwhm``; ``--fwhm-col`` or a psf_fwhm_arcsec-like column
of the clump table; the galaxies table's ``psf_fwhm_arcsec`` (or ``psf_fwhm_px`` x its ``pixel_scale``); the FITS
header's ``PSFFWHM`` (the r band's file; a cube's ``PSFFWHM<k>`` of its r channel). The simulator draws
``boxes.csv`` with exactly this rule (1.5 x r-band FWHM), so ``convert clumps`` on its ``clumps.csv`` gives
``convert clumpscout``'s boxes on its ``boxes.csv``.

Every clump row ends up in the output or in the rejects report (``<out_stem>_rejects.csv``) with one reason, in this
order: malformed_row, missing_value (id, RA or Dec empty), bad_coordinates, unknown_label, then its galaxy's:
galaxy_rejected (its galaxies-table row was rejected, e.g. by ``--galaxy-cut``), unknown_galaxy (images without WCS:
not in the galaxies table), missing_image, unreadable_image, no_wcs, mismatched_bands (band files of another shape,
WCS or band list); then missing_size / bad_size, outside_image (the box does not lie wholly inside the image),
masked_pixel (FITS: the pixel under the clump is NaN/inf in a band, masked or off the survey), duplicate (same
galaxy and box, to 1e-3 px, as an earlier kept row). Galaxies-table rows are reported too (malformed_row,
missing_value, duplicate, bad_value, cut:<cut>, or their image's reason) and counted on their own line. Every galaxy
with a usable image becomes an image, with or without boxes (galaxies of the galaxies table without clumps are the
negatives). ``--split`` splits by galaxy, stratified as ``convert clumpscout`` (clump count x odd-clump presence).
Placement helpers live in :mod:`astrodet.data.skyboxes`, images in :mod:`astrodet.data.clump_images`, tables in
:mod:`astrodet.data.clump_tables`, the row walk in :mod:`astrodet.data.clump_rows`.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astrodet import __version__
from astrodet.data.clump_images import FITS_PATTERNS, PICTURE_PATTERNS, FitsImages, PictureImages
from astrodet.data.clump_rows import RowChecks
from astrodet.data.clump_tables import read_galaxies, read_rows
from astrodet.data.clumpscout import galaxy_stratum
from astrodet.data.clumpscout_table import CATEGORIES
from astrodet.data.coco import CocoBuilder, category_counts, validate_coco
from astrodet.data.cuts import Cut, parse_cuts
from astrodet.data.rejects import ConversionSummary, RejectsLedger
from astrodet.data.skyboxes import BOX_SIDE_PER_FWHM, EAST, NORTH
from astrodet.data.splits import assign_splits
from astrodet.data.toolkit import (
    ConversionOutputs,
    ConverterOptions,
    build_options,
    optional_path,
    options_from_args,
    relative_to_json,
    write_conversion,
)
from astrodet.errors import AstrodetInputError

SIZE_UNITS = ("arcsec", "px")


@dataclass(kw_only=True)
class ClumpsOptions(ConverterOptions):
    """Options of ``astrodet convert clumps`` (field names = argparse dests), checked on construction."""

    fits_dir: Path | None = None  # FITS with WCS, <id>.fits or <id>_<band>.fits
    images_dir: Path | None = None  # PNG/JPEG cutouts (needs galaxies_csv: centre and pixel scale)
    galaxies_csv: Path | None = None
    pattern: str | None = None  # image file name pattern with {id} (and {band} for per-band FITS)
    bands: tuple[str, ...] = ()
    id_col: str | None = None
    ra_col: str | None = None
    dec_col: str | None = None
    label_col: str | None = None
    odd_col: str | None = None
    size_col: str | None = None
    size_unit: str = "arcsec"
    fwhm: float | None = None  # arcsec, for every clump
    fwhm_col: str | None = None  # clump-table column of the PSF FWHM in arcsec
    box_factor: float = BOX_SIDE_PER_FWHM
    scale_col: str | None = None  # galaxies-table column of the pixel scale
    north: str = "up"
    east: str = "left"
    galaxy_cuts: tuple[Cut, ...] = ()
    patterns: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.fits_dir, self.images_dir = optional_path(self.fits_dir), optional_path(self.images_dir)
        self.galaxies_csv = optional_path(self.galaxies_csv)
        if (self.fits_dir is None) == (self.images_dir is None):
            raise AstrodetInputError("give the images as either --fits DIR (with WCS) or --images DIR (PNG/JPEG)")
        if self.images_dir is not None and self.galaxies_csv is None:
            raise AstrodetInputError(
                "--images needs --galaxies CSV (each cutout's centre ra, dec and pixel_scale: PNGs carry no WCS)"
            )
        folder = self.fits_dir or self.images_dir
        if folder is not None and not folder.is_dir():
            raise AstrodetInputError(f"{folder}: images folder not found")
        checks = (
            (self.size_unit in SIZE_UNITS, f"--size-unit must be one of {', '.join(SIZE_UNITS)}"),
            (_positive(self.box_factor), f"--box-factor must be > 0, got {self.box_factor!r}"),
            (self.fwhm is None or _positive(self.fwhm), f"--fwhm must be > 0 arcsec, got {self.fwhm!r}"),
            (self.north in NORTH and self.east in EAST, "--north must be up or down and --east left or right"),
            (self.pattern is None or "{id" in self.pattern, f"--pattern must contain {{id}}, got {self.pattern!r}"),
            (self.label_col is None or self.odd_col is None, "give --label-col or --odd-col, not both"),
        )
        for ok, message in checks:
            if not ok:
                raise AstrodetInputError(message)
        self.bands = tuple(self.bands or ())
        self.galaxy_cuts = parse_cuts(self.galaxy_cuts or ())
        defaults = FITS_PATTERNS if self.fits_dir is not None else PICTURE_PATTERNS
        self.patterns = (self.pattern,) if self.pattern else defaults


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def convert_clumps(
    clumps: str | os.PathLike[str],
    out_json: str | os.PathLike[str],
    options: ClumpsOptions | None = None,
    **fields: Any,
) -> ConversionSummary:
    """Convert a RA/Dec clump catalogue plus images into COCO boxes (one file, or one per split) and a rejects
    report; see the module doc. ``options`` is a :class:`ClumpsOptions`, or give its fields as keywords
    (``fits_dir=Path``, ``galaxies_csv=Path``). Outputs are published as one unit and none may be an input; the
    images are referenced where they are (``file_name`` relative to the JSON), never copied."""
    opts = build_options(ClumpsOptions, options, fields, "convert_clumps")
    path = Path(clumps)
    outputs = ConversionOutputs(
        out_json, opts, inputs=[path, opts.galaxies_csv], input_folders=[opts.fits_dir or opts.images_dir]
    )
    with outputs:
        return _convert(path, outputs, opts)


def _convert(path: Path, outputs: ConversionOutputs, opts: ClumpsOptions) -> ConversionSummary:
    table = read_rows(path)
    ledger = RejectsLedger()
    galaxies = None
    if opts.galaxies_csv is not None:
        galaxies = read_galaxies(opts.galaxies_csv, opts.id_col, opts.scale_col, opts.galaxy_cuts, ledger)
    if opts.fits_dir is not None:
        source: FitsImages | PictureImages = FitsImages(opts.fits_dir, opts.patterns, opts.bands)
    else:
        assert opts.images_dir is not None
        source = PictureImages(opts.images_dir, opts.patterns, opts.north, opts.east)
    checks = RowChecks(table, opts, source, galaxies, ledger)
    checks.run()
    notes = [checks.galaxies_line()] if galaxies is not None else []
    conversion = {"rows_in": len(table.rows), "boxes_out": len(checks.kept), "rejected": ledger.counts(path)}
    datasets: dict[str | None, dict[str, Any]] = {}
    for name, group in _split_groups(opts, checks).items():
        info = {**_info(path, opts, checks.size_rule), "split": name, "conversion": conversion}
        datasets[name] = _build(outputs, checks, group, info)
        validate_coco(datasets[name], source=f"{outputs.out_json} ({name or 'all'})")
    return write_conversion(
        outputs,
        datasets,
        ledger,
        source=path,
        rows_in=len(table.rows),
        rows_out=len(checks.kept),
        out_label="boxes out",
        notes=notes,
    )


def _split_groups(opts: ClumpsOptions, checks: RowChecks) -> dict[str | None, list[str]]:
    """Galaxy ids per output file: all in one (key None), or per split, stratified like ``convert clumpscout``."""
    ordered = sorted(checks.images)
    if opts.split is None:
        return {None: ordered}
    strata = {}
    for galaxy in ordered:
        labels = [checks.kept[i].label for i in checks.kept_of.get(galaxy, [])]
        strata[galaxy] = galaxy_stratum(len(labels), 2 in labels)
    assignment = assign_splits(strata, opts.split, opts.seed)
    return {name: [g for g in ordered if assignment[g] == name] for name in opts.split}


def _build(outputs: ConversionOutputs, checks: RowChecks, galaxies: list[str], info: dict[str, Any]) -> dict[str, Any]:
    """One COCO dict: each galaxy's image record (FITS contract fields where FITS) and its kept boxes."""
    builder = CocoBuilder(info)
    for cid, name in CATEGORIES.items():
        builder.add_category(name, category_id=cid, supercategory="clump")
    out = outputs.out_json
    for galaxy in galaxies:
        image = checks.images[galaxy]
        extra: dict[str, Any] = {"galaxy_id": checks.galaxy_values.get(galaxy, galaxy), **image.fields}
        if image.bands is not None:
            extra["bands"] = image.bands
        if image.band_files is not None:
            extra["band_files"] = {b: relative_to_json(p, out) for b, p in image.band_files.items()}
        image_id = builder.add_image(relative_to_json(image.path, out), image.width, image.height, **extra)
        for i in checks.kept_of.get(galaxy, []):
            box = checks.kept[i]
            builder.add_annotation(image_id, box.bbox, box.label, source_row=box.number, **box.extra)
    data = builder.to_dict()
    data["info"]["counts"] = {
        "images": len(data["images"]),
        "images_without_boxes": len(data["images"]) - len({a["image_id"] for a in data["annotations"]}),
        "boxes": category_counts(data),
    }
    return data


def _info(path: Path, opts: ClumpsOptions, size_rule: str) -> dict[str, Any]:
    """Provenance: sources as given, options, the box rule and frame; no timestamp (reruns give identical files)."""
    return {
        "description": "RA/Dec clump catalogue placed on the galaxies' images, converted by astrodet",
        "converter": "astrodet.data.clumps",
        "astrodet_version": __version__,
        "sources": {
            "clumps": str(path),
            "galaxies_csv": str(opts.galaxies_csv) if opts.galaxies_csv else None,
            "fits_dir": str(opts.fits_dir) if opts.fits_dir else None,
            "images_dir": str(opts.images_dir) if opts.images_dir else None,
        },
        "options": {
            "patterns": list(opts.patterns),
            "bands": list(opts.bands) or None,
            "box_factor": opts.box_factor,
            "size_col": opts.size_col,
            "size_unit": opts.size_unit if opts.size_col else None,
            "fwhm_arcsec": opts.fwhm,
            "galaxy_cuts": [c.text for c in opts.galaxy_cuts],
            "orientation": None if opts.fits_dir else {"north": opts.north, "east": opts.east},
            "split": opts.split,
            "seed": opts.seed,
        },
        "box_rule": size_rule,
        "frame": "FITS array (row 0 = first data row, no flip)" if opts.fits_dir else "PNG (row 0 at the top)",
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``astrodet convert clumps`` (the shared --out/--split/... come from convert.py)."""
    parser.add_argument("--clumps", required=True, type=Path, metavar="TABLE", help="clump table: id, RA, Dec per row")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--fits", dest="fits_dir", type=Path, metavar="DIR", help="FITS with WCS: <id>[_<band>].fits")
    source.add_argument("--images", dest="images_dir", type=Path, metavar="DIR", help="PNG/JPEG cutouts (no WCS)")
    galaxies_help = "galaxies table: id, ra, dec, pixel_scale[, filename, psf_fwhm_arcsec]; needed with --images"
    parser.add_argument("--galaxies", dest="galaxies_csv", type=Path, metavar="TABLE", help=galaxies_help)
    pattern_help = "image file name with {id} or {id:SPEC} (and {band}), e.g. 'objID{id:020d}.jpg'"
    parser.add_argument("--pattern", help=pattern_help)
    parser.add_argument("--bands", nargs="+", default=(), help="FITS bands to use, in channel order")
    parser.add_argument("--id-col", help="galaxy id column of both tables (default local_ids, id, objid, ...)")
    parser.add_argument("--ra-col", help="clump RA column (default clump_ra, ra, ...)")
    parser.add_argument("--dec-col", help="clump Dec column (default clump_dec, dec, ...)")
    parser.add_argument("--label-col", help="class column: 1/2, clump/odd_clump (default: 'label' if present)")
    parser.add_argument("--odd-col", help="odd flag column, 1/0 or true/false (default: 'unusual'/'odd' if present)")
    parser.add_argument("--size-col", help="clump size column; box side = --box-factor x size")
    parser.add_argument("--size-unit", choices=SIZE_UNITS, default="arcsec", help="unit of --size-col (arcsec)")
    parser.add_argument("--fwhm", type=float, metavar="ARCSEC", help="PSF FWHM for every clump (arcsec)")
    parser.add_argument("--fwhm-col", help="clump-table PSF FWHM column in arcsec (default psf_fwhm_arcsec, ...)")
    factor_help = f"box side in sizes / PSF FWHMs (default {BOX_SIDE_PER_FWHM:g}, the simulator's rule)"
    parser.add_argument("--box-factor", type=float, default=BOX_SIDE_PER_FWHM, help=factor_help)
    parser.add_argument("--scale-col", help="galaxies-table pixel scale column, arcsec/px (default pixel_scale)")
    parser.add_argument("--north", choices=NORTH, default="up", help="--images: where north is (default up)")
    parser.add_argument("--east", choices=EAST, default="left", help="--images: where east is (default left)")
    cut_help = "galaxies-table cut, e.g. 'alignment_z > 3'; failing galaxies and their clumps are rejected"
    parser.add_argument("--galaxy-cut", action="append", dest="galaxy_cuts", metavar="EXPR", help=cut_help)


def run(args: argparse.Namespace) -> ConversionSummary:
    return convert_clumps(args.clumps, args.out, options_from_args(ClumpsOptions, args))
