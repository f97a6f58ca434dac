"""The simulated Clump Scout dataset: determinism, formats, WCS, labels consistent with pixels, statistics."""

from __future__ import annotations

import csv
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from PIL import Image

from astrodet.cli import main
from astrodet.data import simulation
from astrodet.data.boxstats import box_stats, read_boxes_csv
from astrodet.data.imaging import celestial_wcs, png_to_fits_pixel
from astrodet.errors import AstrodetInputError

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "clumpscout_boxes"
REAL_COLUMNS = ["image_id", "local_ids", "filename", "label", "label_text", "x1", "x2", "y1", "y2"]
N_SMALL = 6


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _all_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "ds"
    summary = simulation.simulate_dataset(out, N_SMALL, seed=3, workers=1, progress=False)
    assert summary.n_galaxies == N_SMALL
    return out


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """A couple of hundred galaxies (PNG and tables only) for statistics."""
    out = tmp_path_factory.mktemp("stats") / "ds"
    simulation.simulate_dataset(out, 160, seed=11, workers=2, progress=False, write_fits=False)
    return out


def test_same_seed_same_bytes_whatever_the_workers(small, tmp_path):
    again = tmp_path / "again"
    simulation.simulate_dataset(again, N_SMALL, seed=3, workers=2, progress=False)
    first, second = _all_files(small), _all_files(again)
    assert sorted(first) == sorted(second)
    assert len([f for f in first if f.startswith("fits/")]) == 3 * N_SMALL
    assert len([f for f in first if f.startswith("images/")]) == N_SMALL
    assert all(first[name] == second[name] for name in first)
    other = tmp_path / "other"
    simulation.simulate_dataset(other, 2, seed=4, workers=1, progress=False)
    assert (other / "boxes.csv").read_bytes() != (small / "boxes.csv").read_bytes()


# Digest of the ``small`` set (every file's name and bytes; simulation.json without the astrodet version) written by
# the simulator before the u/z bands were added: the default g, r, i output must keep these bytes.
SMALL_DIGEST = "748c6a04299d66c904be11353d7a82d302592bde1f48cf2c267b9e761903b9c6"


def test_default_output_keeps_its_bytes(small):
    digest = hashlib.sha256()
    for name, data in _all_files(small).items():
        if name == "simulation.json":
            config = json.loads(data)
            config.pop("astrodet_version")
            data = json.dumps(config, sort_keys=True).encode()
        digest.update(name.encode())
        digest.update(data)
    assert digest.hexdigest() == SMALL_DIGEST


def test_boxes_table_has_exactly_the_clump_scout_format(small):
    header = (small / "boxes.csv").read_text().splitlines()[0].split(",")
    assert header == REAL_COLUMNS
    if REAL.is_dir():
        real_header = (REAL / "clumpscout_boxes_train.csv").read_text().splitlines()[0].split(",")
        assert header == real_header
    boxes = _rows(small / "boxes.csv")
    assert boxes, "the small set should hold at least one box"
    for box in boxes:
        assert box["label_text"] == {"1": "clumpy", "2": "clumpy, odd"}[box["label"]]
        assert box["filename"] == f"images/{box['local_ids']}.png"
        assert len(box["local_ids"]) == 12 and box["local_ids"].isdigit()
        assert int(box["image_id"]) >= simulation.IMAGE_ID_BASE
        width = float(box["x2"]) - float(box["x1"])
        height = float(box["y2"]) - float(box["y1"])
        assert width == pytest.approx(height) and width > 0  # square, like the volunteers' boxes


def test_tables_agree_and_keep_galaxies_without_clumps(small):
    boxes, clumps, galaxies = (_rows(small / f"{t}.csv") for t in ("boxes", "clumps", "galaxies"))
    assert len(galaxies) == N_SMALL
    assert len(clumps) == len(boxes)
    assert sum(int(g["n_boxes"]) for g in galaxies) == len(boxes)
    sides = {g["local_ids"]: float(g["box_side_px"]) for g in galaxies}
    for box, clump in zip(boxes, clumps, strict=True):
        assert box["local_ids"] == clump["local_ids"] and box["label"] == clump["label"]
        # crop coordinates = PNG coordinates - 100, box centred on the source
        assert (float(box["x1"]) + float(box["x2"])) / 2 + 100 == pytest.approx(float(clump["x"]))
        assert (float(box["y1"]) + float(box["y2"])) / 2 + 100 == pytest.approx(float(clump["y"]))
        assert float(box["x2"]) - float(box["x1"]) == pytest.approx(sides[box["local_ids"]])
        assert clump["kind"] in {"sf_clump", "star", "red_compact"}
        assert (clump["kind"] == "sf_clump") == (clump["label"] == "1")
    for galaxy in galaxies:
        image = Image.open(small / galaxy["filename"])
        assert image.size == (400, 400) and image.mode == "RGB"


