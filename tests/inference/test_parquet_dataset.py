"""``astrodet predict --engine ray --parquet-dataset``: a folder of Parquet parts that reads back (astrodet, pyarrow,
pandas, astropy) as the single-process catalogue, resumes after a kill to exactly its rows, and refuses bad use in
one line. The fast tests run the Ray engine's driver with its tasks' and actors' code in this process; the slow ones
start local Ray clusters."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from astrodet import cli
from astrodet.errors import AstrodetInputError
from astrodet.inference import command, ray_engine
from astrodet.inference.catalogue import read_catalogue
from astrodet.inference.parquet_dataset import COMMON_METADATA, MANIFEST
from astrodet.inference.ray_engine import ModelActor, PrepareInput, absolute_paths, run_predict_ray
from astrodet.inference.runner import PredictOptions, run_predict
from tests.conftest import REPO
from tests.inference.fakes import PeakDetector
from tests.inference.ray_fakes import load_peaks
from tests.inference.test_ray_engine import assert_same_catalogue

PLOT_MAX = 3


class _Killed(Exception):
    """The driver stops mid-run, as when it is killed: whatever it had not written is lost."""


@pytest.fixture
def inputs(simulated: Path, tmp_path: Path) -> Path:
    """The six simulated cutouts and an unreadable file sorted first: 7 inputs, the first one rejected (so the plots
    are those of inputs 1-3, not 0-2)."""
    folder = tmp_path / "inputs"
    shutil.copytree(simulated / "images", folder)
    (folder / "0_cut.png").write_bytes(b"not a png")
    return folder


@pytest.fixture
def actors_here(monkeypatch: pytest.MonkeyPatch):
    """The Ray engine without a cluster: :class:`PrepareInput` and :class:`ModelActor` run here, one input per batch,
    last input first (actors finish in any order). ``runs`` lists the inputs each run asked for; ``stop_after``
    kills the next run after that many results."""
    state = SimpleNamespace(runs=[], stop_after=None)

    def stream(ray, load, options, units, todo, predictor, layout, plot_names):
        state.runs.append(list(todo))
        prepare = PrepareInput(predictor.preparer)
        actor = ModelActor(load, options, predictor.task, predictor.photometry_bands, "cpu", None, plot_names)
        for done, index in enumerate(reversed(todo)):
            if done == state.stop_after:
                state.stop_after = None
                raise _Killed
            row = prepare({"index": index, "unit": pickle.dumps(absolute_paths(units[index]))})
            out = actor({name: np.asarray([value], dtype=object) for name, value in row.items()})
            yield int(out["index"][0]), json.loads(out["result"][0])

    cluster = SimpleNamespace(is_initialized=lambda: True, cluster_resources=lambda: {"CPU": 2.0})
    monkeypatch.setattr(ray_engine, "import_ray", lambda: cluster)
    monkeypatch.setattr(ray_engine, "stream_results", stream)
    monkeypatch.setattr(command, "load_model", lambda config, weights, device="auto": PeakDetector())
    return state


def _predict(fake_config: tuple[str, str], *args: str) -> int:
    config, weights = fake_config
    return cli.main(["predict", "--config", config, "--weights", weights, "--no-progress", *args])


def _run(inputs: Path, tmp_path: Path, name: str) -> list[str]:
    """The options of every run here: 2 inputs per part, plots of the first PLOT_MAX predicted inputs."""
    return [str(inputs), "--crop", "200", "--chunk-size", "2", "--out", str(tmp_path / f"{name}.parquet"),
            "--plot", str(tmp_path / f"{name}_plots"), "--plot-max", str(PLOT_MAX)]  # fmt: skip


def assert_dataset_is_the_catalogue(folder: Path, single: Path) -> None:
    """``folder`` (a finished dataset) read back by astrodet, pyarrow.dataset, pandas and astropy (part by part) has
    the rows of the single-file catalogue ``single`` (sorted by image and object; scores within 1e-5), its columns
    and Arrow types, its metadata (but the date and engine) and its rejects table; the plots are the same files."""
    import pandas
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq
    from astropy.table import Table, vstack

    whole = read_catalogue(single)
    ours = read_catalogue(folder)
    assert_same_catalogue(whole, ours, score_tolerance=1e-5, box_tolerance=0.0)
    assert {k: v for k, v in ours.meta.items() if k not in ("created", "engine")} == {
        k: v for k, v in whole.meta.items() if k not in ("created", "engine")
    }
    assert (ours.meta["engine"], whole.meta["engine"]) == ("ray", "local")

    key = ["image_index", "object_index"]
    dataset = ds.dataset(folder, format="parquet")
    assert dataset.schema.equals(pq.read_schema(single), check_metadata=False)
    arrow = dataset.to_table().sort_by([(name, "ascending") for name in key])
    frame = pandas.read_parquet(folder).sort_values(key)
    parts = sorted(folder.glob("part-*.parquet"))
    by_astropy = vstack([Table.read(part, format="parquet") for part in parts], metadata_conflicts="silent")
    by_astropy.sort(key)
    for table in (
        Table({name: arrow.column(name).to_numpy(zero_copy_only=False) for name in arrow.column_names}),
        Table.from_pandas(frame),
        by_astropy,
    ):
        assert_same_catalogue(whole, table, score_tolerance=1e-5, box_tolerance=0.0)

    starts = [Table.read(part, format="parquet").meta["part"]["first_input"] for part in parts]
    assert starts == list(range(0, whole.meta["inputs"], 2))  # each part records the inputs it covers
    assert pq.read_schema(folder / COMMON_METADATA).equals(pq.read_schema(single), check_metadata=False)
    rejects = folder.with_name(f"{folder.stem}_rejects.csv"), single.with_name(f"{single.stem}_rejects.csv")
    assert rejects[0].read_text() == rejects[1].read_text()
    plots = single.with_name(f"{single.stem}_plots"), folder.with_name(f"{folder.stem}_plots")
    assert sorted(p.name for p in plots[0].iterdir()) == sorted(p.name for p in plots[1].iterdir())
    assert len(list(plots[0].iterdir())) == PLOT_MAX
    for png in plots[0].iterdir():
        assert (plots[1] / png.name).read_bytes() == png.read_bytes(), png.name


def test_the_dataset_reads_back_as_the_single_process_catalogue(
    inputs: Path, tmp_path: Path, fake_config, actors_here, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _predict(fake_config, *_run(inputs, tmp_path, "local")) == 0
    assert _predict(fake_config, *_run(inputs, tmp_path, "ray"), "--engine", "ray", "--parquet-dataset") == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split("; rejects")[0].replace("local.parquet", "ray.parquet") == printed[1].split("; rejects")[0]
    assert "7 inputs = 6 predicted + 1 rejected" in printed[1] and f"{PLOT_MAX} plots in" in printed[1]
    folder = tmp_path / "ray.parquet"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [COMMON_METADATA, MANIFEST, *(f"part-00000{k}.parquet" for k in range(4))]
    )
    assert_dataset_is_the_catalogue(folder, tmp_path / "local.parquet")
    from astrodet.evaluation.inputs import read_table  # what `astrodet evaluate --pred` reads

    from_folder, from_file = read_table(folder, "predictions"), read_table(tmp_path / "local.parquet", "predictions")
    assert from_folder.colnames == from_file.colnames and len(from_folder) == len(from_file) > 0


def test_a_run_killed_midway_resumes_to_the_rows_of_an_uninterrupted_run(
    inputs: Path, tmp_path: Path, fake_config, actors_here, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _predict(fake_config, *_run(inputs, tmp_path, "local")) == 0
    ray = [*_run(inputs, tmp_path, "ray"), "--engine", "ray", "--parquet-dataset"]
    folder = tmp_path / "ray.parquet"
    actors_here.stop_after = 3  # inputs 6, 5, 4 come back: parts 3 ({6}) and 2 ({4, 5}) are written
    with pytest.raises(_Killed):
        _predict(fake_config, *ray)
    written = {p.name: p.stat() for p in folder.glob("part-*.parquet")}
    assert sorted(written) == ["part-000002.parquet", "part-000003.parquet"]
    assert not (folder / COMMON_METADATA).exists()
    with pytest.raises(AstrodetInputError, match="an unfinished Parquet dataset"):
        read_catalogue(folder)

    assert _predict(fake_config, *ray) == 2
    assert "holds a run's parts; pass --resume to continue it" in capsys.readouterr().err
    assert _predict(fake_config, *ray, "--score-threshold", "0.5", "--resume") == 2
    assert "another model, inputs or options" in capsys.readouterr().err
    assert _predict(fake_config, *ray, "--resume") == 0
    assert actors_here.runs[-1] == [0, 1, 2, 3]  # only the inputs of the missing parts 0 and 1
    for name, stat in written.items():  # the finished parts are kept as they were
        assert (folder / name).stat().st_ino == stat.st_ino and (folder / name).stat().st_mtime_ns == stat.st_mtime_ns
    assert_dataset_is_the_catalogue(folder, tmp_path / "local.parquet")
    assert _predict(fake_config, *ray, "--resume") == 0  # a finished dataset: nothing left to predict
    assert actors_here.runs[-1] == [0, 1, 2, 3] and len(actors_here.runs) == 2


def test_bad_use_is_one_line_and_touches_nothing(
    inputs: Path, tmp_path: Path, fake_config, actors_here, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file.parquet").write_bytes(b"a catalogue")
    (tmp_path / "other.parquet").mkdir()
    (tmp_path / "other.parquet" / "notes.txt").write_text("someone's folder")
    ray = ["--engine", "ray"]
    out = ["--out", str(tmp_path / "run.parquet")]
    cases = [
        ([*out, "--parquet-dataset"], "--parquet-dataset: works with --engine ray only"),
        ([*ray, "--parquet-dataset", "--out", str(tmp_path / "run.ecsv")], "--out names a folder ending in .parquet"),
        ([*ray, "--parquet-dataset", "--out", str(tmp_path / "file.parquet")], "is a file; --parquet-dataset writes"),
        ([*ray, "--parquet-dataset", "--out", str(tmp_path / "other.parquet")], "is not an astrodet Parquet dataset"),
        (["--out", str(tmp_path / "other.parquet")], "is a folder; a catalogue is a file (or --parquet-dataset)"),
        ([*ray, *out, "--resume"], "--resume: with --engine ray, continues a --parquet-dataset run only"),
    ]
    for extra, message in cases:
        assert _predict(fake_config, str(inputs), *extra) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("astrodet predict: error: ") and message in err and "\n" not in err, err
    assert actors_here.runs == [] and not (tmp_path / "run.parquet").exists()
    assert (tmp_path / "file.parquet").read_bytes() == b"a catalogue"
    assert [p.name for p in (tmp_path / "other.parquet").iterdir()] == ["notes.txt"]
    with pytest.raises(AstrodetInputError, match="--parquet-dataset: works with --engine ray only"):
        run_predict(PeakDetector(), PredictOptions([str(inputs)], str(tmp_path / "run.parquet"), parquet_dataset=True))


@pytest.mark.slow
def test_a_local_cluster_writes_the_dataset_and_plots_of_the_single_process_run(inputs: Path, tmp_path: Path) -> None:
    """Two CPU model actors on a local Ray cluster: parts, rejects and plots as the single-process run's."""
    import ray

    def options(name: str, dataset: bool) -> PredictOptions:
        return PredictOptions(
            [str(inputs)], str(tmp_path / f"{name}.parquet"), crop=200, chunk_size=2, progress=False,
            plot_dir=str(tmp_path / f"{name}_plots"), plot_max=PLOT_MAX, parquet_dataset=dataset,
        )  # fmt: skip

    run_predict(PeakDetector(), options("local", False))
    # workers import tests.inference.ray_fakes (the loader): the repository goes on their path
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
    try:
        summary = run_predict_ray(load_peaks, options("ray", True), num_workers=2)
    finally:
        ray.shutdown()
    assert (summary.inputs, summary.predicted, summary.plots) == (7, 6, PLOT_MAX)
    assert_dataset_is_the_catalogue(tmp_path / "ray.parquet", tmp_path / "local.parquet")


