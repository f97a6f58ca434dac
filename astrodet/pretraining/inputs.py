"""Unlabelled images for pretraining: find them, read them as model input, and account for every one.

Why a bank in memory: self-supervised pretraining visits every image many times (two augmented views per visit),
and a FITS cube's normalisation (sigma-clipped sky statistics per band) costs more than the augmentations. So each
image is read once, normalised as the finetuning configs will normalise it, centre-cropped to a square, resized to
the training size and kept as float16 ``(N, C, S, S)``: 10,000 five-band 128-pixel images take 1.6 GB.

Pixels become what the downstream configs feed the encoder: PNG/JPEG cutouts (RGB, 0-255) are standardised by
``picture_mean``/``picture_std`` (the detection configs' ``PIXEL_MEAN``/``PIXEL_STD`` by default; the classification
configs use 0 and 255), FITS/NumPy bands by an :class:`~astrodet.inference.model.ImageRecipe` through
:func:`astrodet.data.normalise.prepare` (what training and ``astrodet predict`` call; the FITS configs then use mean
0 and std 1). Every input is used or rejected with a reason in a :class:`~astrodet.data.rejects.RejectsLedger`;
files in a folder that are not images are counted and reported, never dropped without a word.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from astrodet.data.coco import load_coco, resolve_image_path
from astrodet.data.imaging import FITS_SUFFIXES, UnreadableImage, decode_image
from astrodet.data.normalise import MissingBands, prepare, read_bands
from astrodet.data.rejects import RejectsLedger
from astrodet.data.wholeimage import load_cutout
from astrodet.errors import AstrodetInputError
from astrodet.inference.model import ImageRecipe
from astrodet.workers import die_with_parent

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg")
# The detection configs' PIXEL_MEAN / PIXEL_STD (configs/Base-AstroRCNN-FPN.yaml: the simulated default set, RGB).
DETECTION_PIXEL_MEAN = (36.7, 32.7, 29.4)
DETECTION_PIXEL_STD = (38.7, 33.4, 28.8)
PICTURE_CHANNELS = 3


@dataclass(frozen=True)
class ImageSource:
    """One image to pretrain on: a picture or a FITS file, or a COCO record (its per-band files and band names)."""

    path: Path
    kind: str  # "picture" or "fits"
    band_files: tuple[tuple[str, Path], ...] = ()
    record_bands: tuple[str, ...] = ()


@dataclass
class Discovery:
    """What the INPUT arguments hold: the images, and folder entries that are not images (counted by suffix)."""

    sources: list[ImageSource]
    ignored: Counter = field(default_factory=Counter)
    duplicates: int = 0

    def kinds(self) -> Counter:
        return Counter(source.kind for source in self.sources)


@dataclass(frozen=True)
class PixelRecipe:
    """How inputs become encoder input: ``fits`` (None when no FITS input) and the pictures' mean/std per channel."""

    fits: ImageRecipe | None
    picture_mean: tuple[float, ...] = DETECTION_PIXEL_MEAN
    picture_std: tuple[float, ...] = DETECTION_PIXEL_STD

    def __post_init__(self) -> None:
        if len(self.picture_mean) != PICTURE_CHANNELS or len(self.picture_std) != PICTURE_CHANNELS:
            raise AstrodetInputError("--pixel-mean and --pixel-std take 3 values each (R, G, B) for pictures")
        if not all(float(s) > 0 for s in self.picture_std):
            raise AstrodetInputError(f"--pixel-std must be > 0 per channel, got {list(self.picture_std)}")

    def to_dict(self) -> dict:
        """Plain values for checkpoint metadata (read back with ``weights_only=True``)."""
        return {
            "fits_recipe": None if self.fits is None else self.fits.to_dict(),
            "picture_mean": [float(v) for v in self.picture_mean],
            "picture_std": [float(v) for v in self.picture_std],
        }


@dataclass
class ImageBank:
    """The readable inputs as float16 ``(N, C, S, S)`` encoder input, their files, and the rejected ones."""

    images: torch.Tensor
    files: list[str]
    rejects: RejectsLedger

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(PICTURE_SUFFIXES):
        return "picture"
    if name.endswith(FITS_SUFFIXES):
        return "fits"
    return None


def _suffix(path: Path) -> str:
    return "".join(path.suffixes[-2:]).lower() if path.name.lower().endswith(".gz") else path.suffix.lower()


def _coco_sources(path: Path) -> list[ImageSource]:
    """One source per image record of a COCO file (paths relative to the file, as the datasets resolve them)."""
    data = load_coco(path)
    info = data.get("info")
    sources = []
    for record in data["images"]:
        file = resolve_image_path(path, record["file_name"], info)
        bands = tuple((str(b), resolve_image_path(path, f, info)) for b, f in (record.get("band_files") or {}).items())
        kind = "fits" if bands else _kind(file)
        if kind is None:
            raise AstrodetInputError(f"{path}: image {record['file_name']!r} is neither a picture nor FITS")
        sources.append(ImageSource(file, kind, bands, tuple(str(b) for b in record.get("bands") or ())))
    return sources


