"""Source lists over wide FITS frames -> COCO detection tiles (``astrodet convert field``).

Input: a source list (SExtractor catalogue, or any table astropy reads: CSV, FITS, VOTable, ECSV, text) and one or
more FITS frames (2-D, or (C, H, W) cubes with BAND1..BANDC). Output: overlapping tiles of ``--tile-size`` px cut
with SAHI's slicing (the same cut ``astrodet predict`` makes), each a FITS file (the frame's pixels and its WCS sliced
by astropy) and, with ``--png lupton|asinh``, an 8-bit PNG; one box per source per tile. Tiles without sources are
kept: they are the negatives that purity needs.

Rules (each recorded in ``info.rules`` of the COCO files):

- *Positions*: pixel columns (``--x-col/--y-col``, default SExtractor's X_IMAGE/Y_IMAGE) are 1-based FITS pixels
  (``--pixel-origin 1``: pixel (1, 1) is the centre of the first pixel, as SExtractor writes them); ``--pixel-origin
  0`` takes numpy/astropy 0-based centres. They need exactly one frame. Sky columns (``--ra-col/--dec-col``) are
  degrees in ``--frame`` (any astropy frame name: icrs, fk5, galactic, ...; by default icrs for RA/Dec columns and
  galactic for l/b), projected through each frame's celestial WCS. With one frame and both kinds present, pixels win.
- *Box sizes*, the first that applies: ``--box-size S`` (an S x S box); ``--size-col`` (a square of that side);
  an ellipse ``A, B, THETA`` (``--a-col/--b-col/--theta-col``, SExtractor's A_IMAGE/B_IMAGE/THETA_IMAGE: THETA in
  degrees counter-clockwise from the frame's +x axis) scaled by ``k`` -> the axis-aligned box of the ellipse with
  semi-axes kA, kB: half-width ``k sqrt(A^2 cos^2 T + B^2 sin^2 T)``, half-height ``k sqrt(A^2 sin^2 T + B^2 cos^2
  T)``; or the second moments X2_IMAGE, Y2_IMAGE (the same box: half-width ``k sqrt(X2)``, half-height ``k
  sqrt(Y2)``). ``k`` is the row's KRON_RADIUS (``--kron-col``; SExtractor's Kron ellipse) or ``--ellipse-scale``
  (default 3). ``--size-unit arcsec`` reads sizes in arcsec, converted with each frame's pixel scale.
- *Frames*: a source belongs to every frame whose pixel grid holds its centre; its box is clipped to the frame.
- *Tile edges*: a box is kept in every tile that holds at least ``--min-visible`` (default 0.5) of its on-frame
  area, clipped to the tile (``truncated`` and ``visible_fraction`` are recorded on the annotation). Smaller pieces
  are left unlabelled; an object larger than the tile overlap can miss every tile: it is rejected, not lost.
- *Splits*: with ``--split``, each frame is first cut into disjoint regions of about ``--region-size`` px (default
  twice the tile size); every region goes wholly to one split (stratified by its number of sources) and tiles are
  cut inside regions only, so overlapping tiles never put the same pixels in train and test. Objects on a region
  boundary are truncated there like at a tile edge. Frames that overlap on the sky are not compared: give such
  pointings as one mosaic, or convert them separately.

Every row ends converted or rejected with one reason, checked in this order: missing_position, missing_class,
missing_size, non_positive_size, outside_frames, masked_centre (NaN pixel at the centre in every frame holding it),
not_in_any_tile. Row numbers follow :mod:`astrodet.data.tables`. Tile pixels and files: :mod:`~.field_tiles`.
"""

from __future__ import annotations

import argparse
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from astrodet import __version__
from astrodet.data.coco import CocoBuilder, validate_coco
from astrodet.data.field_rows import DEFAULT_ELLIPSE_SCALE, FieldColumns, Source, accept_rows, half_sides
from astrodet.data.field_tiles import (
    PNG_MODES,
    FieldFrame,
    PngRenderer,
    Window,
    area,
    clip_box,
    finite_fraction,
    frame_stems,
    load_frame,
    regions,
    tile_centre_icrs,
    tile_fits_bytes,
    tiles_of,
)
from astrodet.data.rejects import ConversionSummary, RejectsLedger
from astrodet.data.splits import assign_splits
from astrodet.data.tables import Catalog, read_table
from astrodet.data.toolkit import (
    ConversionOutputs,
    ConverterOptions,
    build_options,
    options_from_args,
    write_conversion,
)
from astrodet.errors import AstrodetInputError
from astrodet.inference.tiling import DEFAULT_OVERLAP

