"""The simulator's source populations: the real-sky one (``faint``) against the default (``clump_scout``)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from astrodet.cli import main
from astrodet.data import simulation
from astrodet.data.default import SIMULATED
from astrodet.data.simulation.galaxy import Galaxy
from astrodet.data.simulation.population import POPULATIONS, population
from astrodet.data.simulation.sources import nucleus
from astrodet.errors import AstrodetInputError

N = 24
SEED = 5
FAINT = POPULATIONS["faint"]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    """The same seed simulated with the default population and with the real-sky one."""
    root = tmp_path_factory.mktemp("populations")
    kwargs = {"workers": 1, "progress": False, "write_fits": False}
    simulation.simulate_dataset(root / "default", N, SEED, **kwargs)
    simulation.simulate_dataset(root / "faint", N, SEED, source_population="faint", **kwargs)
    return root / "default", root / "faint"


def test_same_galaxies_other_sources(pair):
    """A population changes the sources and the picture, never the galaxy's own parameters."""
    default, faint = (_rows(folder / "galaxies.csv") for folder in pair)
    fixed = ("local_ids", "pixel_scale", "psf_fwhm_arcsec", "disk_scale_px", "mag_r", "axis_ratio", "arm_amplitude")
    assert [[g[c] for c in fixed] for g in default] == [[g[c] for c in fixed] for g in faint]
    assert (pair[0] / "clumps.csv").read_bytes() != (pair[1] / "clumps.csv").read_bytes()  # fluxes, sizes
    image = f"images/{default[0]['local_ids']}.png"
    assert (pair[0] / image).read_bytes() != (pair[1] / image).read_bytes()


def test_faint_population_labels_clumps_below_the_default_floors(pair):
    """Every labelled source clears the population's own floors; many would be unlabelled by the default's."""
    clumps = [c for c in _rows(pair[1] / "clumps.csv") if c["kind"] == "sf_clump"]
    contrast = np.array([float(c["contrast"]) for c in clumps])
    snr = np.array([float(c["snr"]) for c in clumps])
    assert len(clumps) >= 20
    assert (contrast >= FAINT.min_contrast).all() and (snr >= FAINT.min_snr).all()
    below_default = (contrast < simulation.MIN_CONTRAST) | (snr < simulation.MIN_SNR)
    assert below_default.mean() > 0.5
    default = [c for c in _rows(pair[0] / "clumps.csv") if c["kind"] == "sf_clump"]
    assert all(float(c["contrast"]) >= simulation.MIN_CONTRAST for c in default)


def test_faint_population_stretches_each_picture_and_records_itself(pair):
    stretches = [Galaxy(SEED, i, simulation.NEGATIVE_FRACTION, source_population="faint").stretch for i in range(N)]
    assert all(FAINT.stretch[0] <= s <= FAINT.stretch[1] for s in stretches) and np.std(stretches) > 0.3
    assert Galaxy(SEED, 0, simulation.NEGATIVE_FRACTION).stretch == 7.0  # the default's fixed stretch
    faint_config = json.loads((pair[1] / "simulation.json").read_text())
    assert faint_config["population"]["name"] == "faint"
    assert (faint_config["min_contrast"], faint_config["min_snr"]) == (FAINT.min_contrast, FAINT.min_snr)
    assert "population" not in json.loads((pair[0] / "simulation.json").read_text())


def test_nucleus_is_unlabelled_central_and_only_in_the_faint_population():
    cores = [nucleus(Galaxy(SEED, i, simulation.NEGATIVE_FRACTION, source_population="faint")) for i in range(40)]
    found = [c for c in cores if c is not None]
    assert 0.35 < len(found) / len(cores) < 0.85  # nucleus_fraction 0.6
    assert all(c.label == 0 and (c.u, c.v) == (0.0, 0.0) and c.kind == "nucleus" for c in found)
    assert all(nucleus(Galaxy(SEED, i, simulation.NEGATIVE_FRACTION)) is None for i in range(10))


def test_nucleus_brightens_the_centre_of_the_rendered_galaxy():
    """The rendered pixels hold the nucleus (over the smooth galaxy), and no box sits on the centre."""
    def fresh(i: int) -> Galaxy:
        return Galaxy(SEED, i, simulation.NEGATIVE_FRACTION, source_population="faint")

    index = next(i for i in range(40) if nucleus(fresh(i)) is not None)
    core = nucleus(fresh(index))  # the draw render() makes: its stream is used by the nucleus only
    galaxy = fresh(index)
    noisy, _, row = galaxy.render()
    cx, cy = round(galaxy.cx), round(galaxy.cy)
    window = (slice(cy - 1, cy + 2), slice(cx - 1, cx + 2))
    excess = sum(float(noisy[b][window].sum() - galaxy.convolved[b][window].sum()) for b in "gri")
    noise = 3.0 * np.sqrt(sum(9 * galaxy.pixel_variance(b, float(galaxy.convolved[b][window].mean())) for b in "gri"))
    assert excess > 0.2 * sum(core.fluxes[b] for b in "gri") - noise  # >= 20 % of a PSF-sized source in 3x3 px
    assert excess > noise
    rendered = simulation.simulate_galaxy(SEED, index, source_population="faint")
    assert rendered["galaxy"] == row
    for box in rendered["boxes"]:
        x = (float(box["x1"]) + float(box["x2"])) / 2 + 100
        y = (float(box["y1"]) + float(box["y2"])) / 2 + 100
        assert np.hypot(x - 200, y - 200) > float(row["box_side_px"])


def test_unknown_population_is_refused_by_name(tmp_path, capsys):
    with pytest.raises(AstrodetInputError, match="--population: expected one of clump_scout, faint, got 'deep'"):
        population("deep")
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--out", str(tmp_path / "x"), "--n", "1", "--population", "deep"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'deep'" in capsys.readouterr().err


def test_cli_population_faint(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["simulate", "--out", str(out), "--n", "3", "--seed", "2", "--no-fits", "--no-progress",
                 "--workers", "1", "--population", "faint"]) == 0  # fmt: skip
    assert json.loads((out / "simulation.json").read_text())["population"]["name"] == "faint"
    assert "simulated 3 galaxies" in capsys.readouterr().out


def test_named_faint_sets_are_the_default_galaxies_with_their_own_key():
    faint, default = SIMULATED["faint"], SIMULATED["default"]
    assert (faint.n_galaxies, faint.seed, faint.population) == (default.n_galaxies, default.seed, "faint")
    assert faint.key() != default.key() and SIMULATED["tiny_faint"].key() != SIMULATED["tiny"].key()
