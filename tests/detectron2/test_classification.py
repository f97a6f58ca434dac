"""Detectron2 classification: the meta-architecture, datasets, mapper, evaluator, optimisers; quick runs through
tools/train_net.py (slow) including a finetune from a checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("detectron2")

import torch
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import build_model
from detectron2.structures import Instances
from PIL import Image

from astrodet.data.galaxyzoo import convert_galaxyzoo
from astrodet.detectron2 import add_astrodet_config, prepare_datasets
from astrodet.detectron2.classification import AstroImageClassifier, ClassificationEvaluator, ClassificationMapper
from astrodet.detectron2.trainer import AstroTrainer, ClassificationTrainer, trainer_class
from astrodet.models.classifier import count_trainable
from astrodet.models.schemas import vote_columns
from tests.conftest import REPO, astrodet_cache_env

# tools/train_net.py picks the trainer with astrodet.detectron2.trainer.trainer_class (docs/classification.md);
TRAIN_NET = REPO / "tools" / "train_net.py"


def _cfg(config: str, *opts):
    cfg = get_cfg()
    add_astrodet_config(cfg)
    cfg.merge_from_file(str(REPO / config))
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", *opts])
    return cfg


@pytest.fixture(scope="module")
def cls_cache(tmp_path_factory: pytest.TempPathFactory, shared_data: Path):
    """A fresh ASTRODET_CACHE for this module: the samples are converted into it on first use."""
    cache = tmp_path_factory.mktemp("cls_cache")
    with astrodet_cache_env(cache):
        yield cache


def test_config_keys_and_trainer_choice() -> None:
    cfg = _cfg("configs/cls_deepshadows.yaml")
    assert cfg.MODEL.META_ARCHITECTURE == "AstroImageClassifier"
    assert (cfg.MODEL.CLASSIFIER.HEAD, cfg.MODEL.CLASSIFIER.LOSS, cfg.ASTRODET.SOLVER.OPTIMIZER) == (
        "dense",
        "bce",
        "ADADELTA",
    )
    assert (cfg.SOLVER.BASE_LR, cfg.SOLVER.IMS_PER_BATCH) == (0.1, 64)
    assert trainer_class(cfg) is ClassificationTrainer
    assert trainer_class(_cfg("configs/frcnn_deepshadows.yaml")) is AstroTrainer
    transfer = _cfg("configs/cls_deepshadows_transfer.yaml")
    assert (transfer.SOLVER.BASE_LR, transfer.SOLVER.IMS_PER_BATCH) == (0.005, 32) and transfer.MODEL.WEIGHTS
    for name in ("cls_zoobot_gz", "cls_perseus", "quick_schedules/cls_perseus_quick"):
        assert trainer_class(_cfg(f"configs/{name}.yaml")) is ClassificationTrainer


def test_deepshadows_meta_arch_has_the_papers_parameters_and_trains() -> None:
    model = build_model(_cfg("configs/cls_deepshadows.yaml"))
    assert isinstance(model, AstroImageClassifier)
    assert count_trainable(model) == 4_220_161
    inputs = [{"image": torch.rand(3, 64, 64) * 255, "label": k % 2} for k in range(4)]
    losses = model(inputs)
    assert set(losses) == {"loss_cls"} and losses["loss_cls"].item() > 0
    losses["loss_cls"].backward()
    model.eval()
    with torch.no_grad():
        out = model(inputs)
    assert len(out) == 4 and out[0]["class_scores"].shape == (2,)
    assert torch.allclose(out[0]["class_scores"].sum(), torch.tensor(1.0))


def test_labels_also_come_from_detectron2_instances() -> None:
    model = build_model(_cfg("configs/cls_deepshadows.yaml"))
    inst = Instances((64, 64))
    inst.gt_classes = torch.tensor([1])
    with_label = model.targets([{"image": torch.zeros(3, 64, 64), "label": 1}])
    with_instances = model.targets([{"image": torch.zeros(3, 64, 64), "instances": inst}])
    assert with_label.tolist() == with_instances.tolist() == [1]


def test_sample_datasets_and_mapper(cls_cache: Path) -> None:
    records = DatasetCatalog.get("astrodet_deepshadows_train")
    assert len(records) == 6 and {r["label"] for r in records} == {0, 1}
    assert MetadataCatalog.get("astrodet_deepshadows_train").thing_classes == ["artifact", "LSBG"]
    cfg = _cfg("configs/cls_deepshadows.yaml")
    test_mapper = ClassificationMapper(cfg, is_train=False)
    mapped = test_mapper(records[0])
    pixels = np.asarray(Image.open(records[0]["file_name"]), dtype=np.float32)
    assert mapped["image"].shape == (3, 64, 64) and mapped["label"] == records[0]["label"]
    assert np.array_equal(mapped["image"].numpy().transpose(1, 2, 0), pixels)
    augmented = ClassificationMapper(cfg, is_train=True)(records[0])["image"].numpy()
    assert np.array_equal(np.sort(augmented.ravel()), np.sort(mapped["image"].numpy().ravel()))  # only moved
    # resizing: a 200 px Perseus cutout becomes INPUT_SIZE
    perseus = DatasetCatalog.get("astrodet_perseus_train")
    resized = ClassificationMapper(_cfg("configs/cls_perseus.yaml"), is_train=False)(perseus[0])
    assert resized["image"].shape == (3, 128, 128)


def test_evaluator_writes_the_report(cls_cache: Path, tmp_path: Path) -> None:
    cfg = _cfg("configs/cls_deepshadows.yaml", "ASTRODET.CLS.BOOTSTRAP", "50")
    records = DatasetCatalog.get("astrodet_deepshadows_test")
    evaluator = ClassificationEvaluator("astrodet_deepshadows_test", cfg, output_dir=str(tmp_path), distributed=False)
    evaluator.reset()
    scores = [torch.tensor([0.3, 0.7]) if r["label"] == 1 else torch.tensor([0.6, 0.4]) for r in records]
    evaluator.process(records, [{"class_scores": s} for s in scores])
    results = evaluator.evaluate()["classification"]
    assert results["accuracy"] == 1.0 and results["roc_auc"] == 1.0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["meta"]["framework"] == "detectron2" and report["meta"]["dataset"] == "astrodet_deepshadows_test"
    assert (tmp_path / "confusion_matrix.png").is_file() and (tmp_path / "roc_curve.png").is_file()


def test_adadelta_with_keras_l2_groups() -> None:
    cfg = _cfg("configs/cls_deepshadows.yaml")
    model = build_model(cfg)
    optim = ClassificationTrainer.build_optimizer(cfg, model)
    assert isinstance(optim, torch.optim.Adadelta)
    assert optim.defaults["lr"] == 0.1 and optim.defaults["rho"] == 0.95
    decays = sorted(round(g["weight_decay"], 6) for g in optim.param_groups)
    assert decays == [0.0, 0.24, 0.26]
    assert isinstance(ClassificationTrainer.build_optimizer(_cfg("configs/cls_perseus.yaml"), model), torch.optim.AdamW)


def test_registered_vote_dataset_trains_with_soft_ce(tmp_path: Path) -> None:
    images = tmp_path / "img"
    images.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for gid in range(4):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(images / f"{gid}.jpg")
        votes = dict.fromkeys(vote_columns(), 0.0)
        votes.update({"Class1.1": 0.7 - 0.1 * gid, "Class1.2": 0.2 + 0.1 * gid, "Class1.3": 0.1})
        rows.append(",".join([str(gid), *(f"{votes[c]:g}" for c in vote_columns())]))
    table = tmp_path / "votes.csv"
    table.write_text(",".join(["GalaxyID", *vote_columns()]) + "\n" + "\n".join(rows) + "\n")
    summary = convert_galaxyzoo(table, tmp_path / "gz.json", images_dir=images)
    cfg = _cfg(
        "configs/cls_zoobot_gz.yaml",
        "MODEL.ZOOBOT.ARCH", "resnet18",
        "MODEL.CLASSIFIER.LOSS", "soft_ce",
        "MODEL.CLASSIFIER.NUM_CLASSES", "6",
        "ASTRODET.CLS.INPUT_SIZE", "32",
        "ASTRODET.REGISTER", f'[["gz_votes", "{summary.outputs["all"]}"]]',
        "DATASETS.TEST", '("gz_votes",)',
    )  # fmt: skip
    prepare_datasets(cfg)
    records = DatasetCatalog.get("gz_votes")
    assert len(records[0]["vote_fractions"]) == 37
    model = build_model(cfg)
    mapper = ClassificationMapper(cfg, is_train=True)
    loss = model([mapper(r) for r in records])["loss_cls"]
    assert loss.item() > 0
    model.eval()
    with torch.no_grad():
        outputs = model([ClassificationMapper(cfg, is_train=False)(r) for r in records])
    assert outputs[0]["vote_fractions"].shape == (37,)
    evaluator = ClassificationEvaluator("gz_votes", cfg, output_dir=str(tmp_path / "rep"), distributed=False)
    evaluator.process(records, outputs)
    results = evaluator.evaluate()["classification"]
    assert 0 < results["vote_rmse"] < 1 and 0 <= results["accuracy"] <= 1


# --- quick runs (slow) ---------------------------------------------------------------------------------------------


def _train_net(tmp_path: Path, cache: Path, config: str, *opts: str) -> subprocess.CompletedProcess:
    if "trainer_class" not in TRAIN_NET.read_text():
        pytest.fail(
            f"{TRAIN_NET} does not pick the classification trainer: it needs the hook "
            "'AstroTrainer = trainer_class(cfg)' after setup() (docs/classification.md, 'Detectron2')"
        )
    tmp_path.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, ASTRODET_CACHE=str(cache))
    cmd = [sys.executable, str(TRAIN_NET), "--config-file", str(REPO / config), "OUTPUT_DIR", str(tmp_path), *opts]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_train_net_quick_perseus_converts_trains_and_reports(tmp_path: Path, shared_data: Path) -> None:
    cache = tmp_path / "cache"  # empty: the sample is converted on first use
    _train_net(tmp_path / "out", cache, "configs/quick_schedules/cls_perseus_quick.yaml")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["meta"]["dataset"] == "astrodet_perseus_test" and report["classes"] == ["other", "dE_ETG_candidate"]
    assert report["n_images"] == sum(report["confusion_matrix"]["matrix"][i][j] for i in range(2) for j in range(2))
    assert (tmp_path / "out" / "model_final.pth").is_file()
    assert list(cache.glob("datasets/perseus-*/READY.json"))


@pytest.mark.slow
def test_finetune_from_a_checkpoint(tmp_path: Path, shared_data: Path) -> None:
    cache = tmp_path / "cache"
    first = tmp_path / "pretrain"
    _train_net(first, cache, "configs/quick_schedules/cls_deepshadows_quick.yaml", "SOLVER.MAX_ITER", "3")
    second = tmp_path / "finetune"
    result = _train_net(
        second,
        cache,
        "configs/cls_deepshadows_transfer.yaml",
        "MODEL.WEIGHTS", str(first / "model_final.pth"),
        "DATASETS.TRAIN", '("astrodet_perseus_all_train",)',
        "DATASETS.TEST", '("astrodet_perseus_all_test",)',
        "SOLVER.MAX_ITER", "3",
        "SOLVER.IMS_PER_BATCH", "8",
        "DATALOADER.NUM_WORKERS", "0",
        "ASTRODET.CLS.BOOTSTRAP", "50",
    )  # fmt: skip
    log = result.stdout + result.stderr
    assert "Loading from" in log and str(first / "model_final.pth") in log
    # fvcore's messages when a key is missing on either side: every weight of the pretrained model was used
    assert "not found in the checkpoint" not in log and "not used by the model" not in log
    report = json.loads((second / "report.json").read_text())
    assert report["meta"]["weights"].endswith("pretrain/model_final.pth")
    assert report["meta"]["base_lr"] == 0.005 and report["meta"]["dataset"] == "astrodet_perseus_all_test"
