"""Detectron2's checkpointer, reading model files without ever running code from them.

Every route by which a user names a weights file for a Detectron2 run goes through :class:`AstroCheckpointer`:
``MODEL.WEIGHTS`` when training (``AstroTrainer.resume_or_load``), ``--resume`` (the file ``last_checkpoint`` in
``OUTPUT_DIR`` names) and ``tools/train_net.py --eval-only``. Detectron2's own checkpointer unpickles ``.pkl`` files
with plain ``pickle.load``, which runs whatever code the file asks for, and trains from random weights, exiting 0,
when a checkpoint's names match none of the model's. Here:

- ``.pth`` (and pycls' ``.pyth``): ``torch.load(weights_only=True)``. Detectron2's own checkpoints hold the model's
  state dict, ``iteration`` and the trainer's state (optimizer, scheduler, hooks, AMP scaler): tensors, numbers
  and strings in plain containers, so nothing needs allow-listing (checked on a saved run:
  ``torch.serialization.get_unsafe_globals_in_checkpoint`` is empty).
- ``.pkl`` (Detectron2's model zoo and Caffe2/Detectron1 weights, e.g. the MSRA ImageNet ``R-50.pkl``): plain
  pickles of numpy arrays in dicts, read by :class:`NumpyOnlyUnpickler`, which builds numpy arrays, dtypes and
  scalars, ``OrderedDict`` and Python's own containers, and refuses every other global a pickle names: numpy
  arrays in dicts are what the model zoo's files and Detectron2's conversion scripts
  (``tools/convert-torchvision-to-d2.py``) hold.
- a checkpoint none of whose weights fit the model (by name and shape) is refused, naming the file and a few
  expected and found names.

Writing: the trainer's checkpointer is an AstroCheckpointer too (:meth:`AstroCheckpointer.take_over`, the
PeriodicCheckpointer hook included), and every checkpoint it saves records what a predictor would otherwise have to
take from a config (:func:`training_metadata`): ``image_recipe`` (how the training pixels were made) and the
training data's ``classes`` (and a vote model's ``vote_class_columns``).
"""

from __future__ import annotations

import codecs
import collections
import json
import pickle
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import CfgNode
from detectron2.data import MetadataCatalog
from detectron2.engine import DefaultTrainer, hooks
from detectron2.utils.file_io import PathManager

from astrodet.errors import AstrodetInputError
from astrodet.inference.model import SIMULATOR_RECIPE, ImageRecipe
from astrodet.models.checkpoints import load_weights_only

