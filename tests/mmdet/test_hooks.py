"""``AstroCheckpointHook`` under a plain mmengine Runner, built from an astrodet config the way mmdet's own
``tools/train.py`` and ``tools/test.py`` build it (``Config.fromfile``, ``Runner.from_cfg``): a checkpoint none of
whose weights fits the model is refused on ``load_from`` and on resuming, and saved checkpoints carry the image
recipe and the training classes that ``astrodet predict`` then prefers to the config's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("mmdet")

from mmengine.config import Config
from mmengine.runner import Runner
from torch import nn

from astrodet.errors import AstrodetInputError
from astrodet.inference import SIMULATOR_RECIPE, ImageRecipe
from astrodet.mmdet.compat import check_checkpoint_fits, load_local_checkpoint
from astrodet.mmdet.hooks import AstroCheckpointHook, with_checkpoint_hook
from astrodet.mmdet.predictor import load_model
from tests.conftest import REPO, astrodet_cache_env

QUICK = REPO / "configs" / "mmdet" / "quick" / "frcnn_deepshadows_quick.py"
RECIPE = ImageRecipe(
    kind="rgb8", bands=("z", "r", "g"), stretch="lupton", params={"Q": 8.0, "weights": {"z": 1.0}}, channels=3
)


def runner_as_mmdet_tools_build_it(work_dir: Path, config: Path = QUICK, **options: object) -> Runner:
    """mmdet's tools/train.py: the config file, the work dir and ``--cfg-options``, then ``Runner.from_cfg``."""
    cfg = Config.fromfile(str(config))
    cfg.work_dir = str(work_dir)
    cfg.merge_from_dict(options)
    return Runner.from_cfg(cfg)


def test_the_astrodet_configs_list_the_hook_and_the_training_tool_adds_it_to_any_other() -> None:
    for config in sorted((REPO / "configs" / "mmdet").rglob("*.py")):
        if not config.name.startswith("_"):
            hooks = Config.fromfile(str(config)).custom_hooks
            assert dict(type="AstroCheckpointHook") in hooks, config
    bare = Config(dict(custom_hooks=[dict(type="AstroReportHook")]))
    with_checkpoint_hook(bare)
    with_checkpoint_hook(bare)  # once, however often it is asked
    assert bare.custom_hooks == [dict(type="AstroReportHook"), dict(type="AstroCheckpointHook")]
    scoped = Config(dict(custom_hooks=[dict(type="mmdet.AstroCheckpointHook")]))
    with_checkpoint_hook(scoped)
    assert len(scoped.custom_hooks) == 1


def test_a_runner_refuses_load_from_and_resume_of_another_models_weights(tmp_path: Path) -> None:
    """mmengine alone would warn about missing keys and train or test random weights with exit 0."""
    foreign = tmp_path / "other_model.pth"
    torch.save({"state_dict": {"encoder.layer0.weight": torch.zeros(3)}, "meta": {}}, foreign)
    refusal = f"{foreign}: none of its 1 weights fits this model"

    runner = runner_as_mmdet_tools_build_it(tmp_path / "load", load_from=str(foreign))
    assert any(isinstance(hook, AstroCheckpointHook) for hook in runner.hooks)
    with pytest.raises(AstrodetInputError, match=refusal):
        runner.load_or_resume()  # what Runner.train() and Runner.test() call after before_run

    runner = runner_as_mmdet_tools_build_it(tmp_path / "resume", load_from=str(foreign), resume=True)
    with pytest.raises(AstrodetInputError, match=refusal):
        runner.load_or_resume()

    work_dir = tmp_path / "auto"  # --resume without a file: the work dir's last_checkpoint names it
    work_dir.mkdir()
    (work_dir / "last_checkpoint").write_text(str(foreign))
    runner = runner_as_mmdet_tools_build_it(work_dir, resume=True)
    with pytest.raises(AstrodetInputError, match=refusal):
        runner.load_or_resume()


def test_a_checkpoint_that_fits_loads(tmp_path: Path) -> None:
    trained = runner_as_mmdet_tools_build_it(tmp_path / "trained").model
    with torch.no_grad():
        for parameter in trained.parameters():
            parameter.fill_(0.25)
    partial = {k: v for k, v in trained.state_dict().items() if k.startswith("backbone.")}  # a backbone only
    for name, state in (("full.pth", trained.state_dict()), ("backbone.pth", partial)):
        torch.save({"state_dict": state, "meta": {}}, tmp_path / name)
        runner = runner_as_mmdet_tools_build_it(tmp_path / name.removesuffix(".pth"), load_from=str(tmp_path / name))
        runner.load_or_resume()
        loaded = runner.model.state_dict()
        assert all(torch.equal(loaded[key], value) for key, value in state.items())


def test_right_names_with_wrong_shapes_fit_nothing() -> None:
    model = nn.Linear(4, 2)
    wrong = {"state_dict": {"module.weight": torch.zeros(3, 4), "bias": torch.zeros(3)}}
    refusal = r"w\.pth: none of its 2 weights fits this model \(2 have a right name but another shape\)"
    with pytest.raises(AstrodetInputError, match=refusal):
        check_checkpoint_fits(model, wrong, "w.pth")
    check_checkpoint_fits(model, {"module.weight": torch.zeros(2, 4)}, "w.pth")  # DDP's prefix, a bare state dict


def test_saved_checkpoints_carry_the_recipe_and_classes_that_predict_prefers(tiny_cache: Path, tmp_path: Path) -> None:
    """A config that names other classes (or none of the recipe) still predicts under the checkpoint's; a config
    whose model predicts another number of classes than the checkpoint was trained on is refused, naming it."""
    with astrodet_cache_env(tiny_cache):
        runner = runner_as_mmdet_tools_build_it(tmp_path / "work", image_recipe=RECIPE.to_dict())
        runner.call_hook("before_run")
        runner.save_checkpoint(str(tmp_path), "saved.pth", save_optimizer=False, save_param_scheduler=False)
    saved = tmp_path / "saved.pth"
    meta = load_local_checkpoint(str(saved))["meta"]  # read back weights-only: plain containers
    assert ImageRecipe.from_dict(meta["image_recipe"]) == RECIPE
    assert tuple(meta["dataset_meta"]["classes"]) == ("clump", "odd_clump")  # mmengine's, from the training data

    other_names = tmp_path / "other_names.py"
    named = "test_dataloader = dict(dataset=dict(metainfo={'classes': ('a', 'b')}))"
    other_names.write_text(f"_base_ = [{str(QUICK)!r}]\n{named}\n")
    bare = tmp_path / "bare.pth"
    torch.save({"state_dict": load_local_checkpoint(str(saved))["state_dict"]}, bare)
    assert load_model(other_names, bare, device="cpu").classes == ("a", "b")  # without a record: the config's
    detector = load_model(other_names, saved, device="cpu")
    assert detector.classes == ("clump", "odd_clump") and detector.recipe == RECIPE != SIMULATOR_RECIPE

    three = tmp_path / "three_classes.py"
    three.write_text(f"_base_ = [{str(QUICK)!r}]\nmodel = dict(roi_head=dict(bbox_head=dict(num_classes=3)))\n")
    refusal = rf"{saved}: trained on 2 classes \['clump', 'odd_clump'\], but this config's model predicts 3"
    with pytest.raises(AstrodetInputError, match=refusal):
        load_model(three, saved, device="cpu")
