"""``astrodet predict --plot``: a PNG per predicted input with its kept detections boxed, capped, resume-safe."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from PIL import Image

from astrodet import cli
from astrodet.inference import command
from astrodet.inference.catalogue import read_catalogue
from astrodet.inference.model import Detections
from astrodet.inference.plot import class_colour, figure_size_px, plot_detections, plot_names
from tests.inference.fakes import MeanColourClassifier, PeakDetector

# Single bright pixels (the fake detector's peaks): white is class 0, orange (R > B + 40) class 1.
DOTS = {(60, 150): (255, 255, 255), (250, 220): (255, 120, 0), (530, 200): (255, 255, 255), (420, 60): (255, 120, 0)}


@pytest.fixture
def use_model(monkeypatch: pytest.MonkeyPatch):
    def install(model) -> None:
        monkeypatch.setattr(command, "load_model", lambda config, weights, device="auto": model)

    return install


def _predict(fake_config: tuple[str, str], *args: str) -> int:
    config, weights = fake_config
    return cli.main(["predict", "--config", config, "--weights", weights, "--no-progress", *args])


def _picture(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def _distance(pixel: np.ndarray, colour: str) -> float:
    return float(np.abs(pixel - np.array(to_rgb(colour)) * 255).max())


def _edge_matches(picture: np.ndarray, scale: float, box: tuple[float, float, float, float], colour: str) -> bool:
    """Whether the middle of each of the box's four edges, drawn at ``scale`` PNG px per image px, has ``colour``
    (within the line's antialiased width: the closest of the 5 pixels across the edge)."""
    x0, y0, x1, y1 = (v * scale for v in box)
    xm, ym = round((x0 + x1) / 2), round((y0 + y1) / 2)
    across = range(-2, 3)
    edges = [
        [picture[ym, round(x0) + d] for d in across],
        [picture[ym, round(x1) + d] for d in across],
        [picture[round(y0) + d, xm] for d in across],
        [picture[round(y1) + d, xm] for d in across],
    ]
    return all(min(_distance(p, colour) for p in edge) < 40 for edge in edges)


def _frame(folder: Path) -> Path:
    """A 600 x 300 px black frame with DOTS: wider than the fake model's 200 px input, so it is tiled."""
    pixels = np.zeros((300, 600, 3), dtype=np.uint8)
    for (x, y), colour in DOTS.items():
        pixels[y, x] = colour
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(folder / "field.png")
    return folder / "field.png"


def test_a_tiled_frame_is_drawn_whole_with_its_detections_boxed_by_class(
    tmp_path: Path, fake_config, use_model, capsys: pytest.CaptureFixture[str]
) -> None:
    model = PeakDetector()
    use_model(model)
    frame = _frame(tmp_path / "inputs")
    plots = tmp_path / "plots"
    assert _predict(fake_config, str(frame), "--out", str(tmp_path / "cat.ecsv"), "--plot", str(plots)) == 0
    assert max(shape[1] for shape in model.shapes) == 200  # tiled: the model never saw the whole frame
    assert f"; 1 plots in {plots}; " in capsys.readouterr().out.strip().splitlines()[-1]
    assert sorted(p.name for p in plots.iterdir()) == ["field.png"]
    picture = _picture(plots / "field.png")
    assert picture.shape[:2] == (400, 800)  # the frame's 2:1 ratio, enlarged to an 800 px side
    scale = 800 / 600
    table = read_catalogue(tmp_path / "cat.ecsv")
    assert len(table) == len(DOTS) and set(table["class_id"]) == {0, 1}
    for row in table:
        box = (row["x_min"], row["y_min"], row["x_max"], row["y_max"])
        assert _edge_matches(picture, scale, box, class_colour(row["class_id"])), row
        assert not _edge_matches(picture, scale, box, class_colour(1 - row["class_id"]))
    assert picture[round(100 * scale), round(150 * scale)].sum() < 30  # the sky between detections stays black


def test_crop_windows_and_float_data_are_drawn_in_the_catalogue_frame(tmp_path: Path) -> None:
    """A --crop window keeps the catalogue's coordinates (its origin shifts the axes); float multi-band data (no
    colour of its own) is shown as a stretched grey image, NaN as black."""
    rng = np.random.default_rng(0)
    data = rng.normal(0.0, 1.0, size=(100, 100, 5)).astype(np.float32)
    data[:10, :10] = np.nan
    found = Detections(np.array([[140.0, 130.0, 170.0, 160.0]]), np.array([0.9]), np.array([1]))
    path = plot_detections(tmp_path / "crop.png", data, found, ("clump", "odd clump"), 0.3, origin=(100, 100))
    picture = _picture(path)
    assert picture.shape[:2] == (800, 800)
    scale = 8.0
    assert _edge_matches(picture, scale, (40.0, 30.0, 70.0, 60.0), class_colour(1))  # box - origin
    assert np.all(picture[5:60, 5:60] == picture[5:60, 5:60, :1])  # grey
    assert picture[5:60, 5:60].max() < 10  # the NaN corner
    grey = np.full((50, 50, 1), 100, dtype=np.uint8)
    grey[0, 0] = 200
    picture = _picture(plot_detections(tmp_path / "grey.png", grey, Detections.empty(), ("clump",), 0.3))
    assert np.all(np.abs(picture[400:, 400:] - 100) <= 1)  # 8-bit grey levels as they are, not re-stretched


def test_plot_names_stay_inside_the_folder_and_are_unique() -> None:
    files = ["a/x.png", "b/x.png", "x_1.png", "fields/f1_{band}.fits", "../..png", "c/y.fits.gz", "d/we ird$.jpg"]
    names = plot_names(files)
    assert names == ["x_0.png", "x_1.png", "x_1_2.png", "f1.png", "input.png", "y.png", "we_ird_.png"]
    assert len(set(names)) == len(names) and all("/" not in n and not n.startswith(".") for n in names)
    assert figure_size_px(200, 200) == (800, 800) and figure_size_px(10000, 5000) == (2400, 1200)


def _inputs_with_a_reject(simulated: Path, folder: Path) -> Path:
    """The simulated cutouts, and an unreadable one sorted first: plots are counted over predicted inputs."""
    folder.mkdir()
    for png in sorted((simulated / "images").glob("*.png")):
        shutil.copy(png, folder / png.name)
    (folder / "0_cut.png").write_bytes(b"not a png")
    return folder


class _DiesAfter(PeakDetector):
    """The fake detector, killed (an exception escapes the run) on its ``calls``-th batch."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.calls = calls

    def predict(self, images):
        self.calls -= 1
        if self.calls == 0:
            raise KeyboardInterrupt
        return super().predict(images)


def test_the_cap_counts_predicted_inputs_and_resume_gives_the_plots_of_an_uninterrupted_run(
    simulated: Path, tmp_path: Path, fake_config, use_model, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = _inputs_with_a_reject(simulated, tmp_path / "inputs")
    stems = sorted(p.stem for p in (simulated / "images").glob("*.png"))
    run = [str(inputs), "--chunk-size", "1", "--plot-max", "4", "--crop", "200"]
    use_model(PeakDetector())
    whole = tmp_path / "whole"
    assert _predict(fake_config, *run, "--out", str(tmp_path / "whole.ecsv"), "--plot", str(whole)) == 0
    assert "7 inputs = 6 predicted + 1 rejected" in capsys.readouterr().out
    assert sorted(p.name for p in whole.iterdir()) == [f"{s}.png" for s in stems[:4]]
    table = read_catalogue(tmp_path / "whole.ecsv")
    row = table[table["file"] == str(inputs / f"{stems[0]}.png")][0]
    picture = _picture(whole / f"{stems[0]}.png")
    assert picture.shape[:2] == (800, 800)  # the 200 px crop the model saw, not the 400 px cutout
    box = (row["x_min"] - 100, row["y_min"] - 100, row["x_max"] - 100, row["y_max"] - 100)
    assert _edge_matches(picture, 4.0, box, class_colour(row["class_id"]))

    use_model(_DiesAfter(3))  # the reject's chunk and two predicted inputs finish, then the run dies
    resumed = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        _predict(fake_config, *run, "--out", str(tmp_path / "resumed.ecsv"), "--plot", str(resumed))
    assert len(list(resumed.iterdir())) == 2
    use_model(PeakDetector())
    assert _predict(fake_config, *run, "--out", str(tmp_path / "resumed.ecsv"), "--plot", str(resumed), "--resume") == 0
    assert "4 plots in" in capsys.readouterr().out
    assert sorted(p.name for p in resumed.iterdir()) == sorted(p.name for p in whole.iterdir())
    for png in whole.iterdir():
        assert (resumed / png.name).read_bytes() == png.read_bytes(), png.name


def test_plot_refusals_exit_2_with_one_line(
    simulated: Path, tmp_path: Path, fake_config, use_model, capsys: pytest.CaptureFixture[str]
) -> None:
    images = simulated / "images"
    before = sorted(images.iterdir())
    coco = tmp_path / "coco"
    (coco / "images").mkdir(parents=True)
    shutil.copy(before[0], coco / "images" / "x.png")
    record = {"id": 1, "file_name": "images/x.png", "width": 400, "height": 400}
    (coco / "set.json").write_text(json.dumps({"images": [record], "annotations": [], "categories": []}))
    out = ["--out", str(tmp_path / "cat.ecsv")]
    (tmp_path / "file.txt").write_text("x")
    use_model(PeakDetector())
    cases = [
        ([str(images), *out, "--plot", str(images)], "is the folder of the inputs"),
        ([str(images / "*.png"), *out, "--plot", str(images)], "is the folder of the inputs"),
        ([str(images), *out, "--plot", str(tmp_path / "file.txt")], "exists and is not a folder"),
        ([str(coco / "set.json"), *out, "--plot", str(coco / "images")], "is the folder of the inputs"),
        ([str(images), *out, "--plot-max", "3"], "--plot-max: only with --plot DIR"),
        ([str(images), *out, "--plot", str(tmp_path / "p"), "--plot-max", "0"], "--plot-max: expected a positive"),
    ]
    for args, message in cases:
        assert _predict(fake_config, *args) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("astrodet predict: error: ") and message in err and "\n" not in err, err
    use_model(MeanColourClassifier())
    assert _predict(fake_config, str(images), *out, "--plot", str(tmp_path / "p")) == 2
    assert "--plot: draws detections" in capsys.readouterr().err
    assert not (tmp_path / "p").exists() and sorted(images.iterdir()) == before
    assert sorted(p.name for p in (coco / "images").iterdir()) == ["x.png"]