SIZE_UNITS = ("px", "arcsec")


@dataclass(kw_only=True)
class FieldOptions(ConverterOptions):
    """Options of ``astrodet convert field`` (field names = argparse dests), checked on construction."""

    fits: tuple[Path, ...] = ()
    fmt: str | None = None
    hdu: int | None = None
    id_col: str | None = None
    x_col: str | None = None
    y_col: str | None = None
    pixel_origin: int = 1
    ra_col: str | None = None
    dec_col: str | None = None
    frame: str | None = None  # None: icrs for RA/Dec columns, galactic for l/b
    box_size: float | None = None
    size_col: str | None = None
    a_col: str | None = None
    b_col: str | None = None
    theta_col: str | None = None
    kron_col: str | None = None
    ellipse_scale: float | None = None
    size_unit: str = "px"
    class_col: str | None = None
    category: str = "source"
    tile_size: int = 256
    tile_overlap: float = DEFAULT_OVERLAP
    min_visible: float = 0.5
    region_size: int | None = None
    png: str = "none"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.fits = tuple(Path(p) for p in self.fits or ())
        checks = (
            (bool(self.fits), "give the frames with --fits FILE ..."),
            (self.pixel_origin in (0, 1), "--pixel-origin must be 0 or 1"),
            (self.box_size is None or self.box_size > 0, "--box-size must be > 0 px"),
            (self.ellipse_scale is None or self.ellipse_scale > 0, "--ellipse-scale must be > 0"),
            (self.size_unit in SIZE_UNITS, f"--size-unit must be one of {SIZE_UNITS}"),
            (self.tile_size >= 8, "--tile-size must be at least 8 px"),
            (0 <= self.tile_overlap < 1, "--tile-overlap must be a fraction of the tile side in [0, 1)"),
            (0 < self.min_visible <= 1, "--min-visible must be a fraction in (0, 1]"),
            (self.region_size is None or self.region_size >= self.tile_size, "--region-size must be >= --tile-size"),
            (self.png in PNG_MODES, f"--png must be one of {PNG_MODES}"),
            (bool(self.category), "--category must be a non-empty name"),
        )
        for ok, message in checks:
            if not ok:
                raise AstrodetInputError(message)
        if self.split is not None and self.region_size is None:
            self.region_size = 2 * self.tile_size


@dataclass
class _Placed:
    """A source on one frame: its box (array frame, clipped to the frame)."""

    source: int  # index into the sources list
    box: tuple[float, float, float, float]


def _centres(frame: FieldFrame, sources: list[Source], cols: FieldColumns) -> np.ndarray:
    """(N, 2) COCO-frame centres (0-based pixel centre + 0.5) of every source on ``frame``; NaN where it does not
    project."""
    if not sources:
        return np.zeros((0, 2))
    positions = np.array([s.position for s in sources], dtype=float)
    if cols.pixel:
        return positions + 0.5
    if frame.wcs is None:
        raise AstrodetInputError(
            f"--fits {frame.path}: no celestial WCS, so sky positions cannot be placed; give pixel columns "
            "(--x-col/--y-col, one frame)"
        )
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    try:
        sky = SkyCoord(positions[:, 0] * u.deg, positions[:, 1] * u.deg, frame=cols.frame)
    except (ValueError, TypeError) as err:
        raise AstrodetInputError(f"--frame {cols.frame}: not a usable astropy frame ({err})") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # positions far outside a projection: NaN, handled below
        x, y = frame.wcs.world_to_pixel(sky)
    return np.stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)], axis=1) + 0.5


