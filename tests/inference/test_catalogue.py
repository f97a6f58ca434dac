"""The catalogue in each format: same columns, values and provenance read back; written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from astrodet.errors import AstrodetInputError
from astrodet.inference.catalogue import (
    build_table,
    detection_columns,
    read_catalogue,
    rejects_path,
    write_catalogue,
)
from astrodet.inference.runner import PredictOptions, run_predict
from tests.inference.fakes import PeakDetector

EXTENSIONS = (".fits", ".ecsv", ".csv", ".parquet")


def _same(a, b) -> None:
    assert a.colnames == b.colnames
    for name in a.colnames:
        if a[name].dtype.kind in "fc":
            assert np.array_equal(np.asarray(a[name]), np.asarray(b[name]), equal_nan=True), name
        else:
            assert [str(v) for v in a[name]] == [str(v) for v in b[name]], name


def test_every_format_round_trips_values_and_provenance(simulated: Path, tmp_path: Path) -> None:
    inputs = [str(simulated / "images"), str(simulated / "fits_cutout")]
    tables = {}
    for ext in EXTENSIONS:
        out = tmp_path / f"cat{ext}"
        options = PredictOptions(inputs, str(out), config="c.yaml", weights="", meta=str(simulated / "galaxies.csv"),
                                 progress=False)  # fmt: skip
        run_predict(PeakDetector(), options)
        tables[ext] = read_catalogue(out)
        assert rejects_path(out).read_text() == "file,reason,message\n"
        assert not Path(f"{out}.parts").exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left
    reference = tables[".ecsv"]
    assert len(reference) > 20
    assert {"flux_g", "flux_err_r", "mag_i"} <= set(reference.colnames)
    assert reference.meta["recipe"]["bands"] == ["i", "r", "g"]
    assert reference.meta["inputs"] == 12 and reference.meta["rejected"] == 0
    for ext, table in tables.items():
        _same(reference, table)
        assert set(table.meta) == set(reference.meta), ext
        for key in set(reference.meta) - {"created"}:
            assert table.meta[key] == reference.meta[key], (ext, key)
    pictures = reference[[not f.endswith(".fits") for f in reference["file"]]]
    assert np.isnan(pictures["flux_r"]).all() and np.isfinite(pictures["ra"]).all()


def test_empty_catalogues_keep_their_columns(tmp_path: Path) -> None:
    columns = detection_columns(("g",))
    for ext in EXTENSIONS:
        write_catalogue(build_table(columns, {}, {"inputs": 0}), tmp_path / f"e{ext}")
        table = read_catalogue(tmp_path / f"e{ext}")
        assert len(table) == 0 and table.colnames == [name for name, _ in columns]


def test_unknown_extension_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AstrodetInputError, match=r"use \.fits, \.ecsv, \.csv or \.parquet"):
        write_catalogue(build_table(detection_columns(()), {}, {}), tmp_path / "cat.txt")
