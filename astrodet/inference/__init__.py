"""Framework-free inference: from a trained model and images, cutouts or survey frames to a science catalogue.

The core here reads inputs (PNG/JPEG cutouts with optional sky metadata, COCO files, FITS with a celestial WCS),
renders FITS with the model's :class:`~astrodet.inference.model.ImageRecipe`, tiles large frames, post-processes
as Popp et al. (score threshold, NMS, optional centre removal and merging), converts pixels to RA/Dec, measures
aperture photometry and writes the catalogue. The framework adapters only implement the
:class:`~astrodet.inference.model.Detector` / :class:`~astrodet.inference.model.Classifier` protocols.
"""

from astrodet.inference.model import (
    SIMULATOR_RECIPE,
    Classifier,
    Detections,
    Detector,
    ImageRecipe,
    framework_module,
    load_model,
)

__all__ = [
    "SIMULATOR_RECIPE",
    "Classifier",
    "Detections",
    "Detector",
    "ImageRecipe",
    "framework_module",
    "load_model",
]
