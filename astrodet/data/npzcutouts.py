"""Arrays of cutouts and labels (``.npz``) -> whole-image classification COCO (``astrodet convert catalog --npz``).

Why: some published samples ship cutouts as arrays rather than images, e.g. the DeepShadows DES sample
(shared/data/deepshadows/des_lsbg_vs_artifact_cutouts.npz: ``X_train`` (6, 64, 64, 3) float in [0, 1] with
``y_train``, ``X_test``/``y_test``, unlabelled ``X_val``). Every ``X_<name>`` paired with a ``y_<name>`` is converted;
each cutout becomes one row, numbered 1.. across the arrays in sorted name order; cutouts without labels are
rejected as ``unlabelled`` (a row per cutout, so the accounting still adds up), non-finite cutouts as ``not_finite``
and labels that are not class indices as ``bad_label``.

Cutouts whose values are all multiples of 1/255 in [0, 1] (8-bit images divided by 255, as the DeepShadows ones are)
are written losslessly as PNG; anything else (other ranges, more than 3 bands) as float32 ``.npy``. The source
array name is kept on each image as ``source_split``; without ``--split`` the output keeps the npz's own split, one
file per array name (``<stem>_<name>.json``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from astrodet import __version__
from astrodet.data.rejects import ConversionSummary, RejectsLedger
from astrodet.data.toolkit import ConversionOutputs, ConverterOptions, build_options, short_number
from astrodet.data.wholeimage import Record, array_image_bytes, finish
from astrodet.errors import AstrodetInputError

MAX_CLASSES = 100_000  # a label beyond this is a broken value, not a class index


@dataclass(kw_only=True)
class NpzOptions(ConverterOptions):
    """Options of an ``.npz`` conversion (``astrodet convert catalog --npz``; field names = argparse dests)."""

    classes: list[str] | None = None  # names of labels 0, 1, ...; default "0", "1", ...

    def __post_init__(self) -> None:
        super().__post_init__()
        self.classes = list(self.classes) if self.classes else None


def _is_8bit(array: np.ndarray) -> bool:
    scaled = array * 255.0
    return bool(array.min() >= 0 and array.max() <= 1 and np.allclose(scaled, np.round(scaled), atol=1e-3))


def convert_npz(
    npz: str | os.PathLike[str],
    out_json: str | os.PathLike[str],
    options: NpzOptions | None = None,
    **fields: Any,
) -> ConversionSummary:
    """Convert the labelled cutout arrays of an ``.npz`` (see module doc); ``options`` is an :class:`NpzOptions`,
    or give its fields as keywords (``classes=[...]`` names labels 0, 1, ...)."""
    opts = build_options(NpzOptions, options, fields, "convert_npz")
    path = Path(npz)
    outputs = ConversionOutputs(
        out_json,
        opts,
        inputs=[path],
        writes_images=True,
    )
    with outputs:
        return _convert(path, outputs, opts)


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: np.asarray(data[k]) for k in data.files}
    except FileNotFoundError:
        raise AstrodetInputError(f"{path}: no such .npz file") from None
    except IsADirectoryError:
        raise AstrodetInputError(f"{path}: is a folder, expected a .npz file") from None
    except Exception as err:  # numpy and zipfile raise many types for a damaged archive; all mean "not readable"
        raise AstrodetInputError(f"{path}: not a readable .npz of arrays ({err})") from None


def _class_count(path: Path, arrays: dict[str, np.ndarray], labelled: list[str]) -> int:
    """Labels are class indices 0..K-1: K is one more than the largest label that can be one (NaN, inf, negative
    and absurdly large labels do not count: their rows are rejected as ``bad_label``)."""
    largest = -1.0
    for name in labelled:
        y = arrays[f"y_{name}"]
        if y.dtype.kind not in "biuf" or y.ndim != 1:
            raise AstrodetInputError(
                f"{path}: y_{name} must hold one class index (a number) per cutout, got {y.dtype} of shape {y.shape}"
            )
        values = y.astype(np.float64)
        usable = values[np.isfinite(values) & (values >= 0) & (values < MAX_CLASSES)]
        if usable.size:
            largest = max(largest, float(usable.max()))
    if largest < 0:
        raise AstrodetInputError(f"{path}: no y_<name> array holds a class index (0, 1, ...): all NaN, inf or < 0")
    return int(largest) + 1


def _convert(path: Path, outputs: ConversionOutputs, opts: NpzOptions) -> ConversionSummary:
    arrays = _read_arrays(path)
    names = sorted(k[2:] for k in arrays if k.startswith("X_"))
    if not names:
        raise AstrodetInputError(f"{path}: no X_<name> cutout arrays (has {sorted(arrays)})")
    labelled = [n for n in names if f"y_{n}" in arrays]
    if not labelled:
        raise AstrodetInputError(f"{path}: no X_<name> array has its y_<name> labels")
    class_names = opts.classes or [str(i) for i in range(_class_count(path, arrays, labelled))]
    ledger = RejectsLedger()
    records: list[Record] = []
    groups: dict[str | None, list[Record]] = {}
    row = 0
    for name in names:
        x = arrays[f"X_{name}"]
        if x.ndim == 3:
            x = x[..., None]
        if x.ndim != 4 or x.dtype.kind not in "biuf":
            raise AstrodetInputError(
                f"{path}: X_{name} must be numbers of shape (N, H, W[, C]), got {x.dtype} {x.shape}"
            )
        y = arrays.get(f"y_{name}")
        if y is not None and y.shape[0] != x.shape[0]:
            raise AstrodetInputError(f"{path}: y_{name} has {y.shape[0]} labels for {x.shape[0]} cutouts")
        for j in range(x.shape[0]):
            row += 1
            where = {"array": f"X_{name}", "index": j}
            if y is None:
                ledger.add(path, row, "unlabelled", f"X_{name}[{j}] has no y_{name} label", where)
                continue
            label = float(y[j])
            if not (np.isfinite(label) and 0 <= label < len(class_names) and label == int(label)):
                message = f"y_{name}[{j}] = {short_number(label)} is not a class index < {len(class_names)}"
                ledger.add(path, row, "bad_label", message, where)
                continue
            with np.errstate(over="ignore", invalid="ignore"):  # 1e308 in float64 -> inf in float32: not_finite
                cutout = np.asarray(x[j], dtype=np.float32)
            if not np.all(np.isfinite(cutout)):
                message = f"X_{name}[{j}] holds NaN or inf (or a value beyond float32)"
                ledger.add(path, row, "not_finite", message, where)
                continue
            key = f"{name}_{j:05d}"
            if cutout.shape[2] in (1, 3) and _is_8bit(cutout):
                pixels = np.round(cutout * 255).astype(np.uint8)
                file_name = outputs.write_image(f"{key}.png", array_image_bytes(pixels, "png"))
            else:
                file_name = outputs.write_image(f"{key}.npy", array_image_bytes(cutout, "npy"))
            record = Record(
                key=key,
                category=class_names[int(label)],
                row=row,
                file_name=file_name,
                width=int(cutout.shape[1]),
                height=int(cutout.shape[0]),
                image_fields={"source_split": name, "source_index": j},
                annotation_fields={"label_value": int(label)},
            )
            records.append(record)
            groups.setdefault(name, []).append(record)
    info: dict[str, Any] = {
        "description": "Labelled cutout arrays (.npz) as whole-image classification, converted by astrodet",
        "converter": "astrodet.data.npzcutouts",
        "astrodet_version": __version__,
        "sources": {"npz": str(path)},
        "options": {"classes": class_names, "split": opts.split, "seed": opts.seed, "arrays": names},
    }
    own_split = None if opts.split is not None else groups  # without --split, the npz's own arrays are the splits
    return finish(outputs, opts, records, class_names, info, ledger, source=path, rows_in=row, groups=own_split)
