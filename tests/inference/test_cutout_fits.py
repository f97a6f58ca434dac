"""The simulator's --cutout-fits option: extra files only; every other output keeps its bytes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from astropy.io import fits

from astrodet import cli
from astrodet.data.simulation import simulate_dataset


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_cutout_fits_are_extra_files_and_leave_the_rest_unchanged(tmp_path: Path) -> None:
    simulate_dataset(tmp_path / "plain", 3, 9, workers=1, progress=False)
    assert cli.main(["simulate", "--out", str(tmp_path / "more"), "--n", "3", "--seed", "9", "--workers", "2",
                     "--no-progress", "--cutout-fits"]) == 0  # fmt: skip
    plain, more = _digests(tmp_path / "plain"), _digests(tmp_path / "more")
    extra = {k for k in more if k.startswith("fits_cutout/")}
    assert len(extra) == 9 and set(more) - extra == set(plain)
    assert {k: v for k, v in more.items() if k not in extra and k != "simulation.json"} == {
        k: v for k, v in plain.items() if k != "simulation.json"
    }
    config = json.loads((tmp_path / "more" / "simulation.json").read_text())
    assert config["write_cutout_fits"] is True and "write_cutout_fits" not in json.loads(
        (tmp_path / "plain" / "simulation.json").read_text()
    )
    header = fits.getheader(tmp_path / "more" / sorted(extra)[0])
    assert header["BUNIT"] == "nanomaggy/arcsec2" and header["NAXIS1"] == 400 and header["CTYPE1"] == "RA---TAN"
