"""Real classification samples (shared/data) converted into the cache on first use, like the default dataset.

Why: the classification workflows (Perseus dwarf candidates, Galaxy Zoo 2 spirals, DeepShadows LSBGs) should run
from a config alone, with no conversion step to remember, and on the real sample data the project ships beside the
checkout rather than on anything downloaded. Each sample is converted by the same converter a user would run
(``astrodet convert catalog|galaxyzoo``), into ``$ASTRODET_CACHE/datasets/<name>-<key>/`` where ``key`` hashes the
recipe, the converter options, the selection config and the source files' names and sizes; the caching, locking
and ``READY.json`` protocol is :mod:`astrodet.data.default`'s. The sample folder is ``$ASTRODET_SHARED_DATA`` or
``<checkout>/../shared/data``; its absence is a clear error naming the path and the variable.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import astrodet
from astrodet.data.default import _locked, cache_dir
from astrodet.data.rejects import ConversionSummary
from astrodet.errors import AstrodetInputError
from astrodet.io import atomic_write_json

SAMPLE_RECIPE_VERSION = 1
SCHEMAS = Path(__file__).resolve().parent / "schemas"
# Pruitt & Romanowsky: train/test 75/25, then train/valid 75/25 of the training part.
PERSEUS_SPLITS = {"train": 0.5625, "val": 0.1875, "test": 0.25}


@dataclass(frozen=True)
class SampleSpec:
    """A named sample: which converter, on which shared-data folder, with which options; its classes and splits."""

    kind: str  # "catalog", "galaxyzoo" or "npz"
    source: str  # folder under the shared data
    categories: tuple[str, ...]
    splits: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def key(self, shared: Path) -> str:
        folder = shared / self.source
        files = sorted((str(p.relative_to(folder)), p.stat().st_size) for p in folder.rglob("*") if p.is_file())
        config = self.options.get("config")
        text = json.dumps(
            {
                "recipe": SAMPLE_RECIPE_VERSION,
                "kind": self.kind,
                "options": self.options,
                "config": (SCHEMAS / config).read_text(encoding="utf-8") if config else None,
                "files": files,
            },
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:10]


SAMPLES: dict[str, SampleSpec] = {
    # The recipe: 7 PCC classes -> dE/ETG candidate vs rest, mergers dropped, V <= 19.4, red images removed.
    "perseus": SampleSpec(
        "catalog",
        "perseus_sample",
        ("other", "dE_ETG_candidate"),
        tuple(PERSEUS_SPLITS),
        {"config": "perseus_binary.yaml", "copy_images": True, "pixel_scale": 0.1, "split": PERSEUS_SPLITS},
        "Perseus cluster dwarf candidates (Wittmann+2019 PCC sample, SDSS DR16 cutouts), recipe cuts",
    ),
    # Without the brightness cut (the sample's 301 objects are mostly fainter), classes balanced by downsampling.
    "perseus_all": SampleSpec(
        "catalog",
        "perseus_sample",
        ("other", "dE_ETG_candidate"),
        tuple(PERSEUS_SPLITS),
        {
            "config": "perseus_binary.yaml",
            "skip_cuts": ["mag_v"],
            "balance": True,
            "copy_images": True,
            "pixel_scale": 0.1,
            "split": PERSEUS_SPLITS,
        },
        "Perseus PCC sample without the magnitude cut, class-balanced",
    ),
    "gz2": SampleSpec(
        "galaxyzoo",
        "gz2_kaggle",
        ("non_spirals", "spirals"),
        ("train", "val", "test"),
        {"table": "labels.csv", "center_crop": 180, "split": {"train": 0.7, "val": 0.15, "test": 0.15}},
        "Galaxy Zoo 2 Kaggle images, spirals vs non-spirals, Kim's 180 px centre crop",
    ),
    "deepshadows": SampleSpec(
        "npz",
        "deepshadows",
        ("artifact", "LSBG"),
        ("train", "test"),
        {"npz": "des_lsbg_vs_artifact_cutouts.npz", "classes": ["artifact", "LSBG"]},
        "DES LSBGs vs artefacts (DeepShadows), the npz's own train/test cutouts",
    ),
}


@dataclass(frozen=True)
class SampleDataset:
    name: str
    root: Path
    splits: dict[str, Path]
    categories: tuple[str, ...]


def shared_data_dir() -> Path:
    """``$ASTRODET_SHARED_DATA``, else ``<checkout>/../shared/data``."""
    env = os.environ.get("ASTRODET_SHARED_DATA")
    return Path(env) if env else Path(astrodet.__file__).resolve().parents[2] / "shared" / "data"


def sample_spec(name: str) -> SampleSpec:
    if name not in SAMPLES:
        raise KeyError(f"unknown sample dataset {name!r}; known: {sorted(SAMPLES)}")
    return SAMPLES[name]


def _source(name: str) -> tuple[SampleSpec, Path]:
    spec = sample_spec(name)
    shared = shared_data_dir()
    if not (shared / spec.source).is_dir():
        raise AstrodetInputError(
            f"sample {name!r}: {shared / spec.source} not found. The real sample data lives in the shared/data folder "
            f"beside the astrodet checkout; set ASTRODET_SHARED_DATA to the folder that holds {spec.source}/"
        )
    return spec, shared


def sample_root(name: str, root: Path | None = None) -> Path:
    spec, shared = _source(name)
    return (root or cache_dir() / "datasets") / f"{name}-{spec.key(shared)}"


def sample_split_paths(name: str, root: Path | None = None) -> dict[str, Path]:
    folder = sample_root(name, root)
    return {split: folder / f"{name}_{split}.json" for split in sample_spec(name).splits}


def ensure_sample(name: str, root: Path | None = None) -> SampleDataset:
    """Return the converted sample, converting it first if the cache has no complete copy."""
    spec, shared = _source(name)
    folder = sample_root(name, root)
    paths = sample_split_paths(name, root)
    ready = folder / "READY.json"
    with _locked(folder.with_name(folder.name + ".lock")):
        if not ready.is_file():
            if folder.exists():  # an interrupted earlier build: start clean
                shutil.rmtree(folder)
            summary = _convert(name, spec, shared / spec.source, folder / f"{name}.json")
            missing = [str(p) for p in paths.values() if not p.is_file()]
            if missing:
                raise RuntimeError(f"sample {name!r}: conversion wrote no {missing}")
            atomic_write_json(
                ready,
                {"name": name, "key": spec.key(shared), "source": str(shared / spec.source), "summary": summary.line()},
                indent=2,
            )
    return SampleDataset(name, folder, paths, spec.categories)


def _convert(name: str, spec: SampleSpec, source: Path, out_json: Path) -> ConversionSummary:
    opts = dict(spec.options)
    if spec.kind == "catalog":
        from astrodet.data.catalog import convert_catalog

        config = SCHEMAS / opts.pop("config")
        catalog = source / "PCC_cat_sample.txt"
        return convert_catalog(catalog, out_json, config=config, cutouts=source / "images", **opts)
    if spec.kind == "galaxyzoo":
        from astrodet.data.galaxyzoo import convert_galaxyzoo

        return convert_galaxyzoo(source / opts.pop("table"), out_json, **opts)
    if spec.kind == "npz":
        from astrodet.data.npzcutouts import convert_npz

        return convert_npz(source / opts.pop("npz"), out_json, **opts)
    raise ValueError(f"sample {name!r}: unknown kind {spec.kind!r}")
