"""Pointing an mmdet config at the embedded default dataset (generated on first use into ``$ASTRODET_CACHE``).

astrodet's configs load data through mmdet's own ``CocoDataset``. A dataset or evaluator that should read the
embedded default says so with a placeholder ``ann_file``::

    astrodet_default = 'default'        # which embedded set: 'default' (3000 galaxies) or 'tiny' (60)
    train_dataloader = dict(dataset=dict(type='CocoDataset', data_root='', ann_file='astrodet_default:train', ...))
    val_evaluator = dict(type='AstroDetectionMetric', ann_file='astrodet_default:val')

:func:`resolve_default_datasets` (called by ``tools/train_mmdet.py`` before the Runner is built) generates the named
set if needed and replaces every placeholder with the split's COCO file; datasets also get ``data_root`` = the
file's folder, since astrodet's ``file_name`` entries are relative to it (``data_prefix=dict(img='')``). A dataset
given a real ``ann_file`` is left alone, so your own COCO files and the default mix freely. Without the tool, an
unresolved placeholder fails loudly as a missing file named ``astrodet_default:<split>``.
"""

from __future__ import annotations

from collections.abc import MutableMapping, MutableSequence
from pathlib import Path
from typing import Any

from astrodet.data.default import SPLITS, ensure_default_dataset

PLACEHOLDER = "astrodet_default:"
CONFIG_KEY = "astrodet_default"


def placeholder(split: str) -> str:
    """The ``ann_file`` value that stands for ``split`` of the embedded default dataset."""
    if split not in SPLITS:
        raise ValueError(f"{PLACEHOLDER}{split}: unknown split {split!r}; the default dataset has {sorted(SPLITS)}")
    return f"{PLACEHOLDER}{split}"


def _placeholders(node: Any, found: dict[int, MutableMapping[str, Any]]) -> dict[int, MutableMapping[str, Any]]:
    """Every dict in a config tree whose ``ann_file`` is a default-dataset placeholder, once each (by identity:
    ``test_dataloader = val_dataloader`` shares one dict)."""
    if isinstance(node, MutableMapping):
        ann_file = node.get("ann_file")
        if isinstance(ann_file, str) and ann_file.startswith(PLACEHOLDER):
            found[id(node)] = node
        for value in node.values():
            _placeholders(value, found)
    elif isinstance(node, MutableSequence | tuple):
        for value in node:
            _placeholders(value, found)
    return found


def resolve_default_datasets(cfg: MutableMapping[str, Any]) -> dict[str, Path]:
    """Replace ``astrodet_default:<split>`` placeholders in ``cfg`` (in place) with the default set's COCO files.

    Returns the split -> COCO file mapping that was used (empty when the config names no placeholder). Safe to call
    from every process of a distributed run: generation is locked and happens once.
    """
    nodes = list(_placeholders(dict(cfg), {}).values())
    if not nodes:
        return {}
    name = cfg.get(CONFIG_KEY)
    if not name:
        raise ValueError(
            f"the config uses {PLACEHOLDER}<split> placeholders but sets no top-level {CONFIG_KEY!r} "
            "(name the embedded dataset: 'default' or 'tiny')"
        )
    for node in nodes:  # every placeholder is checked before anything is generated
        placeholder(node["ann_file"][len(PLACEHOLDER) :])
    splits = ensure_default_dataset(str(name), progress=False).splits
    for node in nodes:
        json_file = splits[node["ann_file"][len(PLACEHOLDER) :]].resolve()
        node["ann_file"] = str(json_file)
        if "data_prefix" in node or "data_root" in node:  # a dataset (an evaluator only reads the file)
            node["data_root"] = str(json_file.parent)
    return splits
