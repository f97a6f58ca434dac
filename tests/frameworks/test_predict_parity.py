"""Both frameworks' predictors, side by side: one set of Faster R-CNN weights gives the same detections through
Detectron2's and MMDetection's ``load_model``; neither ever runs code from a weights file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("detectron2")
pytest.importorskip("mmdet")

from detectron2.modeling import build_model

from astrodet.detectron2 import predictor as d2_predictor
from astrodet.errors import AstrodetInputError
from astrodet.inference import load_model
from astrodet.mmdet import predictor as mmdet_predictor
from tests.conftest import REPO
from tests.detectron2.test_predictor import malicious_checkpoint, tiny_val_images
from tests.frameworks.test_parity import _d2_detector_state_for_mmdet

PAIRS = [("frcnn_zoobot.yaml", "frcnn_zoobot.py"), ("frcnn_deepshadows.yaml", "frcnn_deepshadows.py")]


def same_weights_in_both_frameworks(d2_config: str, folder: Path) -> tuple[Path, Path]:
    """A Detectron2 checkpoint of ``d2_config`` and the same weights under mmdet's names. The box predictor is drawn
    wider than its initialiser so that scores spread out (no near-ties deciding which box NMS keeps)."""
    torch.manual_seed(0)
    state = build_model(d2_predictor.build_cfg(REPO / "configs" / d2_config, "cpu")).state_dict()
    generator = torch.Generator().manual_seed(1)
    for key in ("roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.bbox_pred.weight"):
        state[key] = torch.randn(state[key].shape, generator=generator) * 0.05
    d2_file, mmdet_file = folder / "model_final.pth", folder / "iter_1500.pth"
    torch.save({"model": state, "iteration": 1500}, d2_file)
    torch.save({"state_dict": _d2_detector_state_for_mmdet(state), "meta": {"iter": 1500}}, mmdet_file)
    return d2_file, mmdet_file


@pytest.mark.parametrize(("d2_config", "mm_config"), PAIRS)
def test_one_set_of_weights_gives_the_same_detections_in_both_frameworks(
    d2_config: str, mm_config: str, tmp_path: Path, tiny_cache: Path
) -> None:
    d2_file, mmdet_file = same_weights_in_both_frameworks(d2_config, tmp_path)
    d2_model = load_model(REPO / "configs" / d2_config, d2_file, device="cpu")
    mm_model = load_model(REPO / "configs" / "mmdet" / mm_config, mmdet_file, device="cpu")
    assert (d2_model.framework, mm_model.framework) == ("detectron2", "mmdet")
    assert d2_model.classes == mm_model.classes and d2_model.recipe == mm_model.recipe
    assert d2_model.input_size == mm_model.input_size == 200
    _, images = tiny_val_images(tiny_cache, count=3)
    for d2_found, mm_found in zip(d2_model.predict(images), mm_model.predict(images), strict=True):
        assert len(d2_found) == len(mm_found) > 0
        assert np.abs(d2_found.boxes - mm_found.boxes).max() <= 1e-3  # pixels
        assert np.abs(d2_found.scores - mm_found.scores).max() <= 1e-4
        assert np.array_equal(d2_found.labels, mm_found.labels)


@pytest.mark.parametrize(
    ("framework", "config"),
    [
        ("detectron2", REPO / "configs" / "quick_schedules" / "frcnn_zoobot_quick.yaml"),
        ("mmdet", REPO / "configs" / "mmdet" / "quick" / "frcnn_zoobot_quick.py"),
    ],
)
def test_a_malicious_checkpoint_never_runs_in_either_framework(framework: str, config: Path, tmp_path: Path) -> None:
    adapter = d2_predictor if framework == "detectron2" else mmdet_predictor
    for loader in (load_model, adapter.load_model):
        path, marker = malicious_checkpoint(tmp_path, name=f"{loader.__module__}.pth")
        with pytest.raises(AstrodetInputError, match=str(path)) as refusal:
            loader(config, path, device="cpu")
        assert "\n" not in str(refusal.value)  # one line
        assert not marker.exists()
        pkl = tmp_path / "model_final.pkl"
        pkl.write_bytes(path.read_bytes())
        with pytest.raises(AstrodetInputError, match=r"model_final\.pkl.*\.pkl"):
            loader(config, pkl, device="cpu")
        assert not marker.exists()


def test_a_checkpoint_of_the_other_framework_is_refused(tmp_path: Path) -> None:
    d2_file, mmdet_file = same_weights_in_both_frameworks("frcnn_zoobot.yaml", tmp_path)
    with pytest.raises(AstrodetInputError, match=str(mmdet_file)):
        load_model(REPO / "configs" / "frcnn_zoobot.yaml", mmdet_file, device="cpu")
    with pytest.raises(AstrodetInputError, match=str(d2_file)):
        load_model(REPO / "configs" / "mmdet" / "frcnn_zoobot.py", d2_file, device="cpu")


# ---------------------------------------------------------------------------------------------------------------
# Round trip on the simulator: a model trained on the tiny set, `astrodet predict` over freshly simulated galaxies
# (PNG cutouts + galaxies.csv as --meta, and the same galaxies as per-band FITS with their WCS), RA/Dec of the
# detections against the truth clumps.csv. Trained with Detectron2, converted for mmdet: a catalogue through each.

# The DeepShadows detector made light enough to learn the tiny set's clumps in about a minute on 2 CPU cores: FPN
# from stride 4 (no p1 level), 64 channels, a smaller box head; 120 steps at lr 1e-3.
LIGHT_D2 = """\
_BASE_: "{base}"
MODEL:
  DEEPSHADOWS: {{OUT_FEATURES: ["stage2", "stage3"]}}
  FPN: {{IN_FEATURES: ["stage2", "stage3"], OUT_CHANNELS: 64}}
  ANCHOR_GENERATOR: {{SIZES: [[8], [16], [32]]}}
  RPN: {{IN_FEATURES: ["p2", "p3", "p4"], POST_NMS_TOPK_TRAIN: 200}}
  ROI_HEADS: {{IN_FEATURES: ["p2", "p3"], BATCH_SIZE_PER_IMAGE: 64}}
  ROI_BOX_HEAD: {{FC_DIM: 256}}
