"""A weights file from a colleague or the web never runs code, on every route a user can name one.

Detectron2 and the core are tested here: ``MODEL.WEIGHTS`` (``.pth`` and ``.pkl``) for training and for
``tools/train_net.py --eval-only``, ``--resume`` (the file ``last_checkpoint`` names), ``MODEL.ZOOBOT.CHECKPOINT``
(the core's ``read_state_dict``), ``MODEL.DEEPSHADOWS.CHECKPOINT``, and ``tools/pretrain.py --resume`` (its state
file). The MMDetection routes (``load_from``, ``--resume``, ``tools/test.py CHECKPOINT``,
``init_cfg`` Pretrained) are tested in ``tests/mmdet/test_compat.py``
(``test_a_checkpoint_never_runs_code_and_the_refusal_names_the_file``) and ``tests/mmdet/test_training.py``
(``test_a_checkpoint_that_would_run_code_is_refused_on_every_route``).
"""

from __future__ import annotations

import functools
import importlib.util
import io
import os
import pickle
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

pytest.importorskip("detectron2")

from detectron2.config import CfgNode
from detectron2.engine import default_argument_parser

from astrodet.detectron2.checkpoint import AstroCheckpointer
from astrodet.errors import AstrodetInputError
from astrodet.models.checkpoints import read_state_dict
from tests.conftest import REPO, astrodet_cache_env

QUICK = "configs/quick_schedules/frcnn_deepshadows_quick.yaml"


class _CreatesAFile:
    """Unpickling this would create ``marker``: what a crafted checkpoint could do with any code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


def _evil(folder: Path, name: str, marker: Path, protocol: int = pickle.DEFAULT_PROTOCOL) -> Path:
    """A weights file that would create ``marker``: ``torch.save`` for ``.pth``, a plain pickle of numpy arrays (the
    model zoo's format) for ``.pkl``."""
    path = folder / name
    if path.suffix == ".pkl":
        content = {"model": {"weight": np.zeros(1)}, "__author__": "someone", "extra": _CreatesAFile(marker)}
        path.write_bytes(pickle.dumps(content, protocol=protocol))
    else:
        torch.save({"model": {"weight": torch.zeros(1)}, "extra": _CreatesAFile(marker)}, path)
    return path


def _assert_one_line_naming(err: pytest.ExceptionInfo, path: Path) -> None:
    message = str(err.value)
    assert str(path) in message and "\n" not in message and "weights_only=False" not in message


def _toy() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))


@pytest.mark.parametrize(("name", "protocol"), [("w.pth", None), ("w.pyth", None), ("w.pkl", 2), ("w.pkl", 5)])
def test_a_weights_file_that_would_run_code_is_refused_naming_it(
    tmp_path: Path, name: str, protocol: int | None
) -> None:
    marker = tmp_path / "MARKER"
    evil = _evil(tmp_path, name, marker, protocol or pickle.DEFAULT_PROTOCOL)
    with pytest.raises(AstrodetInputError, match=r"refused: .*io\.open") as err:
        AstroCheckpointer(_toy()).load(str(evil))
    _assert_one_line_naming(err, evil)
    assert not marker.exists()
    if evil.suffix == ".pkl":  # the file really runs code when read as Detectron2 reads it
        pickle.loads(evil.read_bytes())
    else:
        torch.load(evil, weights_only=False)  # torch's default before 2.6
    assert marker.exists()