_numpy_core = np._core if hasattr(np, "_core") else np.core


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a global outside :data:`_NUMPY_PICKLE_GLOBALS` (as opposed to being cut short)."""


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """Stands in for ``_codecs.encode``, which protocol-2 pickles written by Python 3 call to rebuild ``bytes``
    (numpy's array data); only that use is allowed."""
    if encoding not in ("latin1", "latin-1"):
        raise RefusedGlobal(f"Unsupported call: _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


# (module, name) as a pickle spells it -> the object it gets. numpy 2 pickles from numpy._core, numpy 1 and Python 2
# from numpy.core: both spellings read either way.
_NUMPY_PICKLE_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{
        (f"{module}.{submodule}", name): getattr(getattr(_numpy_core, submodule), name)
        for module in ("numpy._core", "numpy.core")
        for submodule, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer"))
    },  # an array (protocols up to 4, and 5), a scalar
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _latin1_bytes,
}


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, dtypes and scalars in dicts, lists, tuples and ``OrderedDict``; a pickle that names any
    other global (a function to call, a class to build) is refused there, so nothing else is ever called."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _NUMPY_PICKLE_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedGlobal(f"Unsupported global: {module}.{name}") from None


def load_numpy_pickle(filename: str) -> Any:
    """A ``.pkl`` model file through :class:`NumpyOnlyUnpickler`; a refusal or a corrupt file is one line naming it."""
    try:
        with PathManager.open(filename, "rb") as f:
            return NumpyOnlyUnpickler(f, encoding="latin1").load()
    except RefusedGlobal as err:
        raise AstrodetInputError(
            f"{filename}: refused: a .pkl model file may hold only numpy arrays in dicts and lists, and this one "
            f"does not ({err}); astrodet never runs code from a model file"
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError) as err:
        raise AstrodetInputError(f"{filename}: not a readable .pkl model file ({type(err).__name__}: {err})") from None


def config_image_recipe(cfg: CfgNode) -> ImageRecipe:
    """The recipe of a config's training pixels: ``ASTRODET.IMAGE_RECIPE``, else the simulator's (``KIND`` "":
    every config trained on astrodet's PNG cutouts)."""
    node = cfg.ASTRODET.IMAGE_RECIPE
    if not node.KIND:
        return SIMULATOR_RECIPE
    return ImageRecipe(
        kind=node.KIND,
        bands=tuple(node.BANDS),
        stretch=node.STRETCH,
        params=dict(node.PARAMS),
        channels=len(cfg.MODEL.PIXEL_MEAN),
    )


def training_metadata(cfg: CfgNode) -> dict[str, Any]:
    """What a checkpoint of ``cfg``'s training records beside the weights: ``image_recipe`` and the first training
    dataset's ``classes`` (and ``vote_class_columns`` for vote data), from its registered metadata. Plain dicts,
    lists and numbers: checkpoints are read back with ``weights_only=True``, which would refuse a CfgNode."""
    recorded: dict[str, Any] = {"image_recipe": config_image_recipe(cfg).to_dict()}
    metadata = MetadataCatalog.get(cfg.DATASETS.TRAIN[0]) if cfg.DATASETS.TRAIN else None
    for key, name in (("classes", "thing_classes"), ("vote_class_columns", "vote_class_columns")):
        if metadata is not None and metadata.get(name, None):
            recorded[key] = metadata.get(name)
    return json.loads(json.dumps(recorded))


class AstroCheckpointer(DetectionCheckpointer):
    """DetectionCheckpointer that never runs code from a file and refuses weights that fit none of the model's;
    ``recorded`` entries (:func:`training_metadata`) go into every checkpoint it saves."""

    def __init__(self, *args: Any, recorded: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_read: str | None = None  # the file _load_model's weights came from, named in its refusal
        self.recorded = dict(recorded or {})

    @classmethod
    def take_over(cls, trainer: DefaultTrainer) -> None:
        """Put an AstroCheckpointer in place of the one DefaultTrainer built (same model, folder and
        checkpointables), for loading (``MODEL.WEIGHTS``, ``--resume``) and for the PeriodicCheckpointer hook's
        saving, which records :func:`training_metadata`. DefaultTrainer offers no way to choose the class before it
        builds its hooks."""
        built = trainer.checkpointer
        recorded = training_metadata(trainer.cfg)
        checkpointer = cls(built.model, built.save_dir, recorded=recorded, **built.checkpointables)
        for hook in trainer._hooks:
            if isinstance(hook, hooks.PeriodicCheckpointer) and hook.checkpointer is built:
                hook.checkpointer = checkpointer
        trainer.checkpointer = checkpointer

    def save(self, name: str, **kwargs: Any) -> None:
        super().save(name, **{**self.recorded, **kwargs})

    def _load_file(self, filename: str) -> dict[str, Any]:
        self.last_read = filename
        if filename.endswith(".pkl"):
            return self._model_zoo_layout(filename, load_numpy_pickle(filename))
        if filename.endswith(".pyth"):  # pycls: the weights under model_state
            data = self._torch_load(filename)
            if not isinstance(data, dict) or not isinstance(data.get("model_state"), dict):
                raise AstrodetInputError(f"{filename}: a pycls .pyth checkpoint must hold 'model_state'")
            state = {k: v for k, v in data["model_state"].items() if not k.endswith("num_batches_tracked")}
            return {"model": state, "__author__": "pycls", "matching_heuristics": True}
        return super()._load_file(filename)  # .pth: Detectron2's handling around self._torch_load

    def _torch_load(self, f: str) -> Any:
        loaded = load_weights_only(f, holds="weights and Detectron2's training state")
        if not isinstance(loaded, dict):
            raise AstrodetInputError(f"{f}: expected a checkpoint dict of weights, found a {type(loaded).__name__}")
        return loaded

    def _model_zoo_layout(self, filename: str, data: Any) -> dict[str, Any]:
        """Detectron2's reading of a ``.pkl``: its model zoo format as is, Caffe2's blobs renamed by heuristics."""
        if not isinstance(data, dict):
            raise AstrodetInputError(f"{filename}: expected a dict of weights, found a {type(data).__name__}")
        if "model" in data and "__author__" in data:
            self.logger.info(f"Reading a file from '{data['__author__']}'")
            return data
        blobs = data.get("blobs", data)  # detection models have "blobs", ImageNet ones do not
        if not isinstance(blobs, dict):
            raise AstrodetInputError(f"{filename}: 'blobs' should be a dict of weights, found a {type(blobs).__name__}")
        weights = {k: v for k, v in blobs.items() if not k.endswith("_momentum")}
        return {"model": weights, "__author__": "Caffe2", "matching_heuristics": True}

    def _load_model(self, checkpoint: dict[str, Any]) -> Any:
        state = checkpoint.get("model")
        weights = state.items() if isinstance(state, dict) else ()
        odd = [key for key, value in weights if not isinstance(value, (torch.Tensor, np.ndarray))]
        if not isinstance(state, dict) or odd:
            raise AstrodetInputError(
                f"{self.last_read}: expected a state dict of tensors (Detectron2's layout, optionally under 'model'), "
                f"found {f'entries that are not tensors: {odd[:3]}' if odd else f'a {type(state).__name__}'}"
            )
        found, expected = [str(key) for key in state], list(self.model.state_dict())
        incompatible = super()._load_model(checkpoint)
        not_loaded = set(incompatible.missing_keys)
        if expected and all(key in not_loaded for key in expected):
            wrong_shapes = len(incompatible.incorrect_shapes)
            raise AstrodetInputError(
                f"{self.last_read}: none of its {len(found)} weights fit this model"
                f"{f' ({wrong_shapes} have a right name but another shape)' if wrong_shapes else ''}: expected e.g. "
                f"{', '.join(expected[:3])}; found e.g. {', '.join(found[:3]) or 'nothing'}. Is it a checkpoint of "
                "another architecture?"
            )
        return incompatible
