"""The embedded default dataset: simulated Clump Scout-like galaxies, generated on first use and cached.

Nothing can be downloaded where astrodet runs, so the main job trains on data astrodet makes itself:
:func:`astrodet.data.simulate.simulate_dataset` renders the galaxies, :func:`astrodet.data.clumpscout.
convert_clumpscout` turns them into COCO train/val/test files in Popp et al.'s 200x200 crop frame, exactly as it
would a real Clump Scout table. The result lives in ``$ASTRODET_CACHE/datasets/<name>-<key>/`` (default cache
``~/.cache/astrodet``); ``key`` hashes everything that determines the bytes, so a changed recipe makes a new folder
and a finished one is reused. Several processes (a multi-GPU launch) may ask at once: a file lock lets one build
while the others wait, and a ``READY.json`` written last marks a complete dataset.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from astrodet.io import atomic_write_json

# Bump when the recipe (splits, options) changes; code changes are caught by hashing the generating modules.
RECIPE_VERSION = 1
_GENERATING_MODULES = ("simulate.py", "imaging.py", "clumpscout.py", "coco.py", "splits.py")


@functools.cache
def _code_digest() -> str:
    """Hash of the modules whose code decides the bytes of a generated set: an edit there means a new cache folder.

    Computed once per process, so a running job keeps using the folder it started with.
    """
    digest = hashlib.sha256()
    for name in _GENERATING_MODULES:
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()[:12]


SPLITS: dict[str, float] = {"train": 0.7, "val": 0.2, "test": 0.1}
CATEGORIES: tuple[str, ...] = ("clump", "odd_clump")


@dataclass(frozen=True)
class DatasetSpec:
    """What a named default dataset is: how many galaxies, from which seed."""

    n_galaxies: int
    seed: int
    write_fits: bool = False  # the detector reads PNGs; FITS files cost time and disk here

    def key(self) -> str:
        recipe = {"recipe": RECIPE_VERSION, "code": _code_digest(), "splits": SPLITS, **self.__dict__}
        text = json.dumps(recipe, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]


DEFAULT_SPECS: dict[str, DatasetSpec] = {
    # The main job's data: enough galaxies for completeness/purity >= 0.8 on the held-out split on a CPU.
    "default": DatasetSpec(n_galaxies=3000, seed=2024),
    # Small enough for tests and quick schedules (seconds to generate).
    "tiny": DatasetSpec(n_galaxies=60, seed=7),
}


@dataclass(frozen=True)
class DefaultDataset:
    """A generated dataset: its folder and the COCO file of each split (file names relative to the JSON folder)."""

    name: str
    root: Path
    splits: dict[str, Path]

    @property
    def categories(self) -> tuple[str, ...]:
        return CATEGORIES


def cache_dir() -> Path:
    """Where generated datasets live: ``$ASTRODET_CACHE`` or ``~/.cache/astrodet``."""
    return Path(os.environ.get("ASTRODET_CACHE", Path.home() / ".cache" / "astrodet"))


def dataset_root(name: str, root: Path | None = None) -> Path:
    spec = _spec(name)
    return (root or cache_dir() / "datasets") / f"{name}-{spec.key()}"


def split_paths(name: str, root: Path | None = None) -> dict[str, Path]:
    """COCO file of each split; known before generation, so frameworks can register datasets lazily."""
    folder = dataset_root(name, root)
    return {split: folder / f"clumps_{split}.json" for split in SPLITS}


def _spec(name: str) -> DatasetSpec:
    if name not in DEFAULT_SPECS:
        raise KeyError(f"unknown default dataset {name!r}; known: {sorted(DEFAULT_SPECS)}")
    return DEFAULT_SPECS[name]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_default_dataset(
    name: str = "default", root: Path | None = None, workers: int | None = None, progress: bool = True
) -> DefaultDataset:
    """Return the named default dataset, generating it first if it is not complete in the cache."""
    spec = _spec(name)
    folder = dataset_root(name, root)
    paths = split_paths(name, root)
    ready = folder / "READY.json"
    with _locked(folder.with_name(folder.name + ".lock")):
        if not ready.is_file():
            _build(spec, folder, paths, workers=workers, progress=progress)
            atomic_write_json(ready, {"name": name, "spec": spec.__dict__, "key": spec.key()}, indent=2)
    return DefaultDataset(name=name, root=folder, splits=paths)


def _build(spec: DatasetSpec, folder: Path, paths: dict[str, Path], workers: int | None, progress: bool) -> None:
    # Imported here: simulation pulls scipy and the renderer, which readers of a finished dataset never need.
    from astrodet.data.clumpscout import convert_clumpscout
    from astrodet.data.simulate import simulate_dataset

    if folder.exists():  # an interrupted earlier build: start clean
        shutil.rmtree(folder)
    sim = folder / "simulation"
    simulate_dataset(sim, spec.n_galaxies, spec.seed, workers=workers, progress=progress, write_fits=spec.write_fits)
    convert_clumpscout(
        sim / "boxes.csv",
        folder / "clumps.json",
        images_dir=sim / "images",
        frame="crop",
        galaxies_csv=sim / "galaxies.csv",
        keep_empty_images=True,
        split=SPLITS,
        seed=spec.seed,
    )
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise RuntimeError(f"default dataset build wrote no {missing}")
    # Training reads the 200x200 crops the converter wrote; the 400x400 cutouts (about 0.4 MB each) are dropped to
    # keep the cache small. The tables (boxes, clumps, galaxies) stay for analysis.
    shutil.rmtree(sim / "images")
