"""``add_astrodet_config(cfg)``: the configuration keys astrodet adds to Detectron2's defaults, and nothing else.

Why keys only: a user's script, a test or a tool reads or merges configs without building trainers, models or
datasets (Detectron2 projects keep ``config.py`` that way); the code reading each key lives where it is used.
"""

from __future__ import annotations

import yacs.config
from detectron2.config import CfgNode as CN

# Keys renamed since earlier releases: merging an old config names the new key instead of "Non-existent config key".
RENAMED_KEYS: dict[str, tuple[str, str]] = {
    "ASTRODET.CLS.REGISTER": (
        "ASTRODET.REGISTER",
        "one key registers detection and whole-image classification COCO files alike",
    ),
    "ASTRODET.CLS.CENTER_CROP": ("ASTRODET.CLS.CENTRE_CROP", "astrodet spells centre one way in every key"),
}


def add_astrodet_config(cfg: CN) -> CN:
    """Add astrodet's keys (with their defaults) to ``cfg`` in place; returns ``cfg`` for chaining."""
    _add_backbone_keys(cfg)
    _add_classifier_keys(cfg)

    cfg.ASTRODET = CN()
    # COCO files to register before training, as [[dataset_name, path/to/file.json], ...]: detection files and
    # whole-image classification files (info.task == "classification") alike, as astrodet's converters write them
    # (image paths relative to each file's folder). The catalogue's datasets need no entry: astrodet_<name>_<split>
    # (default, tiny, perseus, perseus_all, gz2, deepshadows) are built on first use.
    cfg.ASTRODET.REGISTER = []

    cfg.ASTRODET.IMAGE_RECIPE = CN()
    # How the training images were made from FITS bands, so `astrodet predict` renders FITS inputs the same way
    # (astrodet.inference.model.ImageRecipe); a recipe stored in the checkpoint wins. KIND "" means the simulator's
    # 8-bit Lupton RGB of i, r, g (every config trained on astrodet's PNG cutouts); "rgb8" names another picture
    # recipe (STRETCH "lupton" or "none"). KIND "float": the records are FITS cubes, per-band FITS or .npy arrays,
    # read and normalised by astrodet.data.normalise (FitsDatasetMapper): BANDS in channel order (as many as
    # MODEL.PIXEL_MEAN has entries), STRETCH "asinh", "lupton", "zscale", "standardise" or "none", and PARAMS that
    # stretch's parameters in lower case (e.g. softening, sigma_clip; mean and std per band for standardise;
    # unit "nanomaggy/arcsec2"); docs/fits.md says when to use which.
    cfg.ASTRODET.IMAGE_RECIPE.KIND = ""
    cfg.ASTRODET.IMAGE_RECIPE.BANDS = []
    cfg.ASTRODET.IMAGE_RECIPE.STRETCH = "lupton"
    cfg.ASTRODET.IMAGE_RECIPE.PARAMS = CN(new_allowed=True)

    cfg.ASTRODET.AUG = CN()
    # Flips and exact quarter-turn rotations: sky images have no preferred orientation.
    cfg.ASTRODET.AUG.HFLIP = True
    cfg.ASTRODET.AUG.VFLIP = True
    cfg.ASTRODET.AUG.ROT90 = True
    # Real-sky degradations of 8-bit training images (astrodet.data.degrade; docs/real_sky.md): real SDSS cutouts
    # are JPEGs (quality 75, 4:2:0) and often coarse pixels enlarged 2-9x, the simulated PNGs neither. Per image,
    # with probability JPEG_PROB a JPEG round trip at an integer quality uniform in JPEG_QUALITY (low, high); with
    # probability DEGRADE_PROB pixels coarser by a factor uniform in DEGRADE_FACTOR (area average, then bilinear
    # back). Training only; 0 = off, so existing configs see the same pixels.
    cfg.ASTRODET.AUG.JPEG_PROB = 0.0
    cfg.ASTRODET.AUG.JPEG_QUALITY = (60, 95)
    cfg.ASTRODET.AUG.DEGRADE_PROB = 0.0
    cfg.ASTRODET.AUG.DEGRADE_FACTOR = (1.0, 4.0)

    cfg.ASTRODET.SOLVER = CN()
    # "SGD" (detectron2's own), "ADAMW" or "ADAM" (Popp et al. 2024 used Adam, lr 1e-4, weight decay 5e-5); for
    # classification also "ADADELTA" (the DeepShadows recipe).
    cfg.ASTRODET.SOLVER.OPTIMIZER = "SGD"
    # Precision of the backbone (encoder + FPN) in training steps: "fp32", "bf16" autocast (CPUs with AVX-512/AMX
    # bf16 kernels, and GPUs) or "auto" (bf16 where the device has bf16 kernels, else fp32); the heads and losses
    # stay fp32 as in `astrodet predict --precision`. fp16 needs a gradient scaler: that is Detectron2's own
    # SOLVER.AMP.ENABLED (CUDA only).
    cfg.ASTRODET.SOLVER.PRECISION = "fp32"

    cfg.ASTRODET.EVAL = CN()
    # How a prediction matches a true box for completeness/purity: "iou" (IoU >= IOU_THRESHOLD) or "centre"
    # (centre distance <= CENTRE_RADIUS px); one-to-one, greedy by score (docs/evaluation.md).
    cfg.ASTRODET.EVAL.MATCHING = "iou"
    # Minimum IoU for a match when MATCHING is "iou".
    cfg.ASTRODET.EVAL.IOU_THRESHOLD = 0.5
    # Pixels; about one PSF FWHM in the evaluated frame for point-like clumps.
    cfg.ASTRODET.EVAL.CENTRE_RADIUS = 4.0
    # Operating score threshold for completeness and purity (Popp et al.'s default 0.3); curves cover all.
    cfg.ASTRODET.EVAL.SCORE_THRESHOLD = 0.3
    # Count a prediction only against true boxes of its own class (False: any class).
    cfg.ASTRODET.EVAL.CLASS_AWARE = True
    # Write report.json, report.md and PNG plots into OUTPUT_DIR after each evaluation.
    cfg.ASTRODET.EVAL.REPORT = True
    # Validation images drawn with true and predicted boxes in the report grid.
    cfg.ASTRODET.EVAL.GRID_IMAGES = 12

    cfg.ASTRODET.CLS = CN()
    # Central crop (pixels, 0 = none) then a square resize to INPUT_SIZE, in training and testing.
    cfg.ASTRODET.CLS.CENTRE_CROP = 0
    # Side (pixels) of the square image the classifier sees.
    cfg.ASTRODET.CLS.INPUT_SIZE = 64
    # Adadelta's decay and epsilon when ASTRODET.SOLVER.OPTIMIZER is "ADADELTA" (Keras defaults, as DeepShadows).
    cfg.ASTRODET.CLS.ADADELTA_RHO = 0.95
    cfg.ASTRODET.CLS.ADADELTA_EPS = 1e-7
    # Bootstrap resamples for the report's confidence intervals (seeded with SEED, or 0).
    cfg.ASTRODET.CLS.BOOTSTRAP = 1000
    # Images per batch at evaluation.
    cfg.ASTRODET.CLS.TEST_BATCH = 32

    for old, (new, note) in RENAMED_KEYS.items():
        if not cfg.key_is_renamed(old):
            cfg.register_renamed_key(old, new, message=note)
    accept_ints_for_floats()
    return cfg


