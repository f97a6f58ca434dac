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
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from astrodet import __version__
from astrodet.data.rejects import ConversionSummary, RejectsLedger
from astrodet.data.wholeimage import Record, finish, images_dir_for, parse_split, relative_to_json, write_array_image
from astrodet.errors import AstrodetInputError


def _is_8bit(array: np.ndarray) -> bool:
    scaled = array * 255.0
    return bool(array.min() >= 0 and array.max() <= 1 and np.allclose(scaled, np.round(scaled), atol=1e-3))


def convert_npz(
    npz: str | os.PathLike[str],
    out_json: str | os.PathLike[str],
    *,
    classes: Sequence[str] | None = None,
    split: str | Mapping[str, float] | None = None,
    seed: int = 0,
    rejects_csv: str | os.PathLike[str] | None = None,
) -> ConversionSummary:
    """Convert the labelled cutout arrays of an ``.npz`` (see module doc); ``classes`` names labels 0, 1, ..."""
    path, out = Path(npz), Path(out_json)
    fractions = parse_split(split)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: np.asarray(data[k]) for k in data.files}
    except FileNotFoundError:
        raise AstrodetInputError(f"{path}: no such .npz file") from None
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise AstrodetInputError(f"{path}: not a readable .npz of arrays ({err})") from None
    names = sorted(k[2:] for k in arrays if k.startswith("X_"))
    if not names:
        raise AstrodetInputError(f"{path}: no X_<name> cutout arrays (has {sorted(arrays)})")
    labelled = [n for n in names if f"y_{n}" in arrays]
    if not labelled:
        raise AstrodetInputError(f"{path}: no X_<name> array has its y_<name> labels")
    n_classes = int(max(np.nanmax(arrays[f"y_{n}"]) for n in labelled if arrays[f"y_{n}"].size)) + 1
    class_names = list(classes) if classes else [str(i) for i in range(n_classes)]
    ledger = RejectsLedger()
    records: list[Record] = []
    groups: dict[str | None, list[Record]] = {}
    images = images_dir_for(out)
    row = 0
    for name in names:
        x = arrays[f"X_{name}"]
        if x.ndim == 3:
            x = x[..., None]
        if x.ndim != 4:
            raise AstrodetInputError(f"{path}: X_{name} must be (N, H, W[, C]), got shape {x.shape}")
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
            if not (np.isfinite(label) and label == int(label) and 0 <= label < len(class_names)):
                ledger.add(
                    path, row, "bad_label", f"y_{name}[{j}] = {y[j]!r} is not a class index < {len(class_names)}", where
                )
                continue
            cutout = np.asarray(x[j], dtype=np.float32)
            if not np.all(np.isfinite(cutout)):
                ledger.add(path, row, "not_finite", f"X_{name}[{j}] holds NaN or inf", where)
                continue
            key = f"{name}_{j:05d}"
            if cutout.shape[2] in (1, 3) and _is_8bit(cutout):
                target = write_array_image(images / f"{key}.png", np.round(cutout * 255).astype(np.uint8), "png")
            else:
                target = write_array_image(images / f"{key}.npy", cutout, "npy")
            record = Record(
                key=key,
                category=class_names[int(label)],
                row=row,
                file_name=relative_to_json(target, out),
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
        "options": {"classes": class_names, "split": fractions, "seed": seed, "arrays": names},
    }
    return finish(
        out_json=out,
        records=records,
        categories=class_names,
        info=info,
        ledger=ledger,
        source=path,
        rows_in=row,
        split=fractions,
        seed=seed,
        rejects_csv=Path(rejects_csv) if rejects_csv is not None else None,
        groups=None if fractions is not None else groups,
    )
