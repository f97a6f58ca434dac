"""A pretrained encoder loads where a Zoobot encoder does, in both frameworks' detectors and classifiers.

Routes: Detectron2 ``MODEL.ZOOBOT.CHECKPOINT`` / ``MODEL.DEEPSHADOWS.CHECKPOINT`` (``build_model`` of the configs
users train), MMDetection's backbone ``checkpoint=`` and ``init_cfg=dict(type='Pretrained', ...)`` (built from the
mmdet configs, then ``init_weights()`` as the Runner calls it). Each check compares a loaded tensor with the file's
and with the same model built without the file, so a silent random initialisation would fail.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

pytest.importorskip("detectron2")
pytest.importorskip("mmdet")

from detectron2.config import get_cfg
from detectron2.modeling import build_model
from mmdet.registry import MODELS
from mmengine.config import Config
from timm.models import get_pretrained_cfg_value

import astrodet.mmdet  # noqa: F401  (registers)
from astrodet.detectron2 import add_astrodet_config
from astrodet.models.checkpoints import read_state_dict
from astrodet.models.deepshadows import DeepShadowsTrunk
from astrodet.models.timm_encoder import TimmEncoder
from astrodet.pretraining.methods import DEEPSHADOWS
from tests.conftest import REPO
from tests.pretraining.conftest import QUICK, run_pretrain


@pytest.fixture(scope="module")
def pretrained(tiny_pictures: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``arch -> checkpoint``: a one-step pretraining on the tiny set's pictures, made once per architecture."""
    folder = tmp_path_factory.mktemp("pretrained")

    @functools.cache
    def checkpoint(arch: str) -> Path:
        out = folder / f"{arch}.pth"
        assert run_pretrain(tiny_pictures, "--arch", arch, "--out", out, "--iters", "1", *QUICK) == 0
        return out

    return checkpoint


def _d2_model(config: str, *opts: str) -> torch.nn.Module:
    cfg = get_cfg()
    add_astrodet_config(cfg)
    cfg.merge_from_file(str(REPO / "configs" / config))
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", *opts])
    torch.manual_seed(0)
    return build_model(cfg)


def _d2_arch(config: str) -> str:
    """The architecture a config builds: the encoder each config names (the Zoobot configs differ)."""
    cfg = get_cfg()
    add_astrodet_config(cfg)
    cfg.merge_from_file(str(REPO / "configs" / config))
    return DEEPSHADOWS if "deepshadows" in cfg.MODEL.BACKBONE.NAME else cfg.MODEL.ZOOBOT.ARCH


def _first_conv(model: torch.nn.Module) -> tuple[str, torch.Tensor]:
    """(its key in a checkpoint, its weight in ``model``) of the encoder's first convolution, in either framework."""
    for module in model.modules():
        if isinstance(module, TimmEncoder):
            first = get_pretrained_cfg_value(module.arch, "first_conv")  # "stem.0" -> "stem_0" in the feature model
            return f"{first}.weight", module.body.state_dict()[f"{first.replace('.', '_')}.weight"]
        if isinstance(module, DeepShadowsTrunk):
            return "blocks.0.0.weight", module.blocks[0][0].weight
    raise AssertionError("no astrodet encoder in the model")


def _assert_loaded(with_file: torch.nn.Module, without: torch.nn.Module, checkpoint: Path) -> None:
    key, loaded = _first_conv(with_file)
    weights = read_state_dict(checkpoint)
    assert torch.equal(loaded, weights[key])
    assert not torch.equal(_first_conv(without)[1], weights[key])  # the file's weights, not an initialisation


@pytest.mark.parametrize(
    ("config", "option"),
    [
        ("frcnn_zoobot.yaml", "MODEL.ZOOBOT.CHECKPOINT"),
        ("frcnn_zoobot_convnext.yaml", "MODEL.ZOOBOT.CHECKPOINT"),
        ("cls_zoobot_gz.yaml", "MODEL.ZOOBOT.CHECKPOINT"),
        ("frcnn_deepshadows.yaml", "MODEL.DEEPSHADOWS.CHECKPOINT"),
        ("cls_deepshadows.yaml", "MODEL.DEEPSHADOWS.CHECKPOINT"),
    ],
)
def test_detectron2_detectors_and_classifiers_load_the_encoder(pretrained, config: str, option: str) -> None:
    checkpoint = pretrained(_d2_arch(config))
    _assert_loaded(_d2_model(config, option, str(checkpoint)), _d2_model(config), checkpoint)


def _mmdet_model(config: str, **backbone: object) -> torch.nn.Module:
    cfg = Config.fromfile(str(REPO / "configs" / "mmdet" / config))
    cfg.model.backbone.update(backbone)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()  # what mmengine's Runner calls: it must not re-initialise the loaded encoder
    return model


@pytest.mark.parametrize(
    ("config", "route"),
    [
        ("frcnn_zoobot.py", "checkpoint"),
        ("frcnn_zoobot_convnext.py", "init_cfg"),
        ("cls_zoobot_gz.py", "init_cfg"),
        ("frcnn_deepshadows.py", "checkpoint"),
        ("cls_deepshadows.py", "init_cfg"),
    ],
)
def test_mmdet_detectors_and_classifiers_load_the_encoder(pretrained, config: str, route: str) -> None:
    backbone = Config.fromfile(str(REPO / "configs" / "mmdet" / config)).model.backbone
    checkpoint = str(pretrained(DEEPSHADOWS if backbone.type == "DeepShadowsTrunk" else backbone.arch))
    pretrained_cfg = dict(type="Pretrained", checkpoint=checkpoint)
    given = {"checkpoint": checkpoint} if route == "checkpoint" else {"init_cfg": pretrained_cfg}
    _assert_loaded(_mmdet_model(config, **given), _mmdet_model(config), Path(checkpoint))
