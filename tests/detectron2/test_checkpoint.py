"""What Detectron2 training writes into its checkpoints beside the weights (``AstroCheckpointer``): the image recipe
and the training data's classes, read back weights-only, and preferred by ``astrodet predict`` to the config's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("detectron2")

from detectron2.config import CfgNode, get_cfg
from detectron2.engine import hooks

from astrodet.detectron2 import AstroTrainer, add_astrodet_config, prepare_datasets
from astrodet.detectron2.checkpoint import AstroCheckpointer, training_metadata
from astrodet.detectron2.predictor import load_model
from astrodet.errors import AstrodetInputError
from astrodet.inference import SIMULATOR_RECIPE, ImageRecipe
from astrodet.models.checkpoints import load_weights_only
from tests.conftest import REPO

QUICK = REPO / "configs" / "quick_schedules" / "frcnn_deepshadows_quick.yaml"


def quick_cfg(*opts: object, config: Path = QUICK) -> CfgNode:
    cfg = get_cfg()
    add_astrodet_config(cfg)
    cfg.merge_from_file(str(config))
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", *opts])
    return cfg


def test_the_record_is_the_configs_recipe_and_training_classes_in_plain_containers(tmp_path: Path) -> None:
    """A nested PARAMS is a CfgNode in the config; in the checkpoint it must be a dict, or the weights-only reader
    would refuse the trainer's own files."""
    config = tmp_path / "recipe.yaml"
    recipe = 'KIND: "rgb8", BANDS: ["z", "r", "g"], STRETCH: "lupton", PARAMS: {Q: 8.0, weights: {z: 1.0}}'
    config.write_text(f'_BASE_: "{QUICK}"\nASTRODET: {{IMAGE_RECIPE: {{{recipe}}}}}\n')
    cfg = quick_cfg("DATASETS.TRAIN", ("astrodet_deepshadows_train",), config=config)
    recorded = training_metadata(cfg)
    assert recorded["classes"] == ["artifact", "LSBG"]  # the training dataset's, as registered
    expected = ImageRecipe("rgb8", ("z", "r", "g"), "lupton", {"Q": 8.0, "weights": {"z": 1.0}}, channels=3)
    assert ImageRecipe.from_dict(recorded["image_recipe"]) == expected
    torch.save(recorded, tmp_path / "record.pth")
    assert load_weights_only(tmp_path / "record.pth") == recorded
    assert training_metadata(quick_cfg())["image_recipe"] == SIMULATOR_RECIPE.to_dict()  # KIND "": the simulator's


@pytest.mark.slow
def test_training_checkpoints_carry_the_recipe_and_classes_that_predict_prefers(
    tiny_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two iterations on the tiny set; the PeriodicCheckpointer's model_final.pth holds the record. A config naming
    other data predicts under the checkpoint's classes; one whose model predicts 3 classes is refused."""
    monkeypatch.setenv("ASTRODET_CACHE", str(tiny_cache))
    cfg = quick_cfg("SOLVER.MAX_ITER", 2, "DATASETS.TEST", (), "OUTPUT_DIR", str(tmp_path))
    prepare_datasets(cfg)
    trainer = AstroTrainer(cfg)
    writers = [hook.checkpointer for hook in trainer._hooks if isinstance(hook, hooks.PeriodicCheckpointer)]
    assert writers == [trainer.checkpointer] and isinstance(trainer.checkpointer, AstroCheckpointer)
    trainer.resume_or_load(resume=False)
    trainer.train()
    final = tmp_path / "model_final.pth"
    saved = load_weights_only(final)
    assert saved["image_recipe"] == SIMULATOR_RECIPE.to_dict() and saved["classes"] == ["clump", "odd_clump"]
    assert saved["iteration"] == 1 and "model" in saved

    other_data = tmp_path / "other_data.yaml"  # the DeepShadows catalogue: artifact, LSBG
    other_data.write_text(f'_BASE_: "{QUICK}"\nDATASETS: {{TRAIN: [astrodet_deepshadows_train], TEST: []}}\n')
    bare = tmp_path / "bare.pth"
    torch.save({"model": saved["model"]}, bare)
    assert load_model(other_data, bare, device="cpu").classes == ("artifact", "LSBG")  # no record: the config's
    detector = load_model(other_data, final, device="cpu")
    assert detector.classes == ("clump", "odd_clump") and detector.recipe == SIMULATOR_RECIPE

    three = tmp_path / "three_classes.yaml"
    three.write_text(f'_BASE_: "{QUICK}"\nMODEL: {{ROI_HEADS: {{NUM_CLASSES: 3}}}}\n')
    refusal = rf"{final}: trained on 2 classes \['clump', 'odd_clump'\], but this config's model predicts 3"
    with pytest.raises(AstrodetInputError, match=refusal):
        load_model(three, final, device="cpu")