def _place(
    frames: list[FieldFrame], sources: list[Source], cols: FieldColumns, opts: FieldOptions, cat: Catalog,
    ledger: RejectsLedger,
) -> tuple[dict[int, list[_Placed]], list[int]]:  # fmt: skip
    """Each source's box on every frame holding its centre; sources on no frame (or only on NaN) are rejected."""
    placed: dict[int, list[_Placed]] = {f.index: [] for f in frames}
    centres = [_centres(f, sources, cols) for f in frames]
    alive = []
    for k, source in enumerate(sources):
        inside, masked = [], []
        for frame, xy in zip(frames, centres, strict=True):
            cx, cy = xy[k]
            if not (math.isfinite(cx) and math.isfinite(cy) and 0 <= cx < frame.width and 0 <= cy < frame.height):
                continue
            if not np.isfinite(frame.data[:, int(cy), int(cx)]).all():
                masked.append(frame.path.name)
                continue
            per_px = 1.0 if opts.size_unit == "px" else 1.0 / frame.pixel_scale  # type: ignore[operator]
            half_w, half_h = half_sides(source, cols, opts, per_px)
            whole = Window(0, 0, frame.width, frame.height)
            box = clip_box((float(cx - half_w), float(cy - half_h), float(cx + half_w), float(cy + half_h)), whole)
            assert box is not None  # the centre is on the frame
            inside.append((frame.index, _Placed(k, box)))
        row = source.index
        if inside:
            for index, item in inside:
                placed[index].append(item)
            alive.append(k)
        elif masked:
            message = f"its centre is on a NaN (masked) pixel of {', '.join(masked)}"
            ledger.add(cat.path, cat.numbers[row], "masked_centre", message, cat.raw[row])
        else:
            where = ", ".join(f"{f.path.name} ({f.width}x{f.height})" for f in frames)
            text = "pixel ({:.1f}, {:.1f})".format(*centres[0][k]) if cols.pixel else f"{cols.frame} position"
            ledger.add(cat.path, cat.numbers[row], "outside_frames", f"{text} is on none of {where}", cat.raw[row])
    return placed, alive


@dataclass
class _Tile:
    frame: FieldFrame
    window: Window
    region: str
    boxes: list[tuple[_Placed, tuple[float, float, float, float], float]] = field(default_factory=list)


def _tiles(frames: list[FieldFrame], placed: dict[int, list[_Placed]], opts: FieldOptions) -> tuple[list[_Tile], int]:
    """Every tile with finite pixels and the boxes the edge rule keeps in it; the count of all-NaN tiles left out."""
    tiles, empty = [], 0
    for frame in frames:
        boxes = placed[frame.index]
        arr = np.array([p.box for p in boxes], dtype=float).reshape(-1, 4)
        for r, region in enumerate(regions(frame.width, frame.height, opts.region_size)):
            for window in tiles_of(region, opts.tile_size, opts.tile_overlap):
                if finite_fraction(frame, window) == 0:
                    empty += 1
                    continue
                tile = _Tile(frame, window, f"{frame.index}:{r}")
                across = (arr[:, 0] < window.x1) & (arr[:, 2] > window.x0)
                near = np.flatnonzero(across & (arr[:, 1] < window.y1) & (arr[:, 3] > window.y0))
                for j in near:
                    clipped = clip_box(boxes[j].box, window)
                    if clipped is not None:
                        visible = area(clipped) / area(boxes[j].box)
                        if visible >= opts.min_visible - 1e-9:
                            tile.boxes.append((boxes[j], clipped, visible))
                tiles.append(tile)
    return tiles, empty


def _split(tiles: list[_Tile], opts: FieldOptions) -> dict[str | None, list[_Tile]]:
    """All tiles in one file, or per split by region (stratified by the region's number of boxes)."""
    if opts.split is None:
        return {None: tiles}
    counts: dict[str, int] = {}
    for tile in tiles:
        counts[tile.region] = counts.get(tile.region, 0) + len(tile.boxes)
    strata = {region: "0" if n == 0 else "1-9" if n < 10 else "10+" for region, n in counts.items()}
    assignment = assign_splits(strata, opts.split, opts.seed)
    return {name: [t for t in tiles if assignment[t.region] == name] for name in opts.split}


def _write_tiles(outputs: ConversionOutputs, tiles: list[_Tile], opts: FieldOptions) -> dict[int, dict[str, Any]]:
    """Write every tile's FITS (and PNG); per tile, its image record fields (file names, geometry, sky)."""
    frames = list({id(t.frame): t.frame for t in tiles}.values())
    stems = dict(zip((f.index for f in frames), frame_stems(frames), strict=True))
    renderers = {f.index: PngRenderer(f, opts.png) for f in frames} if opts.png != "none" else {}
    records: dict[int, dict[str, Any]] = {}
    for k, tile in enumerate(tiles):
        frame, window = tile.frame, tile.window
        name = f"{stems[frame.index]}_x{window.x0}_y{window.y0}"
        fits_name = outputs.write_image(f"{name}.fits", tile_fits_bytes(frame, window))
        fields: dict[str, Any] = {"file_name": fits_name}
        if renderers:
            fields = {"file_name": outputs.write_image(f"{name}.png", renderers[frame.index].png(window)),
                      "fits_file_name": fits_name}  # fmt: skip
        centre = tile_centre_icrs(frame, window)
        scale = frame.pixel_scale
        fields.update(
            frame=str(frame.path), frame_index=frame.index, tile_x0=window.x0, tile_y0=window.y0, region=tile.region,
            bands=frame.bands or None, ra=centre[0] if centre else None, dec=centre[1] if centre else None,
            pixel_scale=round(scale, 6) if scale else None,
        )  # fmt: skip
        records[k] = fields
    return records


