"""The embedded default datasets: simulated Clump Scout-like galaxies, the main job's data.

Nothing can be downloaded where astrodet runs, so the main job trains on data astrodet makes itself:
:func:`astrodet.data.simulation.simulate_dataset` renders the galaxies, :func:`astrodet.data.clumpscout.
convert_clumpscout` turns them into COCO train/val/test files in Popp et al.'s 200x200 crop frame, exactly as it
would a real Clump Scout table. This module holds only the recipes; :mod:`astrodet.data.catalogue` names them and
builds each once into the cache (:mod:`astrodet.data.cache`). A recipe's ``key`` hashes everything that determines
the bytes, the generating code included, so a changed recipe makes a new folder and a finished one is reused.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

# Bump when the recipe (splits, options) changes; code changes are caught by hashing the generating code.
RECIPE_VERSION = 1
# Files and packages (relative to astrodet/data) whose code decides the bytes of a generated set.
GENERATING_CODE = (
    "simulation",
    "imaging.py",
    "clumpscout.py",
    "clumpscout_table.py",
    "clumpscout_images.py",
    "toolkit.py",
    "outputs.py",
    "coco.py",
    "splits.py",
)

SPLITS: dict[str, float] = {"train": 0.7, "val": 0.2, "test": 0.1}
CATEGORIES: tuple[str, ...] = ("clump", "odd_clump")


@functools.cache
def code_digest() -> str:
    """Hash of the code that decides the bytes of a generated set: an edit there means a new cache folder.

    Computed once per process, so a running job keeps using the folder it started with.
    """
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for name in GENERATING_CODE:
        path = here / name
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        if not files or not all(f.is_file() for f in files):
            raise FileNotFoundError(f"default dataset recipe: generating code {path} not found")
        for file in files:
            digest.update(str(file.relative_to(here)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class SimulatedRecipe:
    """A simulated detection dataset: how many galaxies, from which seed; built by simulating then converting."""

    name: str
    n_galaxies: int
    seed: int
    write_fits: bool = False  # the detector reads PNGs; FITS files cost time and disk here
    description: str = ""

    task: ClassVar[str] = "detection"
    categories: ClassVar[tuple[str, ...]] = CATEGORIES
    splits: ClassVar[tuple[str, ...]] = tuple(SPLITS)

    def key(self) -> str:
        recipe = {
            "recipe": RECIPE_VERSION,
            "code": code_digest(),
            "splits": SPLITS,
            "n_galaxies": self.n_galaxies,
            "seed": self.seed,
            "write_fits": self.write_fits,
        }
        return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:10]

    def split_file(self, split: str) -> str:
        return f"clumps_{split}.json"

    def build(self, folder: Path, progress: bool = True) -> dict[str, Any]:
        # Imported here: simulation pulls scipy and the renderer, which readers of a finished dataset never need.
        from astrodet.data.clumpscout import convert_clumpscout
        from astrodet.data.simulation import simulate_dataset

        sim = folder / "simulation"
        simulate_dataset(sim, self.n_galaxies, self.seed, progress=progress, write_fits=self.write_fits)
        summary = convert_clumpscout(
            sim / "boxes.csv",
            folder / "clumps.json",
            images_dir=sim / "images",
            frame="crop",
            galaxies_csv=sim / "galaxies.csv",
            keep_empty_images=True,
            split=SPLITS,
            seed=self.seed,
        )
        # Training reads the 200x200 crops the converter wrote; the 400x400 cutouts (about 0.4 MB each) are dropped
        # to keep the cache small. The tables (boxes, clumps, galaxies) stay for analysis.
        shutil.rmtree(sim / "images")
        spec = {k: v for k, v in asdict(self).items() if k not in ("name", "description")}
        return {"spec": spec, "key": self.key(), "summary": summary.line()}


SIMULATED: dict[str, SimulatedRecipe] = {
    # The main job's data: enough galaxies for completeness/purity >= 0.8 on the held-out split on a CPU.
    "default": SimulatedRecipe("default", 3000, 2024, description="3,000 simulated clumpy galaxies (the main job)"),
    # Small enough for tests and quick schedules (seconds to generate).
    "tiny": SimulatedRecipe("tiny", 60, 7, description="60 simulated clumpy galaxies, for tests and quick schedules"),
}