SOLVER: {{IMS_PER_BATCH: 4, MAX_ITER: 120, BASE_LR: 0.001}}
DATASETS: {{TEST: []}}
"""
# The same detector in mmdet's terms (the base config already pads to 8, as Detectron2 pads this FPN's input).
LIGHT_MMDET = """\
_base_ = ['{base}']
model = dict(
    backbone=dict(out_indices=(1, 2)),
    neck=dict(in_channels=[32, 64], out_channels=64, num_outs=3),
    rpn_head=dict(in_channels=64, feat_channels=64, anchor_generator=dict(scales=[2], strides=[4, 8, 16])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64, featmap_strides=[4, 8], finest_scale=56),
        bbox_head=dict(in_channels=64, fc_out_channels=256),
    ),
)
"""
MATCH_RADIUS_ARCSEC = 1.0  # about 8 px at the median cutout scale: a detection this close is the same clump
CROP = 200  # Popp et al.'s frame, the one the model was trained on (coordinates stay in the 400 px cutout)


@pytest.fixture(scope="module")
def trained_on_the_tiny_set(tmp_path_factory: pytest.TempPathFactory, tiny_cache: Path) -> dict[str, Path]:
    """Detectron2 config + weights trained on the tiny set, and the mmdet twin config + the converted weights."""
    from detectron2.config import get_cfg
    from detectron2.utils.env import seed_all_rng

    from astrodet.detectron2 import AstroTrainer, add_astrodet_config, prepare_datasets
    from tests.conftest import astrodet_cache_env

    folder = tmp_path_factory.mktemp("trained")
    d2_config = folder / "light.yaml"
    d2_config.write_text(LIGHT_D2.format(base=REPO / "configs" / "quick_schedules" / "frcnn_deepshadows_quick.yaml"))
    mm_config = folder / "light.py"
    mm_config.write_text(LIGHT_MMDET.format(base=REPO / "configs" / "mmdet" / "frcnn_deepshadows.py"))
    cfg = get_cfg()
    add_astrodet_config(cfg)
    cfg.merge_from_file(str(d2_config))
    cfg.merge_from_list(["OUTPUT_DIR", str(folder / "out"), "MODEL.DEVICE", "cpu"])
    seed_all_rng(cfg.SEED)  # as tools/train_net.py's default_setup: the same weights and sample order every run
    with astrodet_cache_env(tiny_cache):
        prepare_datasets(cfg)
        AstroTrainer(cfg).train()
    d2_weights = folder / "out" / "model_final.pth"
    mm_weights = folder / "iter_120.pth"
    state = torch.load(d2_weights, map_location="cpu", weights_only=True)["model"]
    torch.save({"state_dict": _d2_detector_state_for_mmdet(state)}, mm_weights)
    return {"d2_config": d2_config, "d2_weights": d2_weights, "mm_config": mm_config, "mm_weights": mm_weights}


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 galaxies the model never saw (another seed), with PNG cutouts, cutout-frame FITS and the truth tables."""
    from astrodet.data.simulation import simulate_dataset

    folder = tmp_path_factory.mktemp("simulated") / "sim"
    simulate_dataset(folder, 12, seed=2027, workers=2, progress=False, write_fits=False, write_cutout_fits=True)
    return folder


