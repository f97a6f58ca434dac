"""The embedded default datasets: simulated Clump Scout-like galaxies, the main job's data.

Nothing can be downloaded where astrodet runs, so the main job trains on data astrodet makes itself:
:func:`astrodet.data.simulation.simulate_dataset` renders the galaxies, :func:`astrodet.data.clumpscout.
convert_clumpscout` turns them into COCO train/val/test files in Popp et al.'s 200x200 crop frame, exactly as it
would a real Clump Scout table. The FITS form of a set (``default_fits``, ``tiny_fits``) is the same simulation run
with u and z added and a float32 cube of the training crop written per galaxy; its COCO files are the PNG form's
with each image pointing at its cube and boxes flipped to FITS row order. This module holds only the recipes;
:mod:`astrodet.data.catalogue` names them and builds each once into the cache (:mod:`astrodet.data.cache`). A
recipe's ``key`` hashes everything that determines the bytes, the generating code included, so a changed recipe
makes a new folder and a finished one is reused.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from astrodet.data.coco import write_coco

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
FITS_BANDS: tuple[str, ...] = ("u", "g", "r", "i", "z")  # channel order of the FITS form's cubes


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
    population: str = "clump_scout"  # astrodet.data.simulation.population: which clumps are labelled

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
        if self.population != "clump_scout":  # the default sets' keys stay what they were
            recipe["population"] = self.population
        return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:10]

    def split_file(self, split: str) -> str:
        return f"clumps_{split}.json"

    def build(self, folder: Path, progress: bool = True) -> dict[str, Any]:
        summary = self._simulate_and_convert(folder, progress)
        spec = {k: v for k, v in asdict(self).items() if k not in ("name", "description")}
        return {"spec": spec, "key": self.key(), "summary": summary}

    def _simulate_and_convert(self, folder: Path, progress: bool, **simulator_options: Any) -> str:
        """Simulate into ``folder/simulation`` and convert to the PNG form's COCO files; the conversion's summary."""
        # Imported here: simulation pulls scipy and the renderer, which readers of a finished dataset never need.
        from astrodet.data.clumpscout import convert_clumpscout
        from astrodet.data.simulation import simulate_dataset

        sim = folder / "simulation"
        # In place: build_once publishes the whole dataset folder (READY.json last), and the COCO files record the
        # paths of the simulation they were made from, which a second, inner switch would turn into hidden ones.
        options = {"progress": progress, "write_fits": self.write_fits, "atomic": False, **simulator_options}
        if self.population != "clump_scout":
            options["source_population"] = self.population
        simulate_dataset(sim, self.n_galaxies, self.seed, **options)
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
        return summary.line()


@dataclass(frozen=True)
class SimulatedFitsRecipe(SimulatedRecipe):
    """The FITS form of a simulated set: the same galaxies, split and boxes as the PNG recipe of the same
    ``n_galaxies`` and ``seed``, each image a float32 cube (u, g, r, i, z) of the 200x200 training crop.

    One simulation gives both forms: g, r, i are the same bytes with or without u and z, so the PNG-form conversion
    (kept beside, as ``clumps_<split>.json``) decides the split and boxes, and the FITS form's COCO files are derived
    from it: file names point at ``simulation/fits_crop/<id>.fits``, boxes flip to FITS rows (row 0 = south).
    """

    def key(self) -> str:
        return hashlib.sha256(f"{super().key()} fits {FITS_BANDS}".encode()).hexdigest()[:10]

    def split_file(self, split: str) -> str:
        return f"clumps_fits_{split}.json"

    def build(self, folder: Path, progress: bool = True) -> dict[str, Any]:
        summary = self._simulate_and_convert(folder, progress, bands=FITS_BANDS, write_crop_cubes=True)
        for split in self.splits:
            png_form = folder / super().split_file(split)
            fits_form = fits_form_coco(json.loads(png_form.read_text(encoding="utf-8")), "simulation/fits_crop")
            fits_form["info"]["png_form"] = png_form.name
            write_coco(fits_form, folder / self.split_file(split))
        spec = {k: v for k, v in asdict(self).items() if k not in ("name", "description")}
        return {"spec": {**spec, "bands": list(FITS_BANDS)}, "key": self.key(), "summary": summary}


def fits_form_coco(png_form: dict[str, Any], cubes: str) -> dict[str, Any]:
    """The FITS form of a simulated set's crop-frame COCO data: each image ``<cubes>/<galaxy id>.fits`` (the cube
    the simulator wrote for the PNG crop of the same name), its boxes flipped to FITS row order (y -> H - y - h)."""
    heights = {image["id"]: image["height"] for image in png_form["images"]}
    images = []
    for image in png_form["images"]:
        stem = Path(image["file_name"]).stem
        record = {k: v for k, v in image.items() if k != "source_file_name"}  # the 400x400 PNGs are not kept
        images.append({**record, "file_name": f"{cubes}/{stem}.fits", "bands": list(FITS_BANDS)})
    annotations = []
    for ann in png_form["annotations"]:
        x, y, w, h = ann["bbox"]
        annotations.append({**ann, "bbox": [x, heights[ann["image_id"]] - y - h, w, h]})
    info = {
        **png_form["info"],
        "description": png_form["info"]["description"] + "; FITS form: float32 u, g, r, i, z cubes of the crop",
        "image_form": {
            "format": "fits_cube",
            "bands": list(FITS_BANDS),
            "bunit": "nanomaggy/arcsec2",
            "rows": "FITS order (row 0 = south); boxes are the PNG form's flipped: y = height - y_png - h",
        },
    }
    return {**png_form, "info": info, "images": images, "annotations": annotations}


SIMULATED: dict[str, SimulatedRecipe] = {
    # The main job's data: enough galaxies for completeness/purity >= 0.8 on the held-out split on a CPU.
    "default": SimulatedRecipe("default", 3000, 2024, description="3,000 simulated clumpy galaxies (the main job)"),
    # Small enough for tests and quick schedules (seconds to generate).
    "tiny": SimulatedRecipe("tiny", 60, 7, description="60 simulated clumpy galaxies, for tests and quick schedules"),
    # The default's galaxies with the real-sky source population: fainter, broader labelled clumps, unlabelled
    # nuclei, brighter discs (docs/real_sky.md, "A simulator for real sky"); and a tiny one for tests.
    "faint": SimulatedRecipe(
        "faint", 3000, 2024, population="faint",
        description="the default's 3,000 galaxies with faint, broad clumps and unlabelled nuclei (real sky)",
    ),
    "tiny_faint": SimulatedRecipe(
        "tiny_faint", 60, 7, population="faint",
        description="the tiny set's 60 galaxies with the real-sky population, for tests",
    ),
    # Their FITS form (same galaxies, split and boxes): float32 u, g, r, i, z cubes of the crop, for multi-band models.
    "default_fits": SimulatedFitsRecipe(
        "default_fits", 3000, 2024, description="the default's 3,000 galaxies as 5-band (ugriz) float32 FITS cubes"
    ),
    "tiny_fits": SimulatedFitsRecipe(
        "tiny_fits", 60, 7, description="the tiny set's 60 galaxies as 5-band (ugriz) float32 FITS cubes, for tests"
    ),
}
