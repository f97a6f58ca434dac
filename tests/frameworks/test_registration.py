"""Importing an adapter is enough to register astrodet's modules: checked from fresh processes, as users hit it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _run_fresh(code: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env={**os.environ, **env}
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_detectron2_adapter_registers_on_import() -> None:
    out = _run_fresh(
        "import astrodet.detectron2\n"
        "from detectron2.modeling import BACKBONE_REGISTRY\n"
        "names = sorted(n for n, _ in BACKBONE_REGISTRY if n.startswith(('build_zoobot', 'build_deepshadows')))\n"
        "print(','.join(names))\n"
    )
    assert out.strip().split(",") == [
        "build_deepshadows_backbone",
        "build_deepshadows_fpn_backbone",
        "build_zoobot_backbone",
        "build_zoobot_fpn_backbone",
    ]


def test_detectron2_registers_every_catalogue_dataset_without_building_or_reading_samples(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    out = _run_fresh(
        "import astrodet.detectron2\n"
        "from detectron2.data import DatasetCatalog, MetadataCatalog\n"
        "from astrodet.data import catalogue\n"
        "names = [f'astrodet_{n}_{s}' for n in catalogue.names() for s in catalogue.recipe(n).splits]\n"
        "print(len(names), all(n in DatasetCatalog.list() for n in names))\n"
        "print(MetadataCatalog.get('astrodet_perseus_train').thing_classes)\n",
        ASTRODET_CACHE=str(cache),
        ASTRODET_SHARED_DATA=str(tmp_path / "no_shared_data"),
    )
    count, registered = out.splitlines()[0].split()
    assert int(count) >= 14 and registered == "True"  # default, tiny, perseus, perseus_all, gz2, deepshadows
    assert out.splitlines()[1] == "['other', 'dE_ETG_candidate']"
    assert not cache.exists()


def test_detectron2_config_module_does_not_import_the_trainers() -> None:
    out = _run_fresh(
        "import sys\nimport astrodet.detectron2.config\nprint('astrodet.detectron2.trainer' in sys.modules)"
    )
    assert out.strip() == "False"


def test_mmdet_adapter_registers_on_import() -> None:
    out = _run_fresh(
        "import astrodet.mmdet\n"
        "from mmdet.registry import MODELS\n"
        "print(MODELS.get('ZoobotEncoder').__module__, MODELS.get('DeepShadowsTrunk').__module__)\n"
    )
    assert out.split() == ["astrodet.mmdet.backbones", "astrodet.mmdet.backbones"]


def test_mmdet_custom_imports_resolve_astrodet_from_a_config() -> None:
    # The route a user's mmdet config takes: custom_imports, then a registry build by type name.
    out = _run_fresh(
        "from mmengine.config import Config\n"
        "from mmengine.utils import import_modules_from_strings\n"
        "cfg = Config(dict(custom_imports=dict(imports=['astrodet.mmdet'], allow_failed_imports=False)))\n"
        "import_modules_from_strings(**cfg.custom_imports)\n"
        "from mmdet.registry import MODELS\n"
        "m = MODELS.build(dict(type='DeepShadowsTrunk', out_indices=(1, 2)))\n"
        "print(m.out_channels, m.strides)\n"
    )
    assert out.strip() == "[32, 64] [4, 8]"
