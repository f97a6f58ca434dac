"""Survey source lists -> whole-image classification COCO (``astrodet convert catalog``).

A catalogue (CSV, FITS table, VOTable, ECSV or whitespace/fixed-width text, read with ``astropy.table``; or the
Perseus Cluster Catalogue's headerless text, ``format: pcc``) gives positions and a label per source. Cutouts come
from one of three places:

- ``--cutouts DIR``: existing cutout files matched by name (``--pattern 'sdss_ra={ra}_dec={dec}.png'``: each
  ``{column}`` is the row's text in that column) or by coordinates (RA/Dec parsed from the file names with the same
  pattern, nearest within ``--match-radius`` arcsec). ``--match auto`` tries the name first. The COCO file points at
  the originals, or at copies in ``<out_stem>_images/`` with ``--copy-images`` (bytes kept; the extension fixed to
  the real format: the Perseus SDSS "PNGs" are JPEG) or ``--centre-crop``/``--resize`` (PNG).
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
tables; 1-based row index for FITS and VOTable tables. Readers live in :mod:`astrodet.data.tables`, the row walk in
:mod:`astrodet.data.catalog_rows`, cutout sources in :mod:`astrodet.data.cutouts`.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astrodet import __version__
from astrodet.data.catalog_rows import CatalogRows
from astrodet.data.cutouts import SCALES
from astrodet.data.cuts import ClassMapping, Cut, build_mapping, load_config, parse_cuts
from astrodet.data.npzcutouts import NpzOptions, convert_npz
from astrodet.data.rejects import ConversionSummary
from astrodet.data.tables import read_table
from astrodet.data.toolkit import ConversionOutputs, ConverterOptions, build_options, optional_path, options_from_args
from astrodet.data.wholeimage import balance_records, finish
from astrodet.errors import AstrodetInputError

OUTPUT_FORMATS = ("auto", "png", "npy", "fits")
MATCH_MODES = ("auto", "name", "coords")
FRAMES = ("icrs", "fk5", "galactic")


@dataclass(kw_only=True)
class CatalogOptions(ConverterOptions):
    """Options of ``astrodet convert catalog`` (field names = argparse dests), checked on construction.

    ``config`` may be given as a path (YAML/JSON, read here) or a dict; ``cuts`` are extra ``'COLUMN OP VALUE'``
    cuts applied after the config's, ``skip_cuts`` names columns whose config cuts are left out. What they resolve
    to is ``applied_cuts`` and ``mapping``.
    """

    fmt: str | None = None  # astropy table format or 'pcc'; default from the config or the suffix
    config: dict[str, Any] = field(default_factory=dict)
    cuts: tuple[Cut, ...] = ()
    skip_cuts: tuple[str, ...] = ()
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
    centre_crop: int | None = None
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
    applied_cuts: tuple[Cut, ...] = field(init=False)  # the config's cuts (less skip_cuts), then cuts
    mapping: ClassMapping | None = field(init=False)  # the config's classes
    config_file: Path | None = field(init=False, default=None)  # the config's path when given as one (an input)

    def __post_init__(self) -> None:
        super().__post_init__()
        config = self.config or {}
        if isinstance(config, str | os.PathLike):
            self.config_file = Path(config)
        self.config = load_config(config) if isinstance(config, str | os.PathLike) else dict(config)
        self.cuts = parse_cuts(self.cuts or ())
        self.skip_cuts = tuple(self.skip_cuts or ())
        config_cuts = parse_cuts(self.config.get("cuts"))
        unknown_skips = sorted(set(self.skip_cuts) - {c.column for c in config_cuts})
        if unknown_skips:
            raise AstrodetInputError(f"--skip-cut {unknown_skips}: the config has no cut on that column")
        self.applied_cuts = tuple(c for c in config_cuts if c.column not in self.skip_cuts) + self.cuts
        self.mapping = build_mapping(self.config, source="selection config")
        self.cutouts = optional_path(self.cutouts)
        self.fits = tuple(Path(p) for p in self.fits or ())
        self.bands = tuple(self.bands or ())
        if self.cutouts is not None and self.fits:
            raise AstrodetInputError("give either --cutouts or --fits, not both")
        checks = (
            (self.match in MATCH_MODES, f"--match must be one of {MATCH_MODES}"),
            (self.scale in SCALES, f"--scale must be one of {SCALES}"),
            (self.output_format in OUTPUT_FORMATS, f"--output-format must be one of {OUTPUT_FORMATS}"),
            (self.size > 0, "--size must be a positive number of pixels"),
            (self.match_radius > 0, "--match-radius must be > 0 arcsec"),
            (self.centre_crop is None or self.centre_crop > 0, "--centre-crop must be > 0"),
            (self.resize is None or self.resize > 0, "--resize must be > 0"),
            (self.pixel_scale is None or self.pixel_scale > 0, "--pixel-scale must be > 0 arcsec/px"),
            (self.frame in FRAMES, "--frame must be icrs, fk5 or galactic"),
        )
        for ok, message in checks:
            if not ok:
                raise AstrodetInputError(message)


def convert_catalog(
    catalog: str | os.PathLike[str],
    out_json: str | os.PathLike[str],
    options: CatalogOptions | None = None,
    **fields: Any,
) -> ConversionSummary:
    """Convert a catalogue plus cutouts (existing or cut from FITS) into classification COCO; see the module doc.

    ``options`` is a :class:`CatalogOptions`, or give its fields as keywords (``config=Path``, ``copy_images=True``).
    """
    opts = build_options(CatalogOptions, options, fields, "convert_catalog")
    path = Path(catalog)
    outputs = ConversionOutputs(
        out_json,
        opts,
        inputs=[path, opts.config_file, *opts.fits],
        input_folders=[opts.cutouts],
        writes_images=bool(opts.fits) or opts.copy_images or opts.centre_crop is not None or opts.resize is not None,
    )
    with outputs:
        return _convert(path, outputs, opts)


def _convert(path: Path, outputs: ConversionOutputs, opts: CatalogOptions) -> ConversionSummary:
    fmt = opts.fmt or opts.config.get("format")
    cat = read_table(path, fmt, opts.config.get("numeric_columns"))
    rows = CatalogRows(cat, opts, outputs)
    rows.run()
    records = rows.records
    if opts.balance:
        records = balance_records(records, opts.seed, rows.ledger, str(path))
        rows.cut_report.add(
            "class balance (downsample to the smallest class)", len(rows.records), len(rows.records) - len(records)
        )
    categories = list(opts.mapping.categories) if opts.mapping is not None else sorted({r.category for r in records})
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
        "selection": rows.cut_report.steps,
    }
    notes = [f"selection: {line}" for line in rows.cut_report.lines()]
    return finish(outputs, opts, records, categories, info, rows.ledger, source=path, rows_in=cat.rows_in, notes=notes)


def _options_info(opts: CatalogOptions, fmt: str | None) -> dict[str, Any]:
    return {
        "format": fmt,
        "config": opts.config,
        "cuts": [c.text for c in opts.applied_cuts],
        "match": opts.match if opts.cutouts else None,
        "pattern": opts.pattern or opts.config.get("name_pattern") if opts.cutouts else None,
        "match_radius_arcsec": opts.match_radius if opts.cutouts else None,
        "copy_images": opts.copy_images,
        "centre_crop": opts.centre_crop,
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
    crop_help = "write the central NxN crop of each cutout"
    parser.add_argument("--centre-crop", "--center-crop", dest="centre_crop", type=int, metavar="N", help=crop_help)
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
        return convert_npz(args.npz, args.out, options_from_args(NpzOptions, args))
    return convert_catalog(args.catalog, args.out, options_from_args(CatalogOptions, args))
