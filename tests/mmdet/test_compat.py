"""astrodet.mmdet.compat: the version guard and one test per framework patch (COCOeval, CPU processes, checkpoints)."""

from __future__ import annotations

import pickle
import socket
import warnings
from pathlib import Path

import pytest
import torch

pytest.importorskip("mmdet")

import torch.distributed as dist
from mmdet.evaluation.metrics import coco_metric as mmdet_coco_metric
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from astrodet.errors import AstrodetInputError
from astrodet.evaluation.coco_params import apply_astrodet_params
from astrodet.mmdet import compat


def test_versions_outside_the_tested_ones_warn_naming_what_may_break() -> None:
    with pytest.warns(UserWarning, match=r"tested with mmdet 3\.3\.0, this is 3\.4\.0: may break: COCO AP"):
        problems = compat.check_versions({**compat.TESTED_VERSIONS, "mmdet": "3.4.0"})
    assert len(problems) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert compat.check_versions(dict(compat.TESTED_VERSIONS)) == []


def _tiny_coco() -> COCO:
    coco = COCO()
    coco.dataset = {
        "images": [{"id": 1, "width": 64, "height": 64, "file_name": "a.png"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 4, 10, 10], "area": 100, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "clump"}],
    }
    coco.createIndex()
    return coco


def test_cocoeval_inside_mmdet_gets_astrodet_params_for_the_block_only() -> None:
    gt = _tiny_coco()
    dt = gt.loadRes([{"image_id": 1, "category_id": 1, "bbox": [4, 4, 10, 10], "score": 0.9}])
    expected = COCOeval(gt, dt, "bbox")
    apply_astrodet_params(expected, 50)
    original = mmdet_coco_metric.COCOeval
    built: list[COCOeval] = []
    with compat.astrodet_cocoeval(50, built):
        evaluation = mmdet_coco_metric.COCOeval(gt, dt, "bbox")  # as CocoMetric.compute_metrics builds it
    assert built == [evaluation]
    assert evaluation.params.areaRng == expected.params.areaRng != COCOeval(gt, dt, "bbox").params.areaRng
    assert list(evaluation.params.maxDets) == [1, 10, 50]
    assert mmdet_coco_metric.COCOeval is original


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU route is taken only without a GPU")
def test_cpu_processes_start_gloo_and_wrap_ddp_without_device_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = Config(dict(launcher="none", env_cfg=dict()))
    compat.configure_device(cfg)
    assert "model_wrapper_cfg" not in cfg and not dist.is_initialized()
    with pytest.raises(SystemExit, match="needs GPUs"):
        compat.configure_device(Config(dict(launcher="slurm", env_cfg=dict())))
    env = {"RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    cfg = Config(dict(launcher="pytorch", env_cfg=dict()))
    try:
        compat.configure_device(cfg)
        assert dist.is_initialized() and dist.get_backend() == "gloo"
        assert cfg.env_cfg.dist_cfg.backend == "gloo"
        assert cfg.model_wrapper_cfg.device_ids is None and cfg.model_wrapper_cfg.type == "MMDistributedDataParallel"
    finally:
        compat.shutdown_process_group()
    assert not dist.is_initialized()


class _Toy(BaseModel):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs: torch.Tensor, data_samples: object = None, mode: str = "tensor") -> object:
        out = self.linear(inputs)
        return {"loss": out.pow(2).mean()} if mode == "loss" else out


def _toy_runner(work_dir: Path, max_iters: int, **kwargs: object) -> Runner:
    return Runner(
        model=_Toy(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=[{"inputs": torch.randn(2)} for _ in range(8)],
            sampler=dict(type="DefaultSampler", shuffle=False),
            collate_fn=dict(type="default_collate"),
            batch_size=2,
        ),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=max_iters, by_epoch=False)),
        default_scope="mmengine",
        **kwargs,
    )


def test_mmengine_checkpoints_load_weights_only_and_resume(tmp_path: Path) -> None:
    """A real mmengine checkpoint (message hub with HistoryBuffers of numpy arrays) reads back without pickle code."""
    _toy_runner(tmp_path / "run", 2).train()
    checkpoint = tmp_path / "run" / "iter_2.pth"
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(checkpoint)) == []  # all of it allow-listed
    loaded = _load_checkpoint(str(checkpoint), map_location="cpu")
    loss = loaded["message_hub"]["log_scalars"]["train/loss"]
    assert isinstance(loss, HistoryBuffer) and loss.statistics("mean") == loss.mean()  # its methods came back
    runner = _toy_runner(tmp_path / "run", 3, resume=True, load_from=str(checkpoint))
    runner.train()
    assert runner.iter == 3 and (tmp_path / "run" / "iter_3.pth").is_file()


class _CreatesAFile:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


class _LooksUpAnAttribute:
    def __reduce__(self) -> tuple:
        return (getattr, (HistoryBuffer, "__init__"))


def test_a_checkpoint_never_runs_code_and_the_refusal_names_the_file(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "meta": _CreatesAFile(marker)}, evil)
    lookup = tmp_path / "lookup.pth"
    torch.save({"state_dict": {}, "meta": _LooksUpAnAttribute()}, lookup)
    with pytest.raises(AstrodetInputError, match=rf"{evil}: refused: .*io\.open"):
        _load_checkpoint(str(evil))  # the route of load_from, --resume FILE, tools/test.py CHECKPOINT
    with pytest.raises(AstrodetInputError, match=rf"{lookup}: refused: .*HistoryBuffer"):
        _load_checkpoint(str(lookup))
    init_default_scope("mmdet")  # mmdet's ResNet, for the init_cfg route
    resnet = dict(type="ResNet", depth=18, init_cfg=dict(type="Pretrained", checkpoint=str(evil)))
    with pytest.raises(AstrodetInputError, match=str(evil)):
        MODELS.build(resnet).init_weights()  # init_cfg Pretrained on an mmdet backbone
    with pytest.raises((pickle.UnpicklingError, AstrodetInputError)):  # astrodet's backbones: the core's reader
        MODELS.build(dict(type="TimmEncoder", arch="resnet18", init_cfg=dict(type="Pretrained", checkpoint=str(evil))))
    assert not marker.exists()
