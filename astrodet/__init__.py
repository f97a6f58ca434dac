"""astrodet: deep-learning detection and classification of galaxy features for Detectron2 and MMDetection.

The core (``astrodet.data``, ``astrodet.models``, ``astrodet.evaluation``) imports neither framework; the adapters
``astrodet.detectron2`` and ``astrodet.mmdet`` register the core's pieces in each framework's registries on import.
"""

__version__ = "0.1.0"
