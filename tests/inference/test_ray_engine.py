"""``astrodet predict --engine ray``: refusals without Ray or with flags that need it, the actor layout, and (slow,
starting local Ray clusters) the same catalogue as the single-process engine, also when a model actor is killed."""

from __future__ import annotations

import functools
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from astrodet import cli
from astrodet.errors import AstrodetInputError
from astrodet.inference import command
from astrodet.inference.catalogue import read_catalogue
from astrodet.inference.ray_engine import actor_layout, run_predict_ray
from astrodet.inference.runner import PredictOptions, run_predict
from tests.conftest import REPO
from tests.inference.fakes import PeakDetector
from tests.inference.ray_fakes import load_killer


def _predict(fake_config: tuple[str, str], *args: str) -> int:
    config, weights = fake_config
    return cli.main(["predict", "--config", config, "--weights", weights, "--no-progress", *args])


def test_without_ray_the_engine_names_the_extra(
    simulated: Path, tmp_path: Path, fake_config, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setattr(command, "load_model", lambda config, weights, device="auto": PeakDetector())
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as when it is not installed
    out = tmp_path / "cat.ecsv"
    assert _predict(fake_config, str(simulated / "images"), "--out", str(out), "--engine", "ray") == 2
    err = capsys.readouterr().err.strip()
    assert "--engine ray: Ray (with Ray Data) is not installed; pip install 'astrodet[ray]'" in err
    assert "\n" not in err and not out.exists()


def test_engine_flags_are_checked_before_anything_runs(simulated: Path, tmp_path: Path, fake_config, capsys) -> None:
    image = str(sorted((simulated / "images").glob("*.png"))[0])
    cases = [
        (["--num-workers", "2"], "--ray-address, --num-workers: only with --engine ray"),
        (["--ray-address", "auto"], "--ray-address, --num-workers: only with --engine ray"),
        (["--engine", "ray", "--num-workers", "0"], "--num-workers: expected a positive integer, got 0"),
        (["--engine", "ray", "--device", "cuda:1"], "--device cuda:1: with --engine ray, one of auto, cpu, cuda"),
        (["--engine", "ray", "--resume"], "--resume: with --engine ray, continues a --parquet-dataset run only"),
    ]
    for extra, message in cases:
        assert _predict(fake_config, image, "--out", str(tmp_path / "a.ecsv"), *extra) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err


def test_actors_one_per_gpu_or_sharing_the_cores() -> None:
    assert actor_layout({"CPU": 2.0}, 2, "auto", "fp32") == ("cpu", 2, {"num_cpus": 1}, 1)
    assert actor_layout({"CPU": 16.0}, 3, "auto", "fp32") == ("cpu", 3, {"num_cpus": 5}, 5)
    assert actor_layout({"CPU": 16.0}, None, "auto", "fp32") == ("cpu", 1, {"num_cpus": 16}, 16)
    assert actor_layout({"CPU": 16.0, "GPU": 4.0}, None, "auto", "fp16") == ("cuda", 4, {"num_gpus": 1}, None)
    assert actor_layout({"CPU": 16.0, "GPU": 4.0}, 2, "cpu", "fp32") == ("cpu", 2, {"num_cpus": 8}, 8)
    for resources, workers, device, precision, message in [
        ({"CPU": 16.0, "GPU": 2.0}, 3, "auto", "fp32", "--num-workers 3: the Ray cluster has 2 GPUs"),
        ({"CPU": 2.0}, 3, "auto", "fp32", "--num-workers 3: the Ray cluster has 2 CPUs"),
        ({"CPU": 2.0}, 1, "auto", "fp16", "--precision fp16: runs on CUDA GPUs only"),
        ({"CPU": 2.0}, None, "cuda", "fp32", "--device cuda: the Ray cluster has no GPUs"),
    ]:
        with pytest.raises(AstrodetInputError, match=message):
            actor_layout(resources, workers, device, precision)


# astropy pickles a WCS (on its way from the decoding task to the model actor) through FITS header text: RA/Dec
# move by about 1e-12 degrees, with boxes exactly equal
SKY_TOLERANCE_DEG = 1e-9


def assert_same_catalogue(
    one, two, score_tolerance: float, box_tolerance: float, sky_tolerance: float = SKY_TOLERANCE_DEG
) -> None:
    """The same rows in the same order: text and integer columns equal; RA/Dec (degrees), scores and pixel positions
    within the tolerances (0: equal)."""
    assert one.colnames == two.colnames and len(one) == len(two) > 0
    for name in one.colnames:
        a, b = np.asarray(one[name]), np.asarray(two[name])
        if a.dtype.kind in "UiO":
            assert np.array_equal(a, b), name
            continue
        tolerances = {"ra": sky_tolerance, "dec": sky_tolerance, "score": score_tolerance}
        tolerance = tolerances.get(name, box_tolerance)
        assert np.array_equal(np.isnan(a), np.isnan(b)), name
        assert np.nanmax(np.abs(a - b), initial=0.0) <= tolerance, name


@pytest.mark.slow
def test_a_local_cluster_of_two_workers_gives_the_single_process_catalogue(tmp_path: Path, tiny_cache: Path) -> None:
    """A Faster R-CNN (drawn so that its scores spread out) over the tiny set's test images: the same rows in the
    same order; scores within 1e-5 and positions within 1e-3 px (two actors of one torch thread each add in another
    order than one process of two threads)."""
    from astrodet.data import catalogue
    from astrodet.inference.model import load_model
    from astrodet.inference.postprocess import PostProcessing
    from tests.conftest import astrodet_cache_env
    from tests.frameworks.test_predict_parity import same_weights_in_both_frameworks

    config = REPO / "configs" / "frcnn_deepshadows.yaml"
    weights, _ = same_weights_in_both_frameworks(config.name, tmp_path)
    with astrodet_cache_env(tiny_cache):
        test_file = catalogue.ensure("tiny", progress=False)["test"]
    post = PostProcessing(score_threshold=0.05)  # many rows, low scores included
    local = PredictOptions([str(test_file)], str(tmp_path / "local.ecsv"), post=post, progress=False)
    run_predict(load_model(config, weights, device="cpu"), local)
    distributed = PredictOptions([str(test_file)], str(tmp_path / "ray.ecsv"), post=post, progress=False)
    summary = run_predict_ray(functools.partial(load_model, str(config), str(weights)), distributed, num_workers=2)
    one, two = read_catalogue(local.out), read_catalogue(distributed.out)
    assert summary.inputs == one.meta["inputs"] > 0
    assert (one.meta["engine"], two.meta["engine"]) == ("local", "ray")
    # 1e-3 px at the tiny set's pixel scales (under 0.5 arcsec) is under 1.4e-7 degrees on the sky
    assert_same_catalogue(one, two, score_tolerance=1e-5, box_tolerance=1e-3, sky_tolerance=2e-7)


@pytest.mark.slow
def test_a_killed_model_actor_loses_and_repeats_no_row(simulated: Path, tmp_path: Path) -> None:
    """One model actor SIGKILLs its own process on its second batch; Ray restarts it and retries the batch: the
    catalogue and rejects equal those of an uninterrupted single-process run, row for row (RA/Dec to 1e-9 degrees)."""
    import ray

    inputs = tmp_path / "inputs"
    shutil.copytree(simulated / "images", inputs)
    (inputs / "cut.png").write_bytes((sorted(inputs.glob("*.png"))[0]).read_bytes()[:500])  # a reject too
    meta = str(simulated / "galaxies.csv")
    whole = PredictOptions([str(inputs)], str(tmp_path / "whole.ecsv"), meta=meta, batch_size=1, progress=False)
    run_predict(PeakDetector(), whole)
    marker = tmp_path / "killed"
    killed = PredictOptions([str(inputs)], str(tmp_path / "killed.ecsv"), meta=meta, batch_size=1, progress=False)
    # workers import tests.inference.ray_fakes (the loader): the repository goes on their path
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
    try:
        run_predict_ray(functools.partial(load_killer, marker=str(marker), kill_on=2), killed, num_workers=2)
    finally:
        ray.shutdown()
    assert marker.exists()  # a worker did die mid-run
    one, two = read_catalogue(whole.out), read_catalogue(killed.out)
    assert one.meta["rejected"] == two.meta["rejected"] == 1
    assert_same_catalogue(one, two, score_tolerance=0.0, box_tolerance=0.0)
    rejects = (tmp_path / "whole_rejects.csv").read_text(), (tmp_path / "killed_rejects.csv").read_text()
    assert rejects[0] == rejects[1]

