"""Simulated SDSS clumpy galaxies labelled like Galaxy Zoo: Clump Scout: astrodet's embedded default training data.

Why: nothing can be downloaded on the machines astrodet must run on, yet its main job (Faster R-CNN clump
detection, Popp et al. 2024) needs images that look and label like the SDSS cutouts Clump Scout volunteers marked.
This package draws such galaxies, renders them at SDSS depth and resolution, and writes them in the Clump Scout box
format, with the box statistics calibrated on the real tables (see :mod:`astrodet.data.boxstats`).

What one galaxy is (every draw from ``numpy.random.default_rng([seed, index])``, so each galaxy depends only on the
seed and its index, never on the number of worker processes):

- *Observation*: g, r, i at SDSS depth: sky 22.0 / 21.1 / 20.4 mag arcsec^-2, photon noise of sky and sources with
  SDSS gains, read noise; Moffat PSF (beta 2.8-3.6), r-band FWHM 1.1-1.7 arcsec (median 1.35; g 5% wider, i 4%
  narrower). Data are made on the native SDSS grid (0.396 arcsec/px, nanomaggies per pixel, sky subtracted) and
  resampled with a Keys bicubic kernel onto the 400x400 cutout, as Clump Scout cutouts were made from SDSS frames,
  so the noise has the same pixel-correlated texture. Optionally (``bands="ugriz"``) also u and z: sky 22.1 / 19.0
  mag arcsec^-2 and ~165 / ~150 electrons per nanomaggy (much noisier than g, r, i, as SDSS), seeing ~ wavelength
  ^-0.2 (u 12% wider, z 7% narrower than r), colours per kind of light (clumps bright in u, bulges and red compact
  sources faint in it, stars on the stellar locus), all drawn from separate random streams so that every g, r, i
  value is the same with or without them.
- *Cutout scale*: Clump Scout cutouts are scaled so the galaxy fills the frame. The per-galaxy pixel scale follows
  from the volunteers' box size: a box is ``BOX_SIDE_PER_FWHM`` r-band PSF FWHMs wide (one side per galaxy, as in
  the real tables), the side is drawn from the real per-galaxy distribution for the galaxy's clump count, and
  ``pixel_scale = BOX_SIDE_PER_FWHM * fwhm_arcsec / side`` (about 0.05-0.4 arcsec/px, median 0.12). The disk's
  size in cutout pixels is drawn independently (scale length ~36 px), so its angular size follows from the scale.
- *Galaxy*: exponential disk (face-on central surface brightness, scale length, axis ratio from a random
  inclination, position angle), optional logarithmic spiral arms, and a Sersic bulge (n 1.5-4) that is redder
  than the disk.
- *Labelled sources* (counts from the real joint distribution of clumps and odd clumps per galaxy, plus
  ``NEGATIVE_FRACTION`` = 10% of galaxies with none): giant star-forming clumps (label 1, kind ``sf_clump``:
  compact, near PSF size, bluer than the disk, placed in the disk plane following its light, arms and inclination,
  only where the disk itself is visible, never on the nucleus), and odd clumps (label 2):
  foreground stars (kind ``star``, stellar-locus colours, Moffat wings) or red compact sources on the disk (kind
  ``red_compact``). Every labelled source is *visible*: its peak contrast over the local PSF-convolved galaxy light
  is at least ``MIN_CONTRAST`` and its PSF-weighted signal-to-noise at least ``MIN_SNR`` (both in g+r+i), with
  a random margin above both (in the spirit of the flux-ratio cuts of Adams et al. 2022).
- *Unlabelled content*, so that labels stay consistent with pixels: faint star-forming knots at most
  ``FAINT_MAX_FRACTION`` of both visibility thresholds (invisible), extended background galaxies away from the
  disk, an occasional companion galaxy, and field stars outside the central 200x200 training crop only.
- *Source population* (``source_population`` / ``--population``): the above is Clump Scout's (``clump_scout``, the
  default). ``faint`` is the real-sky one: lower visibility floors, clumps up to 2.5 PSF FWHM wide, an unlabelled
  compact nucleus in 60% of the galaxies and a Lupton stretch drawn per galaxy, from a random stream of its own, so
  the galaxies are the default's (:mod:`~astrodet.data.simulation.population`; docs/real_sky.md).

Outputs in the dataset folder (the folder is published as one unit, see :func:`simulate_dataset`; same seed ->
identical bytes, whatever ``workers``):

- ``images/<local_id>.png``: 400x400 RGB, north up, east left, Lupton asinh of (i, r, g) surface brightness via
  :func:`astrodet.data.imaging.lupton_rgb`.
- ``fits/<local_id>_<band>.fits`` (g, r, i): the native-resolution data, ``BUNIT = 'nanomaggy'`` per 0.396 arcsec
  pixel (SDSS frame units; 22.5 mag = 1 nanomaggy), TAN WCS with the galaxy at ``CRPIX`` = (``fits_x`` + 1,
  ``fits_y`` + 1) of galaxies.csv; headers carry PSF, sky and gain.
- ``fits_cutout/<local_id>_<band>.fits`` (only with ``write_cutout_fits`` / ``--cutout-fits``): the PNG's own
  400x400 frame per band, float32 nanomaggies per arcsec^2 (the values the PNG was coloured from), rows flipped to
  FITS order, with the cutout's TAN WCS at the galaxy's pixel scale (``BUNIT = 'nanomaggy/arcsec2'``).
- ``fits_crop/<local_id>.fits`` (only with ``write_crop_cubes`` / ``--crop-cubes``): the 200x200 training crop
  of every simulated band as one float32 cube (C, 200, 200), ``BAND1..BANDC``, ``BUNIT = 'nanomaggy/arcsec2'``,
  the crop's TAN WCS, rows in FITS order (the embedded default's FITS form, ``default_fits``, reads these).
- ``boxes.csv``: exactly the Clump Scout table columns ``image_id,local_ids,filename,label,label_text,x1,x2,y1,y2``.
  ``x1..y2`` are in pixels of the central 200x200 crop (PNG pixels 100-300), i.e. PNG-frame coordinates minus 100,
  so boxes of sources outside the crop have negative or > 200 values, as in the real table; label 1 ``clumpy``,
  2 ``clumpy, odd``; ``filename`` is ``images/<local_id>.png``.
- ``clumps.csv``: one row per box, same order: source positions (RA/Dec, PNG-frame x, y), g/r/i fluxes in
  nanomaggies (u, z appended as ``flux_u``, ``flux_z`` when simulated), flux ratio to the smooth galaxy (bulge +
  disk) in g and r, r magnitude, contrast, SNR, kind.
- ``galaxies.csv``: one row per galaxy, including galaxies without clumps (``mag_u``, ``mag_z`` appended when
  simulated).
- ``simulation.json``: seed, count and the calibration constants, no timestamp.

Coordinates: PNG frame (x, y) is continuous with the origin at the top-left corner of the top-left pixel, x right,
y down (as :mod:`astrodet.data.coco`); the galaxy centre is at (200, 200). The 0-based FITS pixel of a PNG point
is ``fits_x + (x - 200) * pixel_scale / 0.396``, ``fits_y - (y - 200) * pixel_scale / 0.396``; the WCS of the PNG
frame is :func:`astrodet.data.imaging.celestial_wcs` (ra, dec, pixel_scale, (400, 400)) after
:func:`astrodet.data.imaging.png_to_fits_pixel`. image_id is 50,000,000 + galaxy index (Zooniverse-like subject id,
outside the real Clump Scout range); local_ids is a 12-digit id unique for (seed mod 90,000, index).

Modules, one concern each: :mod:`~astrodet.data.simulation.optics` (observing constants, PSF, profiles,
magnitudes, resampling), :mod:`~astrodet.data.simulation.galaxy` (parameters and rendering of one galaxy),
:mod:`~astrodet.data.simulation.sources` (labelling rule, labelled and unlabelled sources),
:mod:`~astrodet.data.simulation.population` (the labelling floors, clump sizes, nuclei and stretch of a population),
:mod:`~astrodet.data.simulation.writers` (PNG, FITS, CSV rows) and :mod:`~astrodet.data.simulation.dataset`
(:func:`simulate_dataset`, worker processes, ``simulation.json``, the ``astrodet simulate`` command).
"""

