"""tools/clump_visibility.py: the Stripe 82 calibration galaxies against the tiny simulated sets, end to end."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

from tests.conftest import astrodet_cache_env, load_tool


def _tool() -> ModuleType:
    return load_tool("clump_visibility")


def test_calibration_galaxies_against_both_populations(
    shared_data: Path, tmp_path: Path, tiny_cache: Path, capsys
) -> None:
    out = tmp_path / "visibility"
    argv = ["--out", str(out), "--datasets", "tiny", "tiny_faint", "--limit", "40", "--null-draws", "2"]
    argv += ["--psf-px", "11.75"]  # the default set's training median (not built here: 3,000 galaxies)
    with astrodet_cache_env(tiny_cache):
        assert _tool().main([*argv, "--data", str(shared_data)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["target_psf_px"] == 11.75
    assert report["s82_cut"] == "alignment_z <= 3" and report["s82_galaxies"] == 24  # never the 21 trusted ones
    sets = report["sets"]
    assert sets["s82 null (disc)"]["n"] >= sets["s82 catalogued"]["n"] >= 100
    assert 0 < sets["s82 standing out"]["n"] < sets["s82 catalogued"]["n"]
    median = {name: entry["quantiles"]["step"][2] for name, entry in sets.items()}
    # what the real-sky population is for: its labelled clumps are fainter in the picture than the default's,
    # and real catalogued clumps stand out from their disc less than either
    assert median["s82 catalogued"] < median["simulated tiny_faint"] < median["simulated tiny"]
    assert abs(median["s82 null (disc)"]) < 0.02
    assert "| simulated tiny_faint |" in (out / "report.md").read_text()
    assert "wrote" in capsys.readouterr().out


def test_bad_cut_is_a_clear_error(shared_data: Path, tmp_path: Path, capsys) -> None:
    argv = ["--out", str(tmp_path / "x"), "--datasets", "--s82-cut", "alignment_z > 99", "--data", str(shared_data)]
    argv += ["--psf-px", "11.75"]
    assert _tool().main(argv) == 2
    assert "clump_visibility:" in capsys.readouterr().err
    assert not (tmp_path / "x" / "report.json").exists()
