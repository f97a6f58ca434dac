"""End-to-end Detectron2 runs on the tiny default dataset: train_net.py, a 2-process CPU launch, a new backbone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("detectron2")

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _train_net(
    tmp_path: Path, cache: Path, config: str, *opts: str, extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    env = dict(os.environ, ASTRODET_CACHE=str(cache))
    cmd = [
        sys.executable,
        str(REPO / "tools" / "train_net.py"),
        "--config-file",
        str(REPO / config),
        *extra,
        "OUTPUT_DIR",
        str(tmp_path / "out"),
        *opts,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory, tiny_cache: Path) -> Path:
    tmp_path = tmp_path_factory.mktemp("quick")
    _train_net(tmp_path, tiny_cache, "configs/quick_schedules/frcnn_zoobot_quick.yaml")
    return tmp_path / "out"


def test_quick_schedule_trains_evaluates_and_reports(quick_run: Path) -> None:
    report = json.loads((quick_run / "report.json").read_text())
    assert report["meta"]["framework"] == "detectron2"
    assert report["meta"]["dataset"] == "astrodet_tiny_val"
    assert set(report["coco"]) >= {"AP", "AP50", "AP75", "APs", "APm", "APl"}
    assert report["matching"]["kind"] == "iou" and report["score_threshold"] == 0.3
    assert set(report["per_class"]) == {"clump", "odd_clump"}
    n_true = sum(row["n_true"] for row in report["per_class"].values())
    assert n_true == report["n_true"] > 0
    for png in ("pr_curve.png", "threshold_curves.png", "examples.png"):
        assert (quick_run / png).stat().st_size > 10_000
    assert "Completeness" in (quick_run / "report.md").read_text()
    assert (quick_run / "model_final.pth").is_file()


def test_eval_only_reproduces_the_report(quick_run: Path, tmp_path: Path, tiny_cache: Path) -> None:
    first = json.loads((quick_run / "report.json").read_text())
    _train_net(
        tmp_path,
        tiny_cache,
        "configs/quick_schedules/frcnn_zoobot_quick.yaml",
        "MODEL.WEIGHTS",
        str(quick_run / "model_final.pth"),
        extra=("--eval-only",),
    )
    second = json.loads((tmp_path / "out" / "eval_model_final" / "report.json").read_text())  # beside, not over
    assert second["n_pred"] == first["n_pred"]
    assert second["completeness"] == first["completeness"] and second["purity"] == first["purity"]


def test_two_cpu_processes_through_launch(tmp_path: Path, tiny_cache: Path) -> None:
    result = _train_net(
        tmp_path,
        tiny_cache,
        "configs/quick_schedules/frcnn_deepshadows_quick.yaml",
        "SOLVER.MAX_ITER",
        "4",
        "SOLVER.IMS_PER_BATCH",
        "2",
        extra=("--num-gpus", "2"),
    )
    log = result.stdout + result.stderr
    assert "world_size" in log or "Rank of current process: 0. World size: 2" in log
    assert (tmp_path / "out" / "model_final.pth").is_file()
    assert json.loads((tmp_path / "out" / "report.json").read_text())["n_images"] > 0


def test_a_new_backbone_is_one_module_one_registration_one_config(
    tmp_path: Path, tiny_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the README's 'Adding a backbone' section promises, done here with a module defined in the test."""
    import torch
    from detectron2.config import get_cfg
    from detectron2.modeling import BACKBONE_REGISTRY
    from torch import nn

    from astrodet.detectron2 import AstroTrainer, add_astrodet_config, prepare_datasets
    from astrodet.detectron2.backbones import CoreBackbone, with_fpn
    from astrodet.models import FeatureBackbone, describe_features

    class TinyNet(FeatureBackbone):  # 1. the module: a list of features, described once
        def __init__(self, in_chans: int) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(in_chans, 8, 3, stride=4, padding=1), nn.ReLU())
            self.down = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
            self.feature_info = describe_features(channels=[8, 16], strides=[4, 8])

        def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
            a = self.stem(x)
            return [a, self.down(a)]

    def build_tiny_test_fpn_backbone(cfg, input_shape):
        return with_fpn(cfg, CoreBackbone(TinyNet(input_shape.channels)))

    name = build_tiny_test_fpn_backbone.__name__
    if name not in BACKBONE_REGISTRY:  # 2. one registration
        BACKBONE_REGISTRY.register(build_tiny_test_fpn_backbone)

    monkeypatch.setenv("ASTRODET_CACHE", str(tiny_cache))
    cfg = get_cfg()  # 3. one config: the quick schedule with the new backbone named
    add_astrodet_config(cfg)
    cfg.merge_from_file(str(REPO / "configs/quick_schedules/frcnn_zoobot_quick.yaml"))
    cfg.merge_from_list(
        [
            "MODEL.BACKBONE.NAME",
            name,
            "MODEL.DEVICE",
            "cpu",
            "SOLVER.MAX_ITER",
            3,
            "OUTPUT_DIR",
            str(tmp_path),
            "MODEL.FPN.OUT_CHANNELS",
            32,
        ]
    )
    cfg.MODEL.FPN.IN_FEATURES = ["stage2", "stage3"]
    cfg.MODEL.RPN.IN_FEATURES = ["p2", "p3", "p4"]
    cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[8], [16], [32]]
    cfg.MODEL.ROI_HEADS.IN_FEATURES = ["p2", "p3"]
    prepare_datasets(cfg)
    trainer = AstroTrainer(cfg)
    assert isinstance(trainer.model.backbone.bottom_up.body, TinyNet)
    before = trainer.model.backbone.bottom_up.body.stem[0].weight.detach().clone()
    trainer.train()
    assert trainer.iter == 3  # after training, iter == MAX_ITER
    assert not torch.equal(before, trainer.model.backbone.bottom_up.body.stem[0].weight)
    assert (tmp_path / "report.json").is_file()
