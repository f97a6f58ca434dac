"""What ``astrodet evaluate`` reads, turned into the core's per-image records.

Truths: a COCO file (astrodet's converters' output: boxes per image, and ``ra``, ``dec``, ``pixel_scale`` per image
for sky matching) or a table astropy reads (CSV, ECSV, FITS, Parquet) with RA/Dec and a class (``class_name`` or
``class``) or an integer ``label`` (named by ``labels``; Clump Scout's 1 = clump, 2 = odd_clump by default), such as
the simulator's clumps.csv. Predictions: an ``astrodet predict`` catalogue (docs/evaluation.md lists the columns
used) or COCO detection results (a JSON list of ``{image_id, category_id, bbox, score}``).

Why records: the core scores :class:`astrodet.evaluation.detection.ImageRecord` lists whatever their origin, so
``astrodet evaluate``, the training reports and the Python API give the same numbers for the same matches. A COCO
truth gives one record per image (catalogue rows are linked to images by ``file``); a table gives one record for the
whole catalogue, matched on the sky without images.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from astrodet.data.clumpscout_images import GALAXY_COLUMNS
from astrodet.data.coco import load_coco, resolve_image_path
from astrodet.data.toolkit import basename
from astrodet.errors import AstrodetInputError
from astrodet.evaluation.detection import ImageRecord, records_from_coco
from astrodet.evaluation.matching import MatchRule
from astrodet.evaluation.sky import box_centres, image_pixels_to_sky
from astrodet.inference.catalogue import FORMATS as CATALOGUE_FORMATS
from astrodet.inference.catalogue import read_catalogue

BOX_COLUMNS = ("x_min", "y_min", "x_max", "y_max")
CATALOGUE_COLUMNS = ("file", "class_name", "score", *BOX_COLUMNS, "ra", "dec")
CLASS_COLUMNS = ("class_name", "class")  # a truth table's class names, else an integer "label" column
PROVENANCE_KEYS = (
    "config", "weights_sha256", "framework", "score_threshold", "nms_iou", "astrodet_version", "created", "inputs",
    "rejected",
)  # fmt: skip
# per-object brightness a truth may carry, binned in the report: mag, flux, mag_r, flux_g, ... (not flux_err_g)
BRIGHTNESS_NAME = re.compile(r"^(mag|flux)(_[a-z0-9]{1,3})?$", re.IGNORECASE)


def brightness_columns(numeric: Sequence[str], requested: Sequence[str] | None, source: Path) -> list[str]:
    """The truth columns to bin completeness by: those ``requested`` (each must be numeric), else the magnitudes
    (``mag``, ``mag_<band>``) if any, else the fluxes (``flux``, ``flux_<band>``)."""
    if requested is not None:
        missing = [name for name in requested if name not in numeric]
        if missing:
            raise AstrodetInputError(f"{source}: no numeric column {missing[0]!r} to bin by (--brightness)")
        return list(requested)
    found = [name for name in numeric if BRIGHTNESS_NAME.match(name)]
    mags = [name for name in found if name.lower().startswith("mag")]
    return mags or found


@dataclass
class Truth:
    """A COCO truth (``coco``) or a sky table (``sky``, one class name and brightness values per object).

    ``classes`` are a table's class names in id order: the ``labels`` mapping's, or the names found, sorted.
    ``extra`` names the brightness fields to bin by (with a table's values; a COCO truth keeps them in its
    annotations).
    """

    path: Path
    coco: dict[str, Any] | None = None
    sky: np.ndarray | None = None
    class_names: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    extra: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Predictions:
    """A predict catalogue (``files``, ``names``: one per row) or COCO results (``image_ids``, ``category_ids``)."""

    path: Path
    boxes: np.ndarray  # (N, 4) XYXY px of each row's image
    scores: np.ndarray
    sky: np.ndarray  # (N, 2) RA, Dec deg; NaN where unknown
    files: list[str] | None = None
    names: list[str] | None = None
    image_ids: list[Any] | None = None
    category_ids: list[int] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prepared:
    """Everything the core needs: records, class names, COCO results for AP (None without a COCO truth), notes."""

    records: list[ImageRecord]
    class_names: dict[int, str]
    coco_results: list[dict[str, Any]] | None
    bootstrap_unit: str
    notes: list[str]


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__


def read_table(path: Path, what: str) -> Any:
    """An astropy Table: a predict catalogue's formats (FITS, ECSV, CSV, Parquet) with its meta as predict wrote
    it, or anything else astropy reads by extension (VOTable, gzipped FITS, ...)."""
    from astropy.table import Table

    dataset = path.is_dir() and path.suffix.lower() == ".parquet"  # predict --parquet-dataset's folder of parts
    if not (path.is_file() or dataset):
        raise AstrodetInputError(f"{path}: no such {what}")
    try:
        return read_catalogue(path) if path.suffix.lower() in CATALOGUE_FORMATS else Table.read(path)
    except AstrodetInputError:
        raise
    except Exception as err:  # astropy and pyarrow raise many types for unreadable input; all mean "not a table"
        raise AstrodetInputError(f"{path}: cannot read it as a {what} table ({_first_line(err)})") from None


def _column(table: Any, aliases: Sequence[str], path: Path, what: str, required: bool = True) -> str | None:
    lowered = {name.lower(): name for name in table.colnames}
    found = next((lowered[a] for a in aliases if a in lowered), None)
    if found is None and required:
        raise AstrodetInputError(
            f"{path}: no {what} column (one of {', '.join(aliases)}); columns: {', '.join(table.colnames)}"
        )
    return found


def _floats(table: Any, name: str, path: Path, finite: bool = True) -> np.ndarray:
    """A numeric column as floats (masked -> NaN); with ``finite``, a NaN is an error naming its row."""
    column = table[name]
    try:
        values = np.ma.filled(np.ma.asarray(column).astype(float), np.nan)
    except (TypeError, ValueError):
        raise AstrodetInputError(f"{path}: column {name!r} is not numeric") from None
    bad = np.flatnonzero(~np.isfinite(values))
    if finite and bad.size:
        raise AstrodetInputError(f"{path}: row {bad[0] + 1} (data rows from 1): {name} is missing or not finite")
    return values


def _strings(table: Any, name: str) -> list[str]:
    return ["" if np.ma.is_masked(v) else (v.decode() if isinstance(v, bytes) else str(v)).strip() for v in table[name]]


def read_truth(
    path: str | os.PathLike[str], labels: Mapping[int, str], brightness: Sequence[str] | None = None
) -> Truth:
    """A COCO file (``.json``) or a sky table with RA/Dec and a class name or an integer label named by ``labels``;
    ``extra`` holds the :func:`brightness_columns` of either."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        coco = load_coco(path)
        annotations = coco["annotations"]
        numeric = sorted(
            {k for a in annotations for k, v in a.items() if isinstance(v, int | float) and not isinstance(v, bool)}
            - {"id", "image_id", "category_id", "area", "iscrowd", "source_row"}
        )
        carried = [k for k in numeric if all(isinstance(a.get(k), int | float) for a in annotations)]
        return Truth(path, coco=coco, extra={k: np.zeros(0) for k in brightness_columns(carried, brightness, path)})
    table = read_table(path, "truth")
    ra = _column(table, GALAXY_COLUMNS["ra"], path, "RA")
    dec = _column(table, GALAXY_COLUMNS["dec"], path, "Dec")
    sky = np.stack([_floats(table, ra, path), _floats(table, dec, path)], axis=1)  # type: ignore[arg-type]
    name_column = _column(table, CLASS_COLUMNS, path, "class", required=False)
    if name_column is not None:
        names = _strings(table, name_column)
        classes = sorted(set(names))
    else:
        classes = list(labels.values())
        label = _column(table, ("label",), path, "class (class_name, class or an integer label)")
        codes = _floats(table, label, path)  # type: ignore[arg-type]
        names = []
        for row, code in enumerate(codes, start=1):
            if code not in labels:
                known = ", ".join(f"{k}={v}" for k, v in labels.items())
                raise AstrodetInputError(f"{path}: row {row}: label {code:g} has no class name (--labels {known})")
            names.append(labels[int(code)])
    numeric = [name for name in table.colnames if table[name].dtype.kind in "fiu"]
    extra = {name: _floats(table, name, path, finite=False) for name in brightness_columns(numeric, brightness, path)}
    return Truth(path, sky=sky, class_names=names, classes=classes, extra=extra)


