"""Real classification samples (shared/data), converted into the cache on first use: recipes only.

Why: the classification workflows (Perseus dwarf candidates, Galaxy Zoo 2 spirals, DeepShadows LSBGs) should run
from a config alone, with no conversion step to remember, and on the real sample data the project ships beside the
checkout rather than on anything downloaded. Each sample is converted by the same converter a user would run
(``astrodet convert catalog|galaxyzoo``); its ``key`` hashes the recipe, the converter options, the selection
config and the source files' names and sizes. :mod:`astrodet.data.catalogue` names the recipes and builds each
once (:mod:`astrodet.data.cache`). The sample folder is ``$ASTRODET_SHARED_DATA`` or ``<checkout>/../shared/data``;
its absence is a clear error naming the path and the variable.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import astrodet
from astrodet.data.rejects import ConversionSummary
from astrodet.data.toolkit import SCHEMA_DIR
from astrodet.errors import AstrodetInputError

SAMPLE_RECIPE_VERSION = 1
# Pruitt & Romanowsky: train/test 75/25, then train/valid 75/25 of the training part.
PERSEUS_SPLITS = {"train": 0.5625, "val": 0.1875, "test": 0.25}


@dataclass(frozen=True)
class SampleRecipe:
    """A named sample: which converter, on which shared-data folder, with which options; its classes and splits."""

    name: str
    kind: str  # "catalog", "galaxyzoo" or "npz"
    source: str  # folder under the shared data
    categories: tuple[str, ...]
    splits: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    task: ClassVar[str] = "classification"

    def source_dir(self) -> Path:
        """The sample's folder in the shared data; a clear error names the path and the variable if absent."""
        folder = shared_data_dir() / self.source
        if not folder.is_dir():
            raise AstrodetInputError(
                f"sample {self.name!r}: {folder} not found. The real sample data lives in the shared/data folder "
                f"beside the astrodet checkout; set ASTRODET_SHARED_DATA to the folder that holds {self.source}/"
            )
        return folder

    def key(self) -> str:
        folder = self.source_dir()
        files = sorted((str(p.relative_to(folder)), p.stat().st_size) for p in folder.rglob("*") if p.is_file())
        config = self.options.get("config")
        text = json.dumps(
            {
                "recipe": SAMPLE_RECIPE_VERSION,
                "kind": self.kind,
                "options": self.options,
                "config": (SCHEMA_DIR / config).read_text(encoding="utf-8") if config else None,
                "files": files,
            },
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def split_file(self, split: str) -> str:
        return f"{self.name}_{split}.json"

    def build(self, folder: Path, progress: bool = True) -> dict[str, Any]:
        source = self.source_dir()
        summary = _convert(self, source, folder / f"{self.name}.json")
        return {"key": self.key(), "source": str(source), "summary": summary.line()}


def _perseus(name: str, source: str, catalog: str, all_magnitudes: bool) -> SampleRecipe:
    """A Perseus Cluster Catalogue set: the binary recipe, or (``all_magnitudes``) without its brightness cut and
    with the classes balanced by downsampling."""
    options: dict[str, Any] = {"catalog": catalog, "config": "perseus_binary.yaml"}
    if all_magnitudes:
        options |= {"skip_cuts": ["mag_v"], "balance": True}
    options |= {"copy_images": True, "pixel_scale": 0.1, "split": PERSEUS_SPLITS}
    what = "without the magnitude cut, class-balanced" if all_magnitudes else "recipe cuts"
    return SampleRecipe(
        name,
        "catalog",
        source,
        ("other", "dE_ETG_candidate"),
        tuple(PERSEUS_SPLITS),
        options,
        f"Perseus cluster dwarf candidates (Wittmann+2019 PCC, SDSS DR16 cutouts, {source}), {what}",
    )


SAMPLES: dict[str, SampleRecipe] = {
    # The recipe: 7 PCC classes -> dE/ETG candidate vs rest, mergers dropped, V <= 19.4, red images removed.
    "perseus": _perseus("perseus", "perseus_sample", "PCC_cat_sample.txt", all_magnitudes=False),
    # Without the brightness cut (the sample's 301 objects are mostly fainter), classes balanced by downsampling.
    "perseus_all": _perseus("perseus_all", "perseus_sample", "PCC_cat_sample.txt", all_magnitudes=True),
    # The disjoint development set (3,082 objects): the recipe keeps 143 bright objects, 66 candidates.
    "perseus_dev": _perseus("perseus_dev", "perseus_dev", "PCC_cat_dev.txt", all_magnitudes=False),
    "perseus_dev_all": _perseus("perseus_dev_all", "perseus_dev", "PCC_cat_dev.txt", all_magnitudes=True),
    "gz2": SampleRecipe(
        "gz2",
        "galaxyzoo",
        "gz2_kaggle",
        ("non_spirals", "spirals"),
        ("train", "val", "test"),
        {"table": "labels.csv", "centre_crop": 180, "split": {"train": 0.7, "val": 0.15, "test": 0.15}},
        "Galaxy Zoo 2 Kaggle images, spirals vs non-spirals, Kim's 180 px centre crop",
    ),
    "deepshadows": SampleRecipe(
        "deepshadows",
        "npz",
        "deepshadows",
        ("artifact", "LSBG"),
        ("train", "test"),
        {"npz": "des_lsbg_vs_artifact_cutouts.npz", "classes": ["artifact", "LSBG"]},
        "DES LSBGs vs artefacts (DeepShadows), the npz's own train/test cutouts",
    ),
}


def shared_data_dir() -> Path:
    """``$ASTRODET_SHARED_DATA``, else ``<checkout>/../shared/data``."""
    env = os.environ.get("ASTRODET_SHARED_DATA")
    return Path(env) if env else Path(astrodet.__file__).resolve().parents[2] / "shared" / "data"


def _convert(spec: SampleRecipe, source: Path, out_json: Path) -> ConversionSummary:
    opts = dict(spec.options)
    if spec.kind == "catalog":
        from astrodet.data.catalog import convert_catalog

        config = SCHEMA_DIR / opts.pop("config")
        catalog = source / opts.pop("catalog")
        return convert_catalog(catalog, out_json, config=config, cutouts=source / "images", **opts)
    if spec.kind == "galaxyzoo":
        from astrodet.data.galaxyzoo import convert_galaxyzoo

        return convert_galaxyzoo(source / opts.pop("table"), out_json, **opts)
    if spec.kind == "npz":
        from astrodet.data.npzcutouts import convert_npz

        return convert_npz(source / opts.pop("npz"), out_json, **opts)
    raise ValueError(f"sample {spec.name!r}: unknown kind {spec.kind!r}")
