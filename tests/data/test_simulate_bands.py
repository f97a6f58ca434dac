"""The simulator's optional u and z bands: g, r, i outputs unchanged, u and z with SDSS-like PSF, noise and colours."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from astrodet.cli import main
from astrodet.data import simulation
from astrodet.errors import AstrodetInputError

N = 4
SEED = 21


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same seed simulated in g, r, i (the default) and in u, g, r, i, z."""
    root = tmp_path_factory.mktemp("bands")
    simulation.simulate_dataset(root / "gri", N, SEED, workers=1, progress=False, write_cutout_fits=True)
    simulation.simulate_dataset(
        root / "ugriz", N, SEED, workers=2, progress=False, write_cutout_fits=True, bands="ugriz"
    )
    return root / "gri", root / "ugriz"


def test_g_r_i_outputs_are_the_same_bytes_with_u_and_z(pair) -> None:
    gri, ugriz = _files(pair[0]), _files(pair[1])
    extra = {name for name in ugriz if name.endswith(("_u.fits", "_z.fits"))}
    assert len(extra) == 2 * 2 * N  # u and z, native and cutout frame
    assert set(ugriz) - extra == set(gri)
    tables = {"clumps.csv", "galaxies.csv", "simulation.json"}
    assert {name: gri[name] for name in gri if name not in tables} == {
        name: ugriz[name] for name in gri if name not in tables
    }  # every PNG, every g, r, i FITS and boxes.csv
    for table, added in (("clumps.csv", ["flux_u", "flux_z"]), ("galaxies.csv", ["mag_u", "mag_z"])):
        three, five = _rows(pair[0] / table), _rows(pair[1] / table)
        assert five[0] == three[0] + added
        assert [row[: len(three[0])] for row in five] == three  # same galaxies, same values; u, z appended
    config = json.loads(gri["simulation.json"]), json.loads(ugriz["simulation.json"])
    assert config[0]["bands"] == ["g", "r", "i"] and config[1]["bands"] == ["u", "g", "r", "i", "z"]
    assert {k: v for k, v in config[0].items() if k != "bands"} == {k: v for k, v in config[1].items() if k != "bands"}


def test_u_and_z_have_sdss_like_psf_and_noise(pair) -> None:
    folder = pair[1]
    local_id = _rows(folder / "galaxies.csv")[1][0]
    headers = {b: fits.getheader(folder / "fits" / f"{local_id}_{b}.fits") for b in "ugriz"}
    fwhm = [headers[b]["PSFFWHM"] for b in "ugriz"]
    assert fwhm == sorted(fwhm, reverse=True)  # seeing improves with wavelength: u broadest, z sharpest
    assert headers["u"]["GAIN"] < headers["i"]["GAIN"] / 3 and headers["z"]["GAIN"] < headers["i"]["GAIN"] / 3
    noise = {}
    for band in "ugriz":
        data = fits.getdata(folder / "fits" / f"{local_id}_{band}.fits").astype(float)
        noise[band] = np.median(np.abs(np.diff(np.concatenate([data[:15], data[-15:]]), axis=1)))  # corners: sky
    assert noise["u"] > 2 * noise["g"] and noise["z"] > 3 * noise["i"]  # much noisier, as SDSS's u and z


def test_star_forming_clumps_are_bright_in_u_and_bulges_red(tmp_path) -> None:
    out = tmp_path / "colours"
    simulation.simulate_dataset(out, 24, 3, workers=1, progress=False, write_fits=False, bands="ugriz")
    with (out / "clumps.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    u_g = {kind: [] for kind in ("sf_clump", "red_compact", "star")}
    for row in rows:
        u_g[row["kind"]].append(-2.5 * np.log10(float(row["flux_u"]) / float(row["flux_g"])))
    assert u_g["sf_clump"] and u_g["red_compact"]
    assert max(u_g["sf_clump"]) < 1.25 < min(u_g["red_compact"])
    with (out / "galaxies.csv").open(newline="") as handle:
        galaxies = list(csv.DictReader(handle))
    colours = [float(g["mag_u"]) - float(g["mag_g"]) for g in galaxies]
    assert 0.9 < np.median(colours) < 2.0  # SDSS disk galaxies: u-g ~1.0-1.8


def test_u_does_not_depend_on_whether_z_is_simulated(tmp_path) -> None:
    simulation.simulate_dataset(tmp_path / "ugri", 2, 5, workers=1, progress=False, bands=["u", "g", "r", "i"])
    simulation.simulate_dataset(tmp_path / "ugriz", 2, 5, workers=1, progress=False, bands="ugriz")
    u_files = sorted((tmp_path / "ugri" / "fits").glob("*_u.fits"))
    assert len(u_files) == 2 and not list((tmp_path / "ugri" / "fits").glob("*_z.fits"))
    for path in u_files:
        assert path.read_bytes() == (tmp_path / "ugriz" / "fits" / path.name).read_bytes()


def test_simulate_galaxy_in_memory_has_every_band() -> None:
    galaxy = simulation.simulate_galaxy(2, 0, bands="ugriz")
    assert list(galaxy["images"]) == ["u", "g", "r", "i", "z"]
    plain = simulation.simulate_galaxy(2, 0)
    assert list(plain["images"]) == ["g", "r", "i"]
    assert all(np.array_equal(plain["images"][b], galaxy["images"][b]) for b in "gri")
    assert np.array_equal(plain["png"], galaxy["png"]) and plain["boxes"] == galaxy["boxes"]


@pytest.mark.parametrize(
    ("bands", "message"),
    [("ugrizy", "unknown band 'y'"), ("ugiz", r"missing \['r'\]"), ("ggri", "given twice")],
)
def test_bad_bands_are_refused_with_the_band_named(tmp_path, bands, message) -> None:
    with pytest.raises(AstrodetInputError, match=message):
        simulation.simulate_dataset(tmp_path / "ds", 1, 0, progress=False, bands=bands)
    assert not (tmp_path / "ds").exists()


def test_cli_bands_and_crop_cubes(tmp_path, capsys) -> None:
    out = tmp_path / "cli"
    argv = ["simulate", "--out", str(out), "--n", "2", "--seed", "4", "--workers", "1", "--no-progress", "--no-fits"]
    assert main([*argv, "--bands", "ugriz", "--crop-cubes"]) == 0
    cubes = sorted((out / "fits_crop").glob("*.fits"))
    assert len(cubes) == 2
    header = fits.getheader(cubes[0])
    assert (header["NAXIS1"], header["NAXIS2"], header["NAXIS3"]) == (200, 200, 5)
    assert [header[f"BAND{k}"] for k in range(1, 6)] == list("ugriz")
    assert json.loads((out / "simulation.json").read_text())["write_crop_cubes"] is True
    assert main([*argv, "--bands", "gry"]) == 2
    assert "unknown band 'y'" in capsys.readouterr().err
