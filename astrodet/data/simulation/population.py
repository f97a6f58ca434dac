"""Which clumps a simulated galaxy carries and labels, and how its colour image is stretched: the source population.

Why a module of its own: the detector learns what the simulator labels. The default population (``clump_scout``)
labels what Galaxy Zoo: Clump Scout volunteers marked on single-epoch SDSS cutouts: compact clumps well above a
visibility floor, shown with one fixed Lupton stretch. On real colour images (the Stripe 82 coadds of Mehta et al.
2021, Galaxy Zoo 2) catalogued clumps are fainter and broader, discs are shown brighter, and galaxies have compact
nuclei that are not clumps (docs/real_sky.md). The ``faint`` population changes exactly those things, each measured
on real images that are not used to score the result (docs/real_sky.md, "A simulator for real sky"):

- labelled star-forming clumps down to a lower visibility floor (``min_contrast``, ``min_snr``) and up to
  ``clump_size[1]`` times the PSF FWHM wide (unlabelled knots stay below a fraction of the lower floor);
- an unlabelled compact nucleus in ``nucleus_fraction`` of the galaxies (``nucleus_flux`` x the bulge's flux);
- a per-galaxy Lupton ``stretch`` (log-uniform in the range), so discs span the display brightness of real images.

The extra draws of a non-default population (stretch, nucleus) come from a stream of their own
(``[seed, index, POPULATION_STREAM]``), so a galaxy's parameters (size, colours, PSF, counts) are the default's;
only its sources and picture differ. The default population draws nothing extra: its datasets keep their bytes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from astrodet.errors import AstrodetInputError

POPULATION_STREAM = int.from_bytes(b"pop", "big")  # third seed word of a non-default population's own draws


@dataclass(frozen=True)
class Population:
    """Labelling floors, clump sizes, nuclei and display stretch of a simulated set (see the module docstring)."""

    name: str
    min_contrast: float  # labelled: peak >= min_contrast x local PSF-convolved galaxy light (g+r+i)
    min_snr: float  # labelled: PSF-weighted S/N >= min_snr (g+r+i)
    clump_size: tuple[float, float]  # intrinsic FWHM of star-forming clumps and knots, x the r PSF FWHM (uniform)
    nucleus_fraction: float  # galaxies with an unlabelled compact nucleus
    nucleus_flux: tuple[float, float]  # its flux, x the bulge's (log-uniform)
    stretch: tuple[float, float]  # Lupton asinh stretch of the colour image (log-uniform per galaxy)
    display_q: float  # Lupton Q

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_POPULATION

    def config(self) -> dict[str, Any]:
        """The values, for ``simulation.json`` and dataset keys."""
        return asdict(self)


DEFAULT_POPULATION = "clump_scout"
POPULATIONS: dict[str, Population] = {
    # Galaxy Zoo: Clump Scout's volunteers on single-epoch SDSS cutouts (the embedded default, the main job's data).
    DEFAULT_POPULATION: Population(DEFAULT_POPULATION, 0.7, 25.0, (0.0, 0.7), 0.0, (0.0, 0.0), (7.0, 7.0), 3.5),
    # Real colour images: fainter and broader labelled clumps, unlabelled nuclei, brighter discs (values measured as
    # docs/real_sky.md "A simulator for real sky" describes; never on the galaxies that score it).
    "faint": Population("faint", 0.1, 5.0, (0.0, 2.5), 0.6, (0.05, 0.5), (1.0, 4.0), 3.5),
}


def population(name: str | Population) -> Population:
    """The named population (or ``name`` itself if already one); a clear error naming the known ones."""
    if isinstance(name, Population):
        return name
    if name not in POPULATIONS:
        raise AstrodetInputError(f"--population: expected one of {', '.join(POPULATIONS)}, got {name!r}")
    return POPULATIONS[name]