from astrodet.data.simulation.dataset import (
    MAX_GALAXIES,
    SimulationSummary,
    add_arguments,
    band_tuple,
    run,
    simulate_dataset,
    simulate_galaxy,
)
from astrodet.data.simulation.galaxy import BOX_SIDE_PER_FWHM, IMAGE_ID_BASE, NEGATIVE_FRACTION
from astrodet.data.simulation.optics import (
    BANDS,
    CROP_OFFSET,
    CROP_SIDE,
    EXTRA_BANDS,
    FRAME,
    SDSS_BANDS,
    SDSS_PIXEL,
    ZEROPOINT,
)
from astrodet.data.simulation.sources import DISK_MIN_SNR, FAINT_MAX_FRACTION, LABEL_MARGIN, MIN_CONTRAST, MIN_SNR
from astrodet.data.simulation.writers import BOXES_COLUMNS, CLUMP_COLUMNS, GALAXY_COLUMNS

__all__ = [
    "BANDS",
    "BOXES_COLUMNS",
    "BOX_SIDE_PER_FWHM",
    "CLUMP_COLUMNS",
    "CROP_OFFSET",
    "CROP_SIDE",
    "DISK_MIN_SNR",
    "EXTRA_BANDS",
    "FAINT_MAX_FRACTION",
    "FRAME",
    "GALAXY_COLUMNS",
    "IMAGE_ID_BASE",
    "LABEL_MARGIN",
    "MAX_GALAXIES",
    "MIN_CONTRAST",
    "MIN_SNR",
    "NEGATIVE_FRACTION",
    "SDSS_BANDS",
    "SDSS_PIXEL",
    "ZEROPOINT",
    "SimulationSummary",
    "add_arguments",
    "band_tuple",
    "run",
    "simulate_dataset",
    "simulate_galaxy",
]