def discover(inputs: Sequence[str | os.PathLike[str]]) -> Discovery:
    """The images named by ``inputs``: picture and FITS files, folders (searched recursively; hidden entries and
    other files skipped and counted) and COCO ``.json`` files (their image records). A missing path, a named file of
    another type, or no image at all is a one-line error; an image named twice is used once."""
    found = Discovery(sources=[])
    seen: set[Path] = set()
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            candidates = []
            for file in sorted(path.rglob("*")):
                if not file.is_file():
                    continue
                if _kind(file) is None or any(part.startswith(".") for part in file.relative_to(path).parts):
                    found.ignored[_suffix(file) or "(no suffix)"] += 1
                else:
                    candidates.append(ImageSource(file, _kind(file)))
        elif path.is_file() and path.suffix.lower() == ".json":
            candidates = _coco_sources(path)
        elif path.is_file() and _kind(path) is not None:
            candidates = [ImageSource(path, _kind(path))]
        elif path.exists():
            raise AstrodetInputError(f"{path}: not an image (PNG, JPEG, FITS), a COCO .json or a folder of images")
        else:
            raise AstrodetInputError(f"{path}: no such file or folder")
        for source in candidates:
            key = source.path.resolve()
            if key in seen and not source.band_files:
                found.duplicates += 1
                continue
            seen.add(key)
            found.sources.append(source)
    if not found.sources:
        skipped = f" (skipped {sum(found.ignored.values())} other files)" if found.ignored else ""
        raise AstrodetInputError(f"no images (PNG, JPEG, FITS) found in {', '.join(map(str, inputs))}{skipped}")
    return found


def refuse_output_in_inputs(out: Path, inputs: Sequence[str | os.PathLike[str]]) -> None:
    """Writing the checkpoint (or its state and rejects files) among the images would add files to the user's data
    folders, and a later run over the same folder would meet them."""
    folder = out.resolve().parent
    for given in inputs:
        path = Path(given).resolve()
        if path.is_dir() and (folder == path or path in folder.parents):
            raise AstrodetInputError(f"--out {out}: inside the input folder {given}; write it somewhere else")
        if path == out.resolve():
            raise AstrodetInputError(f"--out {out}: is one of the inputs")


def _square(image: torch.Tensor, size: int) -> torch.Tensor:
    """Centre crop of ``(C, H, W)`` to a square, resized (antialiased) to ``size`` x ``size``."""
    height, width = image.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    crop = image[:, top : top + side, left : left + side]
    if side == size:
        return crop
    return F.interpolate(crop[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]


def load_pixels(source: ImageSource, recipe: PixelRecipe, size: int) -> np.ndarray:
    """One input as ``(C, size, size)`` float32 encoder input; :class:`AstrodetInputError` says why it cannot be."""
    if source.kind == "picture":
        decode_image(source.path)  # in full: a file cut short is refused here, not in the middle of training
        array = load_cutout(source.path)  # (H, W, C), 0-255
        if array.shape[-1] != PICTURE_CHANNELS:
            raise AstrodetInputError(f"{source.path}: {array.shape[-1]} channel(s), pictures are read as RGB (3)")
        mean = np.asarray(recipe.picture_mean, dtype=np.float32)
        std = np.asarray(recipe.picture_std, dtype=np.float32)
        array = (array - mean) / std
    else:
        if recipe.fits is None:
            raise AstrodetInputError(f"{source.path}: a FITS input needs --bands (or --recipe)")
        band_files = dict(source.band_files) or None
        cube = read_bands(source.path, recipe.fits.bands, band_files, source.record_bands or None)
        array = prepare(cube, recipe.fits)  # (H, W, C)
    tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
    return _square(tensor, size).numpy()


def _reason(err: AstrodetInputError) -> str:
    if isinstance(err, MissingBands):
        return "missing_bands"
    if isinstance(err, UnreadableImage):
        return "unreadable_image"
    return "bad_pixels"


def _load_or_reason(job: tuple[ImageSource, PixelRecipe, int]) -> tuple[np.ndarray | None, str, str]:
    """``(pixels, "", "")`` or ``(None, reason, message)``: what a pool worker sends back for one input."""
    source, recipe, size = job
    try:
        return load_pixels(source, recipe, size).astype(np.float16), "", ""
    except AstrodetInputError as err:
        return None, _reason(err), str(err)


def check_channels(kinds: Counter, recipe: PixelRecipe) -> int:
    """The encoder's input channels; pictures (RGB) and FITS bands in one run must agree."""
    channels = {PICTURE_CHANNELS} if kinds.get("picture") else set()
    if kinds.get("fits"):
        if recipe.fits is None:
            raise AstrodetInputError(
                f"{kinds['fits']} FITS input(s): name their bands in channel order with --bands "
                "(e.g. --bands u g r i z) or give a --recipe"
            )
        channels.add(recipe.fits.channels)
    if len(channels) > 1:
        raise AstrodetInputError(
            f"{kinds['picture']} pictures (3 RGB channels) and {kinds['fits']} FITS inputs of {recipe.fits.channels} "
            "bands: an encoder takes one band count; pretrain on one kind, or name 3 FITS bands"
        )
    return channels.pop()


def read_bank(sources: Sequence[ImageSource], recipe: PixelRecipe, size: int, workers: int = 0) -> ImageBank:
    """Read every source once (in ``workers`` processes when > 0); unreadable ones go to the ledger with a reason.
    No readable image at all is an error naming the commonest reason."""
    jobs = [(source, recipe, size) for source in sources]
    if workers > 0 and len(jobs) > 1:
        with ProcessPoolExecutor(workers, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
            results = list(pool.map(_load_or_reason, jobs, chunksize=16))
    else:
        results = [_load_or_reason(job) for job in jobs]
    rejects = RejectsLedger()
    kept, files = [], []
    for source, (pixels, reason, message) in zip(sources, results, strict=True):
        if pixels is None:
            rejects.add(source.path, 0, reason, message)
        else:
            kept.append(torch.from_numpy(pixels))
            files.append(str(source.path))
    if not kept:
        reason, count = next(iter(rejects.counts().items()))
        example = rejects.rejects()[0].message
        raise AstrodetInputError(f"none of the {len(sources)} images could be used ({reason}: {count}; e.g. {example})")
    return ImageBank(torch.stack(kept), files, rejects)