def sky_offsets(catalogue_file: Path, simulation: Path) -> tuple[np.ndarray, int]:
    """Separations (arcsec) of the truth clumps inside the predicted crop matched one-to-one by their nearest
    detection within MATCH_RADIUS_ARCSEC, and the number of such truth clumps."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from astropy.table import Table

    found = Table.read(catalogue_file)
    truth = Table.read(simulation / "clumps.csv")
    low, high = 200 - CROP / 2, 200 + CROP / 2  # the crop in the 400 px PNG frame (galaxy centre at 200, 200)
    inside = (truth["x"] >= low) & (truth["x"] < high) & (truth["y"] >= low) & (truth["y"] < high)
    truth = truth[inside]
    assert len(found) > 0 and len(truth) > 0
    detections = SkyCoord(found["ra"] * u.deg, found["dec"] * u.deg)
    clumps = SkyCoord(np.asarray(truth["ra"]) * u.deg, np.asarray(truth["dec"]) * u.deg)
    index, separation, _ = clumps.match_to_catalog_sky(detections)
    close = separation.arcsec <= MATCH_RADIUS_ARCSEC
    assert len(set(index[close])) == close.sum()  # one detection per matched clump
    return separation.arcsec[close], len(truth)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("framework", "inputs"),
    [("detectron2", "images"), ("detectron2", "fits_cutout"), ("mmdet", "images")],
)
def test_predicted_sky_positions_match_the_simulated_clumps(
    framework: str, inputs: str, trained_on_the_tiny_set: dict[str, Path], simulated: Path, tmp_path: Path
) -> None:
    from astrodet.cli import main

    prefix = "d2" if framework == "detectron2" else "mm"
    out = tmp_path / "catalogue.ecsv"
    args = ["predict", "--config", str(trained_on_the_tiny_set[f"{prefix}_config"])]
    args += ["--weights", str(trained_on_the_tiny_set[f"{prefix}_weights"]), "--device", "cpu", "--no-progress"]
    args += ["--crop", str(CROP), "--out", str(out), str(simulated / inputs)]
    if inputs == "images":  # PNG cutouts know their sky position only from the table; FITS from their WCS
        args += ["--meta", str(simulated / "galaxies.csv")]
    assert main(args) == 0
    offsets, n_truth = sky_offsets(out, simulated)
    assert len(offsets) >= n_truth / 2, f"{len(offsets)} of {n_truth} clumps found"
    assert np.median(offsets) < 0.2, f"median offset {np.median(offsets):.3f} arcsec"