@pytest.mark.slow
def test_a_killed_ray_run_resumes_to_the_rows_of_an_uninterrupted_run(
    inputs: Path, tmp_path: Path, fake_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole `astrodet predict --engine ray --parquet-dataset` process group (driver, local cluster, actors)
    is SIGKILLed after two parts; `--resume` predicts only the inputs of the missing parts, and the dataset equals
    the single-process catalogue."""
    config, weights = fake_config
    run = ["predict", "--config", config, "--weights", weights, "--no-progress", *_run(inputs, tmp_path, "ray"),
           "--engine", "ray", "--num-workers", "2", "--batch-size", "1", "--parquet-dataset"]  # fmt: skip
    folder = tmp_path / "ray.parquet"
    killed_log, resumed_log = tmp_path / "killed.log", tmp_path / "resumed.log"
    env = {**os.environ, "FAKE_DETECTOR_DELAY": "2", "FAKE_DETECTOR_LOG": str(killed_log), "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.inference.fakes", *run], cwd=REPO, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while len(list(folder.glob("part-*.parquet"))) < 2:
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "no part finished in time"
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the session started for it: driver, Ray's processes, actors
        process.wait()
    kept = {p.name: p.read_bytes() for p in folder.glob("part-*.parquet")}
    assert 2 <= len(kept) < 4 and not (folder / COMMON_METADATA).exists()

    env = {**env, "FAKE_DETECTOR_DELAY": "0", "FAKE_DETECTOR_LOG": str(resumed_log)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.inference.fakes", *run, "--resume"], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=600, start_new_session=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "7 inputs = 6 predicted + 1 rejected" in done.stdout
    # parts hold inputs 0-1, 2-3, 4-5, 6; input 0 is the reject, which never reaches the model
    missing = [k for k in range(4) if f"part-{k:06d}.parquet" not in kept]
    expected = sum(len([i for i in range(2 * k, min(2 * k + 2, 7)) if i != 0]) for k in missing)
    assert len(resumed_log.read_text().splitlines()) == expected
    assert {name: (folder / name).read_bytes() for name in kept} == kept

    monkeypatch.setattr(command, "load_model", lambda config, weights, device="auto": PeakDetector())
    assert _predict(fake_config, *_run(inputs, tmp_path, "local")) == 0
    assert_dataset_is_the_catalogue(folder, tmp_path / "local.parquet")
