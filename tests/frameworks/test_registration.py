"""Importing an adapter is enough to register astrodet's modules: checked from fresh processes, as users hit it."""

from __future__ import annotations

import subprocess
import sys


def _run_fresh(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
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