def test_fits_wcs_maps_galaxy_and_clump_positions(small):
    galaxies = {g["local_ids"]: g for g in _rows(small / "galaxies.csv")}
    clumps = _rows(small / "clumps.csv")
    for local_id, galaxy in galaxies.items():
        for band in "gri":
            with fits.open(small / "fits" / f"{local_id}_{band}.fits") as hdul:
                header = hdul[0].header
                assert header["BUNIT"] == "nanomaggy" and header["FILTER"] == band
                assert hdul[0].data.shape == (int(galaxy["fits_size"]),) * 2
                wcs = WCS(header)
        assert wcs.has_celestial
        ra, dec = wcs.pixel_to_world_values(float(galaxy["fits_x"]), float(galaxy["fits_y"]))
        assert ra == pytest.approx(float(galaxy["ra"]), abs=1e-9)
        assert dec == pytest.approx(float(galaxy["dec"]), abs=1e-9)
    # every clump's RA/Dec is where the PNG-frame WCS puts its PNG position (to 0.05 arcsec)
    for clump in clumps:
        galaxy = galaxies[clump["local_ids"]]
        png_wcs = celestial_wcs(float(galaxy["ra"]), float(galaxy["dec"]), float(galaxy["pixel_scale"]), (400, 400))
        ra, dec = png_wcs.pixel_to_world_values(*png_to_fits_pixel(float(clump["x"]), float(clump["y"]), 400))
        offset = math.hypot((ra - float(clump["ra"])) * math.cos(math.radians(dec)), dec - float(clump["dec"]))
        assert offset * 3600 < 0.05


def _aperture(image: np.ndarray, col: float, row: float, radius: float) -> tuple[float, int]:
    """(sum in r < radius minus the annulus median times the area, number of pixels in the aperture)."""
    yy, xx = np.indices(image.shape)
    dist = np.hypot(xx - col, yy - row)
    level = float(np.median(image[(dist > 1.6 * radius) & (dist < 2.6 * radius)]))
    inner = dist < radius
    return float(image[inner].sum() - level * inner.sum()), int(inner.sum())


def test_labelled_sources_are_visible_in_the_pixels(small):
    """A local excess sits at every box, where the catalogue says (catches coordinate and labelling bugs)."""
    galaxies = {g["local_ids"]: g for g in _rows(small / "galaxies.csv")}
    for clump in _rows(small / "clumps.csv"):
        galaxy = galaxies[clump["local_ids"]]
        assert float(clump["contrast"]) >= simulation.MIN_CONTRAST and float(clump["snr"]) >= simulation.MIN_SNR
        scale = float(galaxy["pixel_scale"]) / simulation.SDSS_PIXEL
        col = float(galaxy["fits_x"]) + (float(clump["x"]) - 200) * scale
        row = float(galaxy["fits_y"]) - (float(clump["y"]) - 200) * scale
        radius = 0.7 * float(galaxy["psf_fwhm_arcsec"]) / simulation.SDSS_PIXEL
        total = sum(fits.getdata(small / "fits" / f"{clump['local_ids']}_{b}.fits").astype(float) for b in "gri")
        corners = np.concatenate([total[:12, :12], total[:12, -12:], total[-12:, :12], total[-12:, -12:]]).ravel()
        sky_sigma = float(1.4826 * np.median(np.abs(corners - np.median(corners))))  # sky only, robust to stars
        excess, area = _aperture(total, col, row, radius)
        assert excess > 5 * sky_sigma * math.sqrt(area), clump
        # the excess is centred on the catalogue position: a PSF FWHM away it is much weaker
        off_excess, _ = _aperture(total, col + 1.4 * radius, row, radius)
        assert off_excess < 0.7 * excess, clump