def read_predictions(path: str | os.PathLike[str]) -> Predictions:
    """A predict catalogue, or COCO detection results (``.json``)."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        return _read_coco_results(path)
    table = read_table(path, "catalogue")
    lowered = {c.lower() for c in table.colnames}
    if "x_min" not in lowered and {"file", "class_name", "score"} <= lowered:
        raise AstrodetInputError(f"{path}: a classification catalogue (no boxes); astrodet evaluate scores detections")
    for name in CATALOGUE_COLUMNS:
        if name not in table.colnames:
            raise AstrodetInputError(
                f"{path}: no {name!r} column; a predict catalogue has {', '.join(CATALOGUE_COLUMNS)}"
            )
    boxes = np.stack([_floats(table, c, path) for c in BOX_COLUMNS], axis=1)
    bad = np.flatnonzero((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]))
    if bad.size:
        raise AstrodetInputError(f"{path}: row {bad[0] + 1} (data rows from 1): x_max < x_min or y_max < y_min")
    sky = np.stack([_floats(table, c, path, finite=False) for c in ("ra", "dec")], axis=1)
    provenance = {k: table.meta[k] for k in PROVENANCE_KEYS if k in table.meta}
    return Predictions(
        path,
        boxes,
        _floats(table, "score", path),
        sky,
        files=_strings(table, "file"),
        names=_strings(table, "class_name"),
        provenance=provenance,
    )


def _read_coco_results(path: Path) -> Predictions:
    if not path.is_file():
        raise AstrodetInputError(f"{path}: no such COCO results file")
    try:
        with open(path, encoding="utf-8") as handle:
            results = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AstrodetInputError(f"{path}: not valid JSON: {_first_line(err)}") from None
    if not isinstance(results, list):
        raise AstrodetInputError(f"{path}: COCO results must be a JSON list of {{image_id, category_id, bbox, score}}")
    boxes, scores = np.zeros((len(results), 4)), np.zeros(len(results))
    for i, res in enumerate(results):
        try:
            if not isinstance(res, dict) or "image_id" not in res:
                raise KeyError("image_id")
            x, y, w, h = (float(v) for v in res["bbox"])
            scores[i] = float(res["score"])
            int(res["category_id"])
        except (KeyError, TypeError, ValueError):
            raise AstrodetInputError(
                f"{path}: result {i}: needs image_id, category_id, bbox [x, y, w, h] and score"
            ) from None
        if not (math.isfinite(x + y + w + h + scores[i]) and w >= 0 and h >= 0):
            raise AstrodetInputError(f"{path}: result {i}: bbox and score must be finite, width and height >= 0")
        boxes[i] = (x, y, x + w, y + h)
    return Predictions(
        path,
        boxes,
        scores,
        np.full((len(results), 2), np.nan),
        image_ids=[r["image_id"] for r in results],
        category_ids=[int(r["category_id"]) for r in results],
    )


def _class_ids(
    truth_names: dict[int, str], pred_names: Sequence[str], class_agnostic: bool, pred_path: Path, notes: list[str]
) -> list[int]:
    """Predicted class names as the truth's class ids; names the truth lacks get new ids (false positives when
    class-aware). Not one name in common is a naming mismatch, refused unless class-agnostic."""
    ids = {name: cid for cid, name in truth_names.items()}
    unknown = sorted(set(pred_names) - set(ids))
    if unknown and not class_agnostic:
        if len(unknown) == len(set(pred_names)):
            raise AstrodetInputError(
                f"{pred_path}: no predicted class ({', '.join(unknown)}) is a class of the truth "
                f"({', '.join(truth_names.values())}); rename them, or pass --class-agnostic"
            )
        notes.append(f"predicted classes not in the truth (counted as false positives): {', '.join(unknown)}")
    for name in unknown:
        truth_names[max(truth_names, default=0) + 1] = name
        ids[name] = max(truth_names)
    return [ids[name] for name in pred_names]


def _link_files(truth: Truth, preds: Predictions, notes: list[str]) -> list[Any]:
    """The COCO image id of each catalogue row by its ``file``: the same path, else a unique file name; None if
    neither (those rows are left out, with a note)."""
    gt = truth.coco or {}
    by_path, by_name = {}, {}
    for image in gt["images"]:
        resolved = resolve_image_path(truth.path, image["file_name"], gt.get("info"))
        by_path[os.path.realpath(resolved)] = image["id"]
        by_name.setdefault(basename(image["file_name"]), []).append(image["id"])
    linked: dict[str, Any] = {}
    by_file_name = 0
    for file in dict.fromkeys(preds.files or []):
        candidates = [Path(file)] if Path(file).is_absolute() else [Path(file), preds.path.parent / file]
        found = next((by_path[p] for p in map(os.path.realpath, candidates) if p in by_path), None)
        if found is None and len(by_name.get(basename(file), [])) == 1:
            found, by_file_name = by_name[basename(file)][0], by_file_name + 1
        linked[file] = found
    missing = [f for f, image_id in linked.items() if image_id is None]
    if linked and len(missing) == len(linked):
        raise AstrodetInputError(
            f"{preds.path}: no 'file' of the catalogue is an image of {truth.path} (e.g. {missing[0]})"
        )
    if missing:
        notes.append(f"{len(missing)} catalogue images are not in the truth and were left out (e.g. {missing[0]})")
    if by_file_name:
        notes.append(f"{by_file_name} catalogue images linked to the truth by file name, not by path")
    return [linked[f] for f in preds.files or []]


def _coco_results(
    truth: Truth, preds: Predictions, names: dict[int, str], class_agnostic: bool, notes: list[str]
) -> tuple[list[dict], list[int]]:
    """The predictions as COCO results on the truth's images (rows of images not in the truth left out), and the
    prediction row of each result. ``names`` (category id -> name) gains the predicted classes the truth lacks."""
    gt = truth.coco or {}
    if preds.files is None:
        image_ids, category_ids = preds.image_ids or [], preds.category_ids or []
        unknown = sorted(set(category_ids) - set(names))
        if unknown and not class_agnostic:
            raise AstrodetInputError(f"{preds.path}: category ids {unknown} are not categories of {truth.path}")
        names.update({cid: str(cid) for cid in unknown})
    else:
        image_ids = _link_files(truth, preds, notes)
        category_ids = _class_ids(names, preds.names or [], class_agnostic, preds.path, notes)
    sizes = {img["id"]: (img["width"], img["height"]) for img in gt["images"]}
    results, rows = [], []
    for i, (image_id, category_id) in enumerate(zip(image_ids, category_ids, strict=True)):
        if image_id is None:
            continue
        x0, y0, x1, y1 = preds.boxes[i]
        width, height = sizes[image_id]
        if not (0 <= (x0 + x1) / 2 <= width and 0 <= (y0 + y1) / 2 <= height):
            raise AstrodetInputError(
                f"{preds.path}: row {i + 1} (data rows from 1): box centre outside its truth image {image_id} "
                f"({width}x{height} px): were the predictions made on another frame of the image?"
            )
        box = [float(v) for v in (x0, y0, x1 - x0, y1 - y0)]
        results.append({"image_id": image_id, "category_id": category_id, "bbox": box, "score": float(preds.scores[i])})
        rows.append(i)
    return results, rows


def _require_sky(preds: Predictions, rows: np.ndarray) -> None:
    bad = rows[~np.isfinite(preds.sky[rows]).all(axis=1)]
    if bad.size:
        raise AstrodetInputError(
            f"{preds.path}: row {bad[0] + 1} (data rows from 1) has no RA/Dec; sky matching needs them "
            "(predict with --meta or on FITS with a WCS), or match in pixels"
        )


def _with_sky(
    truth: Truth, preds: Predictions, records: list[ImageRecord], results: list[dict], rows: list[int]
) -> list[ImageRecord]:
    """Records with RA/Dec: truths from their box centres through the image's WCS; predictions from the catalogue's
    ra/dec (as predict wrote them) or, for COCO results, from their box centres like the truths."""
    images = {img["id"]: img for img in (truth.coco or {})["images"]}
    by_image: dict[Any, list[int]] = {}
    for res, row in zip(results, rows, strict=True):  # records_from_coco keeps the results' order in each image
        by_image.setdefault(res["image_id"], []).append(row)
    if preds.files is not None:
        _require_sky(preds, np.asarray(rows, dtype=np.int64))
    out = []
    for rec in records:
        image = images[rec.image_id]
        if preds.files is not None:
            pred_sky = preds.sky[np.asarray(by_image.get(rec.image_id, []), dtype=np.int64)]
        else:
            pred_sky = image_pixels_to_sky(image, *box_centres(rec.pred_boxes))
        true_sky = image_pixels_to_sky(image, *box_centres(rec.true_boxes))
        out.append(replace(rec, true_sky=true_sky, pred_sky=pred_sky.reshape(-1, 2)))
    return out


def prepare(truth: Truth, preds: Predictions, rule: MatchRule, class_agnostic: bool) -> Prepared:
    """Records for the core: per COCO image, or one catalogue-wide record for a sky table (sky rule only)."""
    notes: list[str] = []
    if truth.coco is not None:
        names = {int(c["id"]): str(c["name"]) for c in truth.coco["categories"]}
        results, rows = _coco_results(truth, preds, names, class_agnostic, notes)
        records = records_from_coco(truth.coco, results, extra_fields=list(truth.extra))
        if rule.kind == "sky":
            records = _with_sky(truth, preds, records, results, rows)
        return Prepared(records, names, results, "image", notes)
    if preds.files is None:
        raise AstrodetInputError(f"{preds.path}: COCO results name images of a COCO truth; {truth.path} is a table")
    if rule.kind != "sky":
        raise AstrodetInputError(
            f"{truth.path}: a truth table has positions, not boxes: match on the sky, e.g. --match radius:1.5arcsec"
        )
    _require_sky(preds, np.arange(len(preds.scores)))
    truth_names = {i + 1: name for i, name in enumerate(truth.classes)}
    ids = {name: cid for cid, name in truth_names.items()}
    pred_ids = _class_ids(truth_names, preds.names or [], class_agnostic, preds.path, notes)
    record = ImageRecord(
        true_boxes=None,
        true_classes=[ids[name] for name in truth.class_names],
        pred_boxes=preds.boxes,
        pred_scores=preds.scores,
        pred_classes=pred_ids,
        true_extra=truth.extra,
        image_id=truth.path.name,
        true_sky=truth.sky,
        pred_sky=preds.sky,
    )
    return Prepared([record], truth_names, None, "object", notes)
