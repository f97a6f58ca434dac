"""The catalogue of named datasets astrodet can build itself: one name -> one recipe -> ``{split: COCO file}``.

Why: configs of both frameworks name their data (``default``, ``tiny``, ``perseus``, ``gz2``, ...) instead of paths,
and the data is made on first use: simulated (:mod:`astrodet.data.default`) or converted from the real samples
beside the checkout (:mod:`astrodet.data.samples`). Both adapters ask this module and nothing else; the build-once
protocol (lock, ``READY.json``) is :func:`astrodet.data.cache.build_once`. Adding a dataset is one recipe object
with ``name``, ``task``, ``categories``, ``splits``, ``description``, ``key()``, ``split_file(split)`` and
``build(folder, progress)`` in one of those modules (or a new one listed in :func:`recipes`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from astrodet.data.cache import build_once, cache_dir, ready_info
from astrodet.data.default import SIMULATED
from astrodet.data.samples import SAMPLES


class Recipe(Protocol):
    """What the catalogue needs of a dataset recipe."""

    name: str
    task: str  # "detection" or "classification"
    categories: tuple[str, ...]
    splits: tuple[str, ...]
    description: str

    def key(self) -> str: ...  # hash of everything that decides the bytes (a changed recipe -> a new folder)

    def split_file(self, split: str) -> str: ...  # the split's COCO file name inside the dataset folder

    def build(self, folder: Path, progress: bool = True) -> dict[str, Any]: ...  # write the folder; its READY record


def recipes() -> dict[str, Recipe]:
    """Every named dataset, simulated first."""
    return {**SIMULATED, **SAMPLES}


def names(task: str | None = None) -> list[str]:
    """The catalogue's names, optionally only those of one task (``detection`` or ``classification``)."""
    return [name for name, r in recipes().items() if task is None or r.task == task]


def recipe(name: str) -> Recipe:
    """The recipe called ``name``; an unknown name is a KeyError listing the known ones."""
    known = recipes()
    if name not in known:
        raise KeyError(f"unknown astrodet dataset {name!r}; known: {sorted(known)}")
    return known[name]


def folder(name: str, root: Path | None = None) -> Path:
    """The dataset's folder in the cache (``<root or $ASTRODET_CACHE/datasets>/<name>-<key>``), built or not."""
    return (root or cache_dir() / "datasets") / f"{name}-{recipe(name).key()}"


def split_paths(name: str, root: Path | None = None) -> dict[str, Path]:
    """The COCO file of each split; known before building, so frameworks can register datasets lazily."""
    r = recipe(name)
    base = folder(name, root)
    return {split: base / r.split_file(split) for split in r.splits}


def is_built(name: str, root: Path | None = None) -> bool:
    return ready_info(folder(name, root)) is not None


def ensure(name: str, root: Path | None = None, progress: bool = True) -> dict[str, Path]:
    """``{split: COCO file}`` of the named dataset, building it first (once, under a lock) if the cache lacks it."""
    r = recipe(name)
    base = folder(name, root)
    paths = split_paths(name, root)

    def build(target: Path) -> dict[str, Any]:
        info = r.build(target, progress=progress)
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if missing:
            raise RuntimeError(f"dataset {name!r}: the build wrote no {missing}")
        return {"name": name, **info}

    build_once(base, build, what=f"astrodet dataset {name!r}")
    return paths
