"""MMDetection / mmengine classification: registration, the model's modes, data pipeline and metric, parity with
Detectron2 (same weights and pixels -> same outputs), and a quick Runner run on the Perseus sample (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mmdet")

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from astrodet.mmdet.datasets import AstroClassificationDataset
from astrodet.mmdet.metrics import AstroClassificationMetric
from astrodet.models.classifier import count_trainable
from tests.conftest import REPO, astrodet_cache_env

CONFIGS = REPO / "configs" / "mmdet"


@pytest.fixture(scope="module")
def cls_cache(tmp_path_factory: pytest.TempPathFactory, shared_data: Path):
    cache = tmp_path_factory.mktemp("cls_cache_mm")
    with astrodet_cache_env(cache):
        yield cache


def _build_model(config: str):
    from mmdet.registry import MODELS

    init_default_scope("mmdet")
    cfg = Config.fromfile(str(CONFIGS / config))
    return MODELS.build(cfg.model), cfg


def test_registered_on_import_from_a_fresh_process() -> None:
    code = (
        "import astrodet.mmdet.classification\n"
        "from mmdet.registry import DATASETS, METRICS, MODELS, TRANSFORMS\n"
        "print(MODELS.get('AstroImageClassifier').__name__, DATASETS.get('AstroClassificationDataset').__name__,"
        " METRICS.get('AstroClassificationMetric').__name__, TRANSFORMS.get('LoadCutout').__name__,"
        " TRANSFORMS.get('PackClsInputs').__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [
        "AstroImageClassifier",
        "AstroClassificationDataset",
        "AstroClassificationMetric",
        "LoadCutout",
        "PackClsInputs",
    ]


def test_deepshadows_model_parameters_and_modes() -> None:
    from mmengine.structures import BaseDataElement

    model, _ = _build_model("cls_deepshadows.py")
    assert count_trainable(model) == 4_220_161
    samples = []
    for k in range(4):
        s = BaseDataElement(metainfo={"img_id": k})
        s.gt_label = torch.tensor(k % 2)
        samples.append(s)
    batch = {
        "inputs": [torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8) for _ in range(4)],
        "data_samples": samples,
    }
    data = model.data_preprocessor(batch, True)
    assert data["inputs"].shape == (4, 3, 64, 64) and float(data["inputs"].max()) <= 1.0
    losses = model(**data, mode="loss")
    assert set(losses) == {"loss_cls"} and losses["loss_cls"].item() > 0
    model.eval()
    with torch.no_grad():
        out = model.val_step(batch)
    assert len(out) == 4 and out[0].pred_score.shape == (2,)
    assert model(data["inputs"], mode="tensor").shape == (4, 1)


def test_same_weights_and_pixels_give_the_same_outputs_as_detectron2(cls_cache: Path) -> None:
    pytest.importorskip("detectron2")
    from detectron2.config import get_cfg
    from detectron2.data import DatasetCatalog
    from detectron2.modeling import build_model

    from astrodet.detectron2 import add_astrodet_config
    from astrodet.detectron2.classification import ClassificationMapper

    cfg = get_cfg()
    add_astrodet_config(cfg)
    cfg.merge_from_file(str(REPO / "configs" / "cls_deepshadows.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    d2_model = build_model(cfg).eval()
    mm_model, mm_cfg = _build_model("cls_deepshadows.py")
    mm_model.eval()
    missing, unexpected = mm_model.load_state_dict(d2_model.state_dict(), strict=True)
    assert not missing and not unexpected  # the same module tree: model.backbone.body.*, model.head.*

    records = DatasetCatalog.get("astrodet_deepshadows_test")
    d2_inputs = [ClassificationMapper(cfg, is_train=False)(r) for r in records]
    dataset = AstroClassificationDataset(
        dataset="deepshadows", split="test", pipeline=mm_cfg.test_dataloader.dataset.pipeline
    )
    mm_items = [dataset[i] for i in range(len(dataset))]
    by_id = {item["data_samples"].img_id: item for item in mm_items}
    mm_batch = {
        "inputs": [by_id[r["image_id"]]["inputs"] for r in records],
        "data_samples": [by_id[r["image_id"]]["data_samples"] for r in records],
    }
    for d2_in, mm_in in zip(d2_inputs, mm_batch["inputs"], strict=True):
        assert torch.equal(d2_in["image"], mm_in)  # the same pixels after each framework's pipeline
    with torch.no_grad():
        d2_scores = torch.stack([o["class_scores"] for o in d2_model(d2_inputs)])
        mm_scores = torch.stack([s.pred_score for s in mm_model.val_step(mm_batch)])
    assert torch.allclose(d2_scores, mm_scores, atol=1e-6)


def test_dataset_metainfo_and_pipeline(cls_cache: Path) -> None:
    _, cfg = _build_model("cls_perseus_quick.py")
    dataset = AstroClassificationDataset(
        dataset="perseus", split="train", pipeline=cfg.train_dataloader.dataset.pipeline
    )
    assert dataset.metainfo["classes"] == ("other", "dE_ETG_candidate")
    item = dataset[0]
    assert item["inputs"].shape == (3, 64, 64) and item["inputs"].dtype == torch.float32
    assert int(item["data_samples"].gt_label) in (0, 1)
    with pytest.raises(ValueError, match="differ from the config's metainfo"):
        AstroClassificationDataset(dataset="perseus", split="train", metainfo={"classes": ("a", "b")})
    with pytest.raises(ValueError, match="give split="):
        AstroClassificationDataset(dataset="perseus")


def test_metric_computes_and_writes_the_report(tmp_path: Path) -> None:
    metric = AstroClassificationMetric(output_dir=str(tmp_path), n_bootstrap=20, meta={"config": "x"})
    metric.dataset_meta = {"classes": ("artifact", "LSBG")}
    samples = [
        {"img_id": i, "gt_label": torch.tensor(label), "pred_score": torch.tensor([1 - p, p])}
        for i, (label, p) in enumerate([(0, 0.2), (1, 0.9), (1, 0.4), (0, 0.1)])
    ]
    metric.process({}, samples)
    out = metric.evaluate(size=4)
    assert out["astro_cls/accuracy"] == 0.75 and out["astro_cls/roc_auc"] == 1.0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["meta"] == {"framework": "mmdetection", "config": "x"}
    assert np.isclose(report["balanced_accuracy"], 0.75)


@pytest.mark.slow
def test_runner_quick_run_on_the_perseus_sample(tmp_path: Path, shared_data: Path) -> None:
    """mmengine's Runner trains and tests cls_perseus_quick.py; the sample is converted into a fresh cache."""
    script = f"""
import json, os
from mmengine.config import Config
from mmengine.runner import Runner
cfg = Config.fromfile({str(CONFIGS / "cls_perseus_quick.py")!r})
cfg.work_dir = {str(tmp_path / "work")!r}
cfg.train_cfg.max_iters = 5
cfg.train_cfg.val_interval = 5
cfg.test_evaluator.output_dir = {str(tmp_path / "report")!r}
runner = Runner.from_cfg(cfg)
runner.train()
print("TEST", json.dumps(runner.test()))
"""
    env = dict(os.environ, ASTRODET_CACHE=str(tmp_path / "cache"))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    metrics = json.loads(result.stdout.split("TEST ", 1)[1].splitlines()[0])
    assert set(metrics) >= {"astro_cls/accuracy", "astro_cls/balanced_accuracy", "astro_cls/roc_auc"}
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["classes"] == ["other", "dE_ETG_candidate"] and report["meta"]["framework"] == "mmdetection"
    assert (tmp_path / "work" / "iter_5.pth").is_file()