def test_star_forming_clumps_are_bluer_than_their_disks(small):
    galaxies = {g["local_ids"]: g for g in _rows(small / "galaxies.csv")}
    sf = [c for c in _rows(small / "clumps.csv") if c["kind"] == "sf_clump"]
    assert sf
    for clump in sf:
        g_r = -2.5 * math.log10(float(clump["flux_g"]) / float(clump["flux_r"]))
        assert g_r < float(galaxies[clump["local_ids"]]["disk_g_r"]) - 0.1
    # measured in the images too: aperture colour of the clumps vs the galaxy's total colour
    measured, galaxy_colours = [], []
    for clump in sf:
        galaxy = galaxies[clump["local_ids"]]
        scale = float(galaxy["pixel_scale"]) / simulation.SDSS_PIXEL
        col = float(galaxy["fits_x"]) + (float(clump["x"]) - 200) * scale
        row = float(galaxy["fits_y"]) - (float(clump["y"]) - 200) * scale
        radius = float(galaxy["psf_fwhm_arcsec"]) / simulation.SDSS_PIXEL
        flux = {}
        for band in "gr":
            image = fits.getdata(small / "fits" / f"{clump['local_ids']}_{band}.fits").astype(float)
            flux[band] = _aperture(image, col, row, 0.7 * radius)[0]
        measured.append(-2.5 * math.log10(max(flux["g"], 1e-6) / flux["r"]))
        galaxy_colours.append(float(galaxy["mag_g"]) - float(galaxy["mag_r"]))
    assert np.median(measured) < np.median(galaxy_colours) - 0.15


@pytest.mark.skipif(not REAL.is_dir(), reason=f"real Clump Scout tables not found at {REAL}")
def test_box_statistics_inside_the_real_interquartile_ranges(sample):
    real = box_stats(read_boxes_csv(REAL / "clumpscout_boxes_train.csv"))
    n_galaxies = len(_rows(sample / "galaxies.csv"))
    sim = box_stats(read_boxes_csv(sample / "boxes.csv"), n_galaxies_total=n_galaxies)
    assert real.side_q25 <= sim.side_median <= real.side_q75
    assert real.boxes_per_galaxy_q25 <= sim.boxes_per_galaxy_mean <= real.boxes_per_galaxy_q75
    assert real.boxes_per_galaxy_q25 <= sim.boxes_per_galaxy_median <= real.boxes_per_galaxy_q75
    assert real.centre_distance_q25 <= sim.centre_distance_median <= real.centre_distance_q75
    assert abs(sim.label_fractions.get(2, 0.0) - real.label_fractions[2]) < 0.08
    assert abs(sim.boxes_per_galaxy_mean - real.boxes_per_galaxy_mean) < 0.3
    assert 0.02 <= sim.no_box_fraction <= 0.25  # negatives exist, as documented (10% drawn)


def test_rerun_into_the_same_folder_overwrites_cleanly(tmp_path):
    out = tmp_path / "ds"
    simulation.simulate_dataset(out, 3, seed=5, workers=1, progress=False)
    simulation.simulate_dataset(out, 2, seed=5, workers=1, progress=False)
    assert len(list((out / "images").iterdir())) == 2
    assert len(list((out / "fits").iterdir())) == 6
    assert len(_rows(out / "galaxies.csv")) == 2
    assert not [p for p in out.rglob(".*.tmp")]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"n": 0}, "--n"), ({"n": 2, "seed": -1}, "--seed"), ({"n": 2, "workers": 0}, "--workers")],
)
def test_bad_arguments_raise_clear_errors(tmp_path, kwargs, message):
    with pytest.raises(AstrodetInputError, match=message):
        simulation.simulate_dataset(tmp_path / "ds", **{"seed": 0, **kwargs}, progress=False)


def test_out_pointing_at_a_file_is_refused(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(AstrodetInputError, match="directory"):
        simulation.simulate_dataset(target, 1, seed=0, progress=False)


def test_cli_simulate_writes_the_dataset(tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["simulate", "--out", str(out), "--n", "2", "--seed", "9", "--workers", "1", "--no-progress"])
    assert code == 0
    assert len(_rows(out / "galaxies.csv")) == 2
    assert len(list((out / "images").glob("*.png"))) == 2
    assert len(list((out / "fits").glob("*.fits"))) == 6
    assert "simulated 2 galaxies" in capsys.readouterr().out


def test_cli_bad_n_exits_2_with_message(tmp_path, capsys):
    code = main(["simulate", "--out", str(tmp_path / "x"), "--n", "0", "--no-progress"])
    assert code == 2
    assert "--n" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