def accept_ints_for_floats() -> None:
    """Let a whole number stand for a float: ``ASTRODET.EVAL.CENTRE_RADIUS 4`` (or ``4`` in a YAML file) merges as
    4.0 instead of failing yacs' type check. Every merge (command line, YAML, another config) goes through yacs'
    module-level check, so it is wrapped once; only int -> float for keys whose default is a float is added."""
    check = yacs.config._check_and_coerce_cfg_value_type
    if getattr(check, "accepts_ints_for_floats", False):
        return

    def coerce(replacement, original, key, full_key):
        if isinstance(original, float) and isinstance(replacement, int) and not isinstance(replacement, bool):
            return float(replacement)
        return check(replacement, original, key, full_key)

    coerce.accepts_ints_for_floats = True
    yacs.config._check_and_coerce_cfg_value_type = coerce


def _add_backbone_keys(cfg: CN) -> None:
    cfg.MODEL.ZOOBOT = CN()
    # timm architecture of the encoder; Zoobot's published encoders are timm models (convnext_nano is its default).
    cfg.MODEL.ZOOBOT.ARCH = "convnext_nano"
    # Local weights file (a Zoobot encoder, timm or Lightning checkpoint); empty means random initialisation.
    cfg.MODEL.ZOOBOT.CHECKPOINT = ""
    # Feature maps handed on, by stride: stage2=4, stage3=8, stage4=16, stage5=32.
    cfg.MODEL.ZOOBOT.OUT_FEATURES = ["stage2", "stage3", "stage4", "stage5"]
    # "model" keeps the architecture's norm (ConvNeXt: LayerNorm, batch-independent); "gn" or "frozen_bn" for
    # BatchNorm architectures trained at small batch.
    cfg.MODEL.ZOOBOT.NORM = "model"
    # Stochastic depth rate inside the encoder (0 disables).
    cfg.MODEL.ZOOBOT.DROP_PATH_RATE = 0.0

    cfg.MODEL.DEEPSHADOWS = CN()
    # Block outputs handed on: stage1=stride 2 (16 ch), stage2=4 (32 ch), stage3=8 (64 ch).
    cfg.MODEL.DEEPSHADOWS.OUT_FEATURES = ["stage1", "stage2", "stage3"]
    # Dropout after each block; the paper's classifier uses 0.4.
    cfg.MODEL.DEEPSHADOWS.DROPOUT = 0.4
    # "bn" is the paper's BatchNorm; "gn" suits batch 1-2 detection training.
    cfg.MODEL.DEEPSHADOWS.NORM = "bn"
    # Filters per block (the paper: 16, 32, 64).
    cfg.MODEL.DEEPSHADOWS.CHANNELS = [16, 32, 64]
    # Local weights file of the trunk (tools/pretrain.py --arch deepshadows, or a DeepShadows classifier's); empty
    # means random initialisation.
    cfg.MODEL.DEEPSHADOWS.CHECKPOINT = ""