def _numpy_state(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {key: value.numpy() for key, value in model.state_dict().items()}


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_a_model_zoo_pkl_of_numpy_arrays_loads(tmp_path: Path, protocol: int) -> None:
    """Detectron2's model zoo format ({"model": numpy arrays, "__author__"}), as Python 3 writes it and, with numpy's
    arrays under their numpy 1 / Python 2 module name, as older files spell it."""
    source, target = _toy(), _toy()
    written = pickle.dumps({"model": _numpy_state(source), "__author__": "astrodet test"}, protocol=protocol)
    spellings = {"new": written}
    if protocol == 2:  # GLOBAL opcodes spell module names out, unprefixed by their length
        spellings["old"] = written.replace(b"numpy._core.", b"numpy.core.")
    for spelling, content in spellings.items():
        path = tmp_path / f"{spelling}.pkl"
        path.write_bytes(content)
        AstroCheckpointer(target).load(str(path))
        loaded = target.state_dict()
        assert all(torch.equal(value, loaded[key]) for key, value in source.state_dict().items())


def test_a_pkl_asking_for_any_other_global_is_refused(tmp_path: Path) -> None:
    """Only numpy's array constructors, OrderedDict and latin-1 bytes: not even a harmless builtin."""
    for name, content in {
        "set.pkl": pickle.dumps({"model": {}, "extra": {1, 2}}, protocol=2),  # builtins.set via GLOBAL
        "codec.pkl": pickle.dumps({"model": {}, "extra": b"x"}, protocol=2).replace(b"latin1", b"utf_7_"),
    }.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(AstrodetInputError, match="refused") as err:
            AstroCheckpointer(_toy()).load(str(path))
        _assert_one_line_naming(err, path)


def test_a_checkpoint_whose_weights_fit_none_of_the_models_is_refused(tmp_path: Path) -> None:
    other_names = tmp_path / "other_names.pth"
    torch.save({"model": {"backbone.conv.weight": torch.zeros(4)}}, other_names)
    with pytest.raises(AstrodetInputError, match=r"none of its 1 weights fit this model: expected e\.g\. 0\.") as err:
        AstroCheckpointer(_toy()).load(str(other_names))
    _assert_one_line_naming(err, other_names)
    assert "backbone.conv.weight" in str(err.value)
    other_shapes = tmp_path / "other_shapes.pth"
    torch.save({key: torch.zeros(7) for key in _toy().state_dict()}, other_shapes)  # a bare state dict
    with pytest.raises(AstrodetInputError, match=r"none of its 4 weights fit this model \(4 have a right name"):
        AstroCheckpointer(_toy()).load(str(other_shapes))
    mmdet_layout = tmp_path / "mmdet.pth"
    torch.save({"state_dict": _toy().state_dict(), "meta": {}}, mmdet_layout)
    with pytest.raises(AstrodetInputError, match=r"mmdet\.pth: expected a state dict of tensors"):
        AstroCheckpointer(_toy()).load(str(mmdet_layout))
    partial = tmp_path / "partial.pth"
    torch.save({"model": {"0.weight": torch.ones(2, 3), "head.weight": torch.zeros(1)}}, partial)
    model = _toy()
    AstroCheckpointer(model).load(str(partial))  # one weight fits: loaded, the rest reported as Detectron2 does
    assert torch.equal(model[0].weight, torch.ones(2, 3))


def _corrupt_files(folder: Path) -> list[Path]:
    good = io.BytesIO()
    torch.save({"model": _toy().state_dict()}, good)
    files = {"empty.pth": b"", "cut_short.pth": good.getvalue()[:40], "cut_in_half.pth": good.getvalue()[:600]}
    files |= {"text.pth": b"hello\n", "empty.pkl": b"", "cut_short.pkl": pickle.dumps({"a": np.zeros(9)})[:30]}
    files |= {"header_only.safetensors": b"\x10\x00\x00\x00\x00\x00\x00\x00{"}
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return [folder / name for name in files]


def test_corrupt_or_empty_weights_files_are_one_line_naming_them(tmp_path: Path) -> None:
    """A file cut short once gave ``OSError: [Errno 22] Invalid argument`` with no name."""
    for path in _corrupt_files(tmp_path):
        if path.suffix != ".pkl":
            with pytest.raises(AstrodetInputError) as err:
                read_state_dict(path)  # MODEL.ZOOBOT.CHECKPOINT, mmdet init_cfg Pretrained on astrodet's backbones
            _assert_one_line_naming(err, path)
        if path.suffix != ".safetensors":
            with pytest.raises(AstrodetInputError) as err:
                AstroCheckpointer(_toy()).load(str(path))
            _assert_one_line_naming(err, path)


def test_the_core_reader_refuses_code_naming_the_file(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    evil = tmp_path / "encoder.pth"
    torch.save({"state_dict": {"conv.weight": torch.zeros(1)}, "hparams": _CreatesAFile(marker)}, evil)
    with pytest.raises(AstrodetInputError, match=r"refused: .*io\.open.*never runs code") as err:
        read_state_dict(evil)
    _assert_one_line_naming(err, evil)
    assert not marker.exists()


# --- through tools/train_net.py --------------------------------------------------------------------------------


@functools.cache
def _train_net_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("astrodet_train_net", REPO / "tools" / "train_net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _route_args(route: str, evil: Path, out: Path) -> list[str]:
    """tools/train_net.py's arguments that name ``evil`` by ``route``; ``--resume`` finds it via last_checkpoint."""
    config, opts, flags = QUICK, ["MODEL.WEIGHTS", str(evil)], []
    if route.startswith("--resume"):
        (out / "last_checkpoint").write_text(evil.name)
        opts, flags = [], ["--resume"]
    elif route == "MODEL.ZOOBOT.CHECKPOINT":
        config, opts = "configs/quick_schedules/frcnn_zoobot_quick.yaml", ["MODEL.ZOOBOT.CHECKPOINT", str(evil)]
    elif route == "MODEL.DEEPSHADOWS.CHECKPOINT":
        opts = ["MODEL.DEEPSHADOWS.CHECKPOINT", str(evil)]
    if route.endswith("--eval-only"):
        flags.append("--eval-only")
    return ["--config-file", str(REPO / config), *flags, "OUTPUT_DIR", str(out), "SOLVER.MAX_ITER", "1", *opts]


ROUTES = {
    "MODEL.WEIGHTS .pth": "model.pth",
    "MODEL.WEIGHTS .pkl": "R-50.pkl",
    "MODEL.WEIGHTS .pth --eval-only": "model_final.pth",
    "MODEL.WEIGHTS .pkl --eval-only": "model_final.pkl",
    "--resume": "model_0000009.pth",
    "--resume --eval-only": "model_0000009.pth",
    "MODEL.ZOOBOT.CHECKPOINT": "zoobot_encoder.pth",
    "MODEL.DEEPSHADOWS.CHECKPOINT": "deepshadows_trunk.pth",
}


@pytest.mark.parametrize("route", ROUTES)
def test_every_detectron2_route_refuses_a_file_that_would_run_code(
    route: str, tiny_cache: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    marker = tmp_path / "MARKER"
    evil = _evil(out, ROUTES[route], marker)
    args = default_argument_parser().parse_args(_route_args(route, evil, out))
    with astrodet_cache_env(tiny_cache), pytest.raises(AstrodetInputError, match=r"refused: .*io\.open") as err:
        _train_net_module().main(args)
    _assert_one_line_naming(err, evil)
    assert not marker.exists()


@pytest.mark.slow
def test_the_train_net_command_stops_with_the_refusal_and_no_marker(tiny_cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    marker = tmp_path / "MARKER"
    evil = _evil(tmp_path, "model_final.pkl", marker)
    cmd = [sys.executable, str(REPO / "tools" / "train_net.py"), *_route_args("MODEL.WEIGHTS .pkl", evil, out)]
    env = dict(os.environ, ASTRODET_CACHE=str(tiny_cache))
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert result.returncode != 0 and f"{evil}: refused" in result.stdout + result.stderr
    assert not marker.exists()


def test_pretrain_resume_refuses_a_state_file_that_would_run_code(tmp_path: Path, capsys) -> None:
    from tests.pretraining.conftest import QUICK, run_pretrain, write_pictures

    write_pictures(tmp_path / "images", 2)
    marker = tmp_path / "MARKER"
    evil = _evil(tmp_path, "encoder.state.pth", marker)  # the state file beside --out encoder.pth
    out = tmp_path / "encoder.pth"
    args = [tmp_path / "images", "--arch", "deepshadows", "--out", out, "--iters", "2", "--resume", *QUICK]
    assert run_pretrain(*args) == 2
    message = capsys.readouterr().err
    assert f"{evil}: refused: " in message and "io.open" in message and message.count("\n") == 1
    assert "weights_only=False" not in message and not marker.exists() and not out.exists()


# --- a real Detectron2 checkpoint ------------------------------------------------------------------------------


def _quick_cfg(out: Path, max_iter: int) -> CfgNode:
    train_net = _train_net_module()
    opts = ["SOLVER.MAX_ITER", str(max_iter), "SOLVER.CHECKPOINT_PERIOD", "1", "DATASETS.TEST", "()"]
    args = default_argument_parser().parse_args(["--config-file", str(REPO / QUICK), "OUTPUT_DIR", str(out), *opts])
    return train_net.setup(args)


@pytest.mark.slow
def test_a_real_detectron2_checkpoint_loads_weights_only_and_resumes(tiny_cache: Path, tmp_path: Path) -> None:
    from astrodet.detectron2.trainer import AstroTrainer

    out = tmp_path / "out"
    with astrodet_cache_env(tiny_cache):
        first = AstroTrainer(_quick_cfg(out, 2))
        first.resume_or_load(resume=False)
        first.train()
        saved = out / "model_final.pth"
        assert torch.serialization.get_unsafe_globals_in_checkpoint(str(saved)) == []  # nothing to allow-list
        resumed = AstroTrainer(_quick_cfg(out, 3))
        assert isinstance(resumed.checkpointer, AstroCheckpointer)
        resumed.resume_or_load(resume=True)  # last_checkpoint names model_final.pth
        assert resumed.iter == 1 and resumed.start_iter == 2  # iteration restored
        final = first.checkpointer.model.state_dict()
        assert all(torch.equal(final[k], v) for k, v in resumed.checkpointer.model.state_dict().items())
        resumed.train()
        assert resumed.iter == 3 and torch.load(saved, weights_only=True)["iteration"] == 2
        evaluated = first.checkpointer.model  # the resumed run rewrote model_final.pth: its weights differ
        AstroCheckpointer(evaluated).load(str(saved))  # MODEL.WEIGHTS, as --eval-only reads it
        final = resumed.checkpointer.model.state_dict()
        assert all(torch.equal(final[k], v) for k, v in evaluated.state_dict().items())
