"""What a conversion may write: never over an input, never a file the user cannot find when the folder is read-only,
and a set of outputs that switches as one unit (reruns, older outputs, leftovers of killed runs).

Promises of docs/reliability.md ("Outputs never destroy inputs", "Atomic outputs").
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from astrodet import cli
from astrodet.data.coco import load_coco
from astrodet.errors import AstrodetInputError
from tests.data.test_clumps_rejects import clumps_case
from tests.data.test_field import field_case
from tests.reliability.inputs import MAKERS, Case, clumpscout_case, galaxyzoo_case

MAKERS = {**MAKERS, "field": field_case, "clumps": clumps_case}
CONVERTERS = sorted(MAKERS)


def _case(tmp_path: Path, name: str) -> Case:
    folder = tmp_path / "in"
    folder.mkdir()
    return MAKERS[name](folder)


def _snapshot(paths: list[Path]) -> dict[Path, bytes]:
    """The bytes of every file under the given paths (a folder: each file in it)."""
    out = {}
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        out.update({p: p.read_bytes() for p in files})
    return out


def _refused(case: Case, out: Path, message: list[str], **extra) -> None:
    """The run is refused before anything is written, the message names every path given, and no input changed."""
    before = _snapshot(list(case.inputs.values()))
    with pytest.raises(AstrodetInputError) as caught:
        case.run(out, **extra)
    text = str(caught.value)
    assert "\n" not in text
    for part in message:
        assert part in text, f"{part!r} not in {text!r}"
    assert _snapshot(list(case.inputs.values())) == before


@pytest.mark.parametrize("converter", CONVERTERS)
def test_an_output_that_is_an_input_is_refused_for_every_input_of_every_converter(tmp_path, converter) -> None:
    case = _case(tmp_path, converter)
    for name, given in case.inputs.items():
        if given.is_dir():
            continue
        _refused(case, tmp_path / "o.json", [str(given), "would overwrite the input"], rejects_csv=given)
        _refused(case, given, [str(given), "would overwrite the input"])  # --out naming the input itself
        link = tmp_path / f"link_to_{name}.csv"
        link.symlink_to(given)
        _refused(case, tmp_path / "o.json", [str(link), str(given)], rejects_csv=link)
        hard = tmp_path / f"o_{name}.json"
        os.link(given, hard)
        _refused(case, tmp_path / "o.json", [str(hard), str(given)], split={name: 0.5, "other": 0.5})
    assert not (tmp_path / "o.json").exists() and not (tmp_path / ".o.astrodet").exists()


@pytest.mark.parametrize("converter", ["clumpscout", "galaxyzoo", "catalog"])
def test_an_images_folder_that_is_an_input_folder_is_refused(tmp_path, converter) -> None:
    case = _case(tmp_path, converter)
    (folder,) = [p for p in case.inputs.values() if p.is_dir()]
    same = folder.parent / f"{folder.name}.json"  # its images folder is <stem>_images: point that at the input
    (folder.parent / f"{folder.name}_images").symlink_to(folder)
    _refused(case, same, [str(folder), "images folder"])
    inside = tmp_path / "o_images"  # an input inside the images folder a run replaces
    inside.mkdir()
    moved = inside / case.source.name
    os.link(case.source, moved)
    case.source = moved
    _refused(case, tmp_path / "o.json", [str(moved), "images folder"])


def test_an_out_that_is_not_json_or_is_a_folder_and_clashing_outputs_are_refused(tmp_path) -> None:
    case = clumpscout_case(tmp_path)
    with pytest.raises(AstrodetInputError, match=r"--out .*o\.csv: the COCO output must be a path ending in \.json"):
        case.run(tmp_path / "o.csv")
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(AstrodetInputError, match=r"--out .*folder\.json is a folder"):
        case.run(tmp_path / "folder.json")
    with pytest.raises(AstrodetInputError, match=r"--rejects .*o\.json is also --out .*o\.json"):
        case.run(tmp_path / "o.json", rejects_csv=tmp_path / "o.json")
    assert not (tmp_path / "o.json").exists()


def test_reconverting_from_an_earlier_runs_images_into_the_same_out_is_refused(tmp_path) -> None:
    case = galaxyzoo_case(tmp_path)
    case.run(tmp_path / "o.json")  # writes o_images/ (40 px crops)
    crops = tmp_path / "o_images"
    table = tmp_path / "crops.csv"
    table.write_text("galaxy_id,label,file\n" + "".join(f"{i},spiral,{i}.png\n" for i in range(3)))
    with pytest.raises(AstrodetInputError, match=r"earlier run of --out .*o\.json"):
        case.convert(table, tmp_path / "o.json", images_dir=crops)  # the run would remove the crops it reads
    assert len(list(crops.iterdir())) == 8


def _deny_writes_in(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``folder`` read-only: chmod for a normal user; for root (whom permissions do not stop) the calls that
    create entries there fail as the kernel would fail them."""
    os.chmod(folder, 0o555)
    if os.geteuid() != 0:
        return
    folder = folder.resolve()

    def denied(path) -> bool:
        return Path(os.path.abspath(path)).parent == folder and not os.path.lexists(path)

    def guard(real, *where):
        def call(*args, **kwargs):
            for i in where:
                if i < len(args) and isinstance(args[i], str | os.PathLike) and denied(args[i]):
                    raise PermissionError(errno.EACCES, "Permission denied", str(args[i]))
            return real(*args, **kwargs)

        return call

    real_open = os.open

    def open_(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and denied(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "mkdir", guard(os.mkdir, 0))
    monkeypatch.setattr(os, "symlink", guard(os.symlink, 1))
    monkeypatch.setattr(os, "link", guard(os.link, 1))
    monkeypatch.setattr(os, "replace", guard(os.replace, 1))
    monkeypatch.setattr(os, "rename", guard(os.rename, 1))


def test_a_read_only_output_folder_is_one_message_naming_the_users_folder(tmp_path, monkeypatch, capsys) -> None:
    case = clumpscout_case(tmp_path)
    read_only = tmp_path / "ro"
    read_only.mkdir()
    _deny_writes_in(read_only, monkeypatch)
    try:
        argv = ["convert", "clumpscout", "--boxes", str(case.source), "--images", str(case.options["images_dir"])]
        assert cli.main([*argv, "--out", str(read_only / "o.json")]) == 2
    finally:
        os.chmod(read_only, 0o755)
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(read_only) in err and "Permission denied" in err, err
    assert ".tmp" not in err and ".astrodet" not in err
    assert list(read_only.iterdir()) == []


def _visible(folder: Path) -> dict[str, bytes | dict[str, bytes]]:
    """What a reader sees in a folder: each non-hidden name's bytes (a folder: its files), links followed."""
    seen: dict[str, bytes | dict[str, bytes]] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.exists():
            continue
        seen[path.name] = {p.name: p.read_bytes() for p in path.iterdir()} if path.is_dir() else path.read_bytes()
    return seen


def test_a_rerun_switches_every_output_and_removes_what_it_no_longer_writes(tmp_path) -> None:
    case = clumpscout_case(tmp_path)
    out = tmp_path / "ds" / "c.json"
    case.run(out, split="train=0.5,val=0.25,test=0.25")
    assert sorted(_visible(out.parent)) == ["c_images", "c_rejects.csv", "c_test.json", "c_train.json", "c_val.json"]
    summary = case.run(out, seed=5)  # one file now, no split
    assert sorted(_visible(out.parent)) == ["c.json", "c_images", "c_rejects.csv"]
    assert sorted(p.name for p in out.parent.iterdir() if p.is_symlink()) == sorted(_visible(out.parent))
    hidden = sorted(p.name for p in out.parent.iterdir() if p.name.startswith("."))
    assert hidden == [".c.astrodet", ".c.astrodet-g2-c.json", ".c.astrodet-g2-c_images", ".c.astrodet-g2-c_rejects.csv"]
    # a reader that resolves links (MMDetection's data_root) lands beside the visible names: relative paths hold
    resolved = summary.outputs["all"].resolve()
    assert resolved.parent == out.parent.resolve()
    for image in load_coco(resolved)["images"]:
        assert (resolved.parent / image["file_name"]).is_file()


def test_outputs_an_earlier_version_wrote_as_plain_files_are_taken_over(tmp_path) -> None:
    case = clumpscout_case(tmp_path)
    out = tmp_path / "c.json"
    (tmp_path / "c_images").mkdir()
    (tmp_path / "c_images" / "g0.png").write_bytes(b"old crop")
    (tmp_path / "c_train.json").write_text("{}")
    (tmp_path / ".c_train.json.abcd1234.tmp").write_text("left by a killed run of an earlier version")
    case.run(out, split="train=0.5,val=0.5")
    seen = _visible(tmp_path)
    assert sorted(seen) == ["boxes.csv", "c_images", "c_rejects.csv", "c_train.json", "c_val.json", "pngs"]
    assert json.loads(seen["c_train.json"])["images"] and seen["c_images"]["g0.png"] != b"old crop"
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_rejects_report_in_another_folder_switches_with_the_rest(tmp_path) -> None:
    case = clumpscout_case(tmp_path)
    report = tmp_path / "reports" / "new" / "r.csv"  # a folder that is not there yet
    case.run(tmp_path / "o.json", rejects_csv=report)
    assert report.is_symlink() and report.read_text().startswith("file,row,reason,message")
    case.run(tmp_path / "o.json")  # the report moves back beside the output: the old link goes
    assert not os.path.lexists(report) and (tmp_path / "o_rejects.csv").is_file()
    assert list(report.parent.iterdir()) == []
