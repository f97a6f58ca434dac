"""tools/compare_real_sky.py: two run folders laid out as tools/real_sky.py writes them, on the real Stripe 82 truth
(catalogues made from the truth itself, so every number is known), and its refusals."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
from astropy.table import Table

from astrodet.cli import main as astrodet_main
from tests.conftest import load_tool


def _tool() -> ModuleType:
    return load_tool("compare_real_sky")


def _run_folder(root: Path, truth: Path, keep_every: int, psf_px: float = 11.75) -> Path:
    """A run whose catalogues hold every ``keep_every``-th catalogued clump exactly (score 0.9)."""
    (root / "truth" / "s82_trusted").mkdir(parents=True)
    (root / "report.json").write_text(json.dumps({"model": {"training_psf_px": psf_px, "input_size": 200}}))
    coco = json.loads(truth.read_text())
    files = {i["id"]: str((truth.parent / i["file_name"]).resolve()) for i in coco["images"]}
    for image in coco["images"]:  # the copy lies elsewhere: its images by absolute path
        image["file_name"] = files[image["id"]]
    (root / "truth" / "s82_trusted" / "clumps.json").write_text(json.dumps(coco))
    rows = [a for k, a in enumerate(coco["annotations"]) if k % keep_every == 0]
    x, y, w, h = (list(v) for v in zip(*(a["bbox"] for a in rows), strict=True))
    table = Table(
        {
            "file": [files[a["image_id"]] for a in rows],
            "class_name": ["clump"] * len(rows),
            "score": [0.9] * len(rows),
            "x_min": x,
            "y_min": y,
            "x_max": [a + b for a, b in zip(x, w, strict=True)],
            "y_max": [a + b for a, b in zip(y, h, strict=True)],
            "ra": [a["clump_ra"] for a in rows],
            "dec": [a["clump_dec"] for a in rows],
        }
    )
    (root / "catalogues").mkdir()
    table.write(root / "catalogues" / "s82.ecsv", format="ascii.ecsv")
    table.write(root / "catalogues" / "s82_clump.ecsv", format="ascii.ecsv")
    return root


@pytest.fixture(scope="module")
def trusted_truth(shared_data: Path, tmp_path_factory) -> Path:
    folder = shared_data / "s82_clumps_dev"
    out = tmp_path_factory.mktemp("truth") / "clumps.json"
    argv = ["convert", "clumps", "--clumps", str(folder / "clumps.csv"), "--images", str(folder / "images")]
    argv += ["--galaxies", str(folder / "galaxies.csv"), "--scale-col", "pixel_scale_fitted"]
    argv += ["--pattern", "objID{id:020d}.jpg", "--out", str(out), "--galaxy-cut", "alignment_z > 3"]
    assert astrodet_main(argv) == 0
    return out


def test_a_run_finding_every_clump_beats_one_finding_half(trusted_truth: Path, tmp_path: Path, capsys) -> None:
    before = _run_folder(tmp_path / "before", trusted_truth, keep_every=2)
    after = _run_folder(tmp_path / "after", trusted_truth, keep_every=1)
    argv = ["--before", str(before), "--after", str(after), "--out", str(tmp_path / "cmp"), "--bootstrap", "200"]
    assert _tool().main(argv) == 0
    report = json.loads((tmp_path / "cmp" / "report.json").read_text())
    kinds = [("any", "IoU 0.5"), ("any", 'sky 1"'), ("clump only", "IoU 0.5"), ("clump only", 'sky 1"')]
    assert [(r["class"], r["match"]) for r in report["rows"]] == kinds * 2
    assert [r["clumps"] for r in report["rows"]] == ["all"] * 4 + ["standing out"] * 4
    n_true = len(json.loads(trusted_truth.read_text())["annotations"])
    assert report["n_clumps"] == n_true and 0 < report["n_standing_out"] < n_true / 2  # most do not stand out
    for row in report["rows"][4:]:  # the standing-out clumps: the perfect catalogue finds them all
        assert row["completeness"]["after"] == 1.0 and 0 < row["completeness"]["before"] < 1
    for row in report["rows"][:4]:
        assert row["n_images"] == 21
        comp = row["completeness"]
        assert comp["after"] == 1.0 and comp["before"] == pytest.approx(((n_true + 1) // 2) / n_true)
        assert comp["interval"][0] > 0 and comp["share_not_better"] == 0.0
        assert row["purity"]["before"] == row["purity"]["after"] == 1.0
    assert "| all | any | IoU 0.5 | completeness | 0.50" in (tmp_path / "cmp" / "report.md").read_text()
    assert "paired" in capsys.readouterr().out


def test_runs_on_different_galaxies_or_not_runs_are_refused(trusted_truth: Path, tmp_path: Path, capsys) -> None:
    before = _run_folder(tmp_path / "before", trusted_truth, keep_every=1)
    other = _run_folder(tmp_path / "other", trusted_truth, keep_every=1)
    coco = json.loads(trusted_truth.read_text())
    coco["images"] = coco["images"][:2]
    (other / "truth" / "s82_trusted" / "clumps.json").write_text(json.dumps(coco))
    tool = _tool()
    assert tool.main(["--before", str(before), "--after", str(other), "--out", str(tmp_path / "x")]) == 2
    assert "scored different Stripe 82 galaxies" in capsys.readouterr().err
    assert tool.main(["--before", str(before), "--after", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "no truth/s82_trusted/clumps.json" in capsys.readouterr().err
    coarse = _run_folder(tmp_path / "coarse", trusted_truth, keep_every=1, psf_px=8.0)
    assert tool.main(["--before", str(before), "--after", str(coarse), "--out", str(tmp_path / "x")]) == 2
    assert "different scales" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