def _add_classifier_keys(cfg: CN) -> None:
    """MODEL.CLASSIFIER: the head and loss of AstroImageClassifier (astrodet.models.classifier.ClassifierSpec)."""
    cfg.MODEL.CLASSIFIER = CN()
    # "dense": flatten + hidden layer (DeepShadows; fixed input size); "linear": global pooling + linear.
    cfg.MODEL.CLASSIFIER.HEAD = "linear"
    # "bce" (binary, one logit), "ce" (softmax), "soft_ce" / "dirichlet" (Galaxy Zoo vote fractions / counts).
    cfg.MODEL.CLASSIFIER.LOSS = "ce"
    # Classes of the dataset (the vote losses score the question schema's answers instead).
    cfg.MODEL.CLASSIFIER.NUM_CLASSES = 2
    # Backbone output the head reads; "" = the coarsest one.
    cfg.MODEL.CLASSIFIER.IN_FEATURE = ""
    # Hidden units of the dense head (DeepShadows: 1024).
    cfg.MODEL.CLASSIFIER.HIDDEN_DIM = 1024
    # Dropout before the head's output layer.
    cfg.MODEL.CLASSIFIER.DROPOUT = 0.0
    # Per-class loss weights (empty: equal); for bce, weight[1] / weight[0] is the positive-class weight.
    cfg.MODEL.CLASSIFIER.CLASS_WEIGHTS = []
    # Question schema (JSON) of the vote losses; "" = Galaxy Zoo 2 Kaggle (astrodet/models/schemas/gz2_questions.json).
    cfg.MODEL.CLASSIFIER.VOTE_SCHEMA = ""
    # dirichlet loss on fraction-only data: counts = fractions x this many volunteers (GZ2: about 40 per galaxy).
    cfg.MODEL.CLASSIFIER.VOTE_COUNT_SCALE = 40.0
    # Keras-style L2 coefficients (loss += c * sum(w^2)) on conv kernels and hidden dense kernels (DeepShadows:
    # 0.13 and 0.12); 0 uses SOLVER.WEIGHT_DECAY as usual.
    cfg.MODEL.CLASSIFIER.L2_CONV = 0.0
    cfg.MODEL.CLASSIFIER.L2_DENSE = 0.0