def _build(
    tiles: list[_Tile], numbers: dict[int, list[int]], records: dict[int, dict[str, Any]], categories: list[str],
    sources: list[Source], cat: Catalog, opts: FieldOptions, info: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """One COCO dict: the tiles (sorted as cut) and their boxes, in the array frame (FITS) or flipped (PNG)."""
    builder = CocoBuilder(info)
    ids = {name: builder.add_category(name, category_id=i + 1) for i, name in enumerate(categories)}
    flip = opts.png != "none"
    for k in sorted(numbers):
        tile = tiles[k]
        record = dict(records[k])
        window = tile.window
        image_id = builder.add_image(record.pop("file_name"), window.width, window.height, **record)
        for placed, (x0, y0, x1, y1), visible in tile.boxes:
            source = sources[placed.source]
            y = window.y1 - y1 if flip else y0 - window.y0
            builder.add_annotation(
                image_id, (x0 - window.x0, y, x1 - x0, y1 - y0), ids[source.category],
                source_row=cat.numbers[source.index], source_id=source.key, visible_fraction=round(float(visible), 4),
                truncated=bool(visible < 1.0 - 1e-9),
            )  # fmt: skip
    data = builder.to_dict()
    with_boxes = len({a["image_id"] for a in data["annotations"]})
    data["info"]["counts"] = {"images": len(data["images"]), "images_without_boxes": len(data["images"]) - with_boxes,
                              "boxes": len(data["annotations"])}  # fmt: skip
    return data


def _rules(cols: FieldColumns, opts: FieldOptions) -> dict[str, str]:
    origin = "1-based FITS pixels (SExtractor)" if opts.pixel_origin == 1 else "0-based pixel centres"
    return {
        "positions": f"pixel columns {cols.position}, {origin}" if cols.pixel else f"{cols.position} in {cols.frame}",
        "box": cols.describe(opts),
        "tile_edge": f"kept in every tile holding >= {opts.min_visible:g} of the on-frame box area, clipped",
        "split": "by disjoint regions; tiles never cross a region" if opts.split else "none",
        "box_frame": "PNG: rows flipped (row 0 = last FITS row)" if opts.png != "none" else "FITS array frame",
    }


def convert_field(
    catalog: str | os.PathLike[str],
    out_json: str | os.PathLike[str],
    options: FieldOptions | None = None,
    **fields: Any,
) -> ConversionSummary:
    """Convert a source list over FITS frames into COCO tiles; see the module doc for every rule.

    ``options`` is a :class:`FieldOptions`, or give its fields as keywords (``fits=[Path]``, ``box_size=12``).
    """
    opts = build_options(FieldOptions, options, fields, "convert_field")
    path = Path(catalog)
    outputs = ConversionOutputs(out_json, opts, inputs=[path, *opts.fits], writes_images=True)
    with outputs:
        return _convert(path, outputs, opts)


def _convert(path: Path, outputs: ConversionOutputs, opts: FieldOptions) -> ConversionSummary:
    cat = read_table(path, opts.fmt)
    ledger = cat.ledger
    cols = FieldColumns(cat, opts)
    frames = [load_frame(p, k, opts.hdu) for k, p in enumerate(opts.fits)]
    sources = accept_rows(cat, cols, opts, ledger)
    placed, alive = _place(frames, sources, cols, opts, cat, ledger)
    tiles, all_nan = _tiles(frames, placed, opts)
    in_tiles = {p.source for t in tiles for p, _, _ in t.boxes}
    for k in alive:
        if k not in in_tiles:
            row = sources[k].index
            message = f"no tile holds {opts.min_visible:g} of its box: use larger --tile-size or --tile-overlap"
            ledger.add(path, cat.numbers[row], "not_in_any_tile", message, cat.raw[row])
    categories = sorted({sources[k].category for k in in_tiles}) or [opts.category]
    records = _write_tiles(outputs, tiles, opts)
    rows_out = len(in_tiles)
    conversion = {"rows_in": cat.rows_in, "sources_out": rows_out, "rejected": ledger.counts(path)}
    info_base = {
        "description": "Sources over wide FITS frames as overlapping detection tiles, converted by astrodet",
        "converter": "astrodet.data.field",
        "astrodet_version": __version__,
        "sources": {"catalog": str(path), "fits": [str(p) for p in opts.fits]},
        "options": {
            "tile_size": opts.tile_size,
            "tile_overlap": opts.tile_overlap,
            "min_visible": opts.min_visible,
            "region_size": opts.region_size,
            "png": opts.png,
            "size_unit": opts.size_unit,
            "split": opts.split,
            "seed": opts.seed,
        },
        "rules": _rules(cols, opts),
        "conversion": conversion,
    }
    index = {id(t): k for k, t in enumerate(tiles)}
    datasets = {}
    for name, group in _split(tiles, opts).items():
        numbers = {index[id(t)]: [] for t in group}
        datasets[name] = _build(tiles, numbers, records, categories, sources, cat, opts, {**info_base, "split": name})
        validate_coco(datasets[name], source=f"{outputs.out_json} ({name or 'all'})")
    boxes = sum(len(t.boxes) for t in tiles)
    notes = [f"{len(tiles)} tiles ({sum(not t.boxes for t in tiles)} without sources), {boxes} boxes; box: "
             f"{cols.describe(opts)}"]  # fmt: skip
    if all_nan:
        notes.append(f"{all_nan} tiles left out: no finite pixel")
    return write_conversion(
        outputs, datasets, ledger, source=path, rows_in=cat.rows_in, rows_out=rows_out, out_label="sources out",
        notes=notes,
    )  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``astrodet convert field`` (the shared --out/--split/--seed/... come from convert.py)."""
    catalog_help = "source list: SExtractor, CSV, FITS, VOTable, ECSV, text"
    parser.add_argument("--catalog", required=True, type=Path, metavar="FILE", help=catalog_help)
    parser.add_argument("--fits", required=True, type=Path, nargs="+", metavar="FILE", help="frames: 2-D or cubes")
    parser.add_argument("--format", dest="fmt", help="astropy table format, e.g. ascii.sextractor (default: guessed)")
    parser.add_argument("--hdu", type=int, help="FITS HDU of the frames (default: the first with data)")
    parser.add_argument("--id-col", help="source id column (default: NUMBER/id/name/...; else the row number)")
    parser.add_argument("--x-col", help="pixel x column (default X_IMAGE); needs exactly one frame")
    parser.add_argument("--y-col", help="pixel y column (default Y_IMAGE)")
    parser.add_argument("--pixel-origin", type=int, choices=(0, 1), default=1, help="1: FITS/SExtractor (default)")
    parser.add_argument("--ra-col", help="longitude column: RA, or l with --frame galactic (degrees)")
    parser.add_argument("--dec-col", help="latitude column: Dec, or b")
    parser.add_argument("--frame", help="astropy frame of the sky columns: icrs, fk5, galactic, ... (default: guessed)")
    parser.add_argument("--box-size", type=float, metavar="PX", help="every box PX x PX")
    parser.add_argument("--size-col", help="column holding each box's side (see --size-unit)")
    parser.add_argument("--a-col", help="semi-major axis column (default A_IMAGE)")
    parser.add_argument("--b-col", help="semi-minor axis column (default B_IMAGE)")
    parser.add_argument("--theta-col", help="angle column, degrees counter-clockwise from +x (default THETA_IMAGE)")
    parser.add_argument("--kron-col", help="ellipse scale per row (default KRON_RADIUS when present)")
    scale_help = f"ellipse scale k for every row (default: KRON_RADIUS, else {DEFAULT_ELLIPSE_SCALE:g})"
    parser.add_argument("--ellipse-scale", type=float, help=scale_help)
    parser.add_argument("--size-unit", choices=SIZE_UNITS, default="px", help="unit of size/axis columns (px)")
    parser.add_argument("--class-col", help="class column (default: one class, --category)")
    parser.add_argument("--category", default="source", help="the class name without --class-col (source)")
    parser.add_argument("--tile-size", type=int, default=256, help="tile side in px (default 256)")
    overlap_help = f"tile overlap, fraction of the side (default {DEFAULT_OVERLAP:g}, as predict)"
    parser.add_argument("--tile-overlap", type=float, default=DEFAULT_OVERLAP, help=overlap_help)
    parser.add_argument("--min-visible", type=float, default=0.5, help="keep a cut box if this much is in the tile")
    parser.add_argument("--region-size", type=int, help="with --split: region side in px (default 2 x tile size)")
    parser.add_argument("--png", choices=PNG_MODES, default="none", help="also write 8-bit PNG tiles (COCO names them)")


def run(args: argparse.Namespace) -> ConversionSummary:
    return convert_field(args.catalog, args.out, options_from_args(FieldOptions, args))
