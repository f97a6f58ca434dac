"""Every shell and Python block in README.md and docs/*.md runs as written, and a block that breaks fails the suite.

Each block runs as a user pastes it into a fresh shell after the two set-up commands (``make install``, then
``source .venv/bin/activate``): with the virtual environment activated, in a scratch checkout (a temporary folder
whose entries link to this checkout's, beside a link to ``../shared``), so the files a command creates (``output/``,
``data/``, ``sim/``, ``work_dirs/``) land in the scratch folder and every run starts clean. Training is capped at
:data:`MAX_ITER` iterations through ``$ASTRODET_MAX_ITER`` (both training tools read it and say when it caps); the
embedded default dataset comes from ``$ASTRODET_CACHE`` as for any user (built on first use, then reused).

Blocks are read with pytest-codeblocks' parser, so its HTML-comment markers above a block apply:

- ``<!--pytest.mark.skip(reason="...")-->``: an illustrative block (a GPU, the internet, a placeholder path, or a
  command that would run this suite); the reason says why, and is also said in the prose;
- ``<!--pytest-codeblocks:cont-->``: the block continues the previous one (one test, one shell: later commands
  use the earlier ones' outputs);
- any other ``<!--pytest.mark.NAME(...)-->``. Blocks that train are marked ``slow`` automatically.

Why not pytest-codeblocks' own runner: it runs shell blocks in pytest's folder (outputs would land in the checkout,
and a second run would meet the first one's), without the activated environment or the cap, reports a failure
without the command's output, and collects only with ``--codeblocks`` and Markdown paths on the command line, which
``make test`` does not pass.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_codeblocks  # the dev extra installs it: a missing parser must fail, not skip the docs

from tests.conftest import REPO, SHARED_DATA

DOCS = (REPO / "README.md", *sorted((REPO / "docs").glob("*.md")))
RUN = {"bash", "sh", "python"}  # sh blocks run in bash too, as a user's shell would
# Fenced blocks that are not commands say what they are: output, a folder tree, a data layout, a diagram.
NOT_RUN = {"text", "console", "yaml", "json", "toml", "ini", "diff"}
MAX_ITER = "2"
TRAINS = re.compile(r"train_net\.py|train_mmdet\.py|make demo|\$TOOLS/train\.py|torch\.distributed\.run")
# What doc commands create in the checkout: never linked into a scratch checkout, and ignored by git.
OUTPUTS = ("output", "work_dirs", "data", "sim", ".dist_test")
BLOCK_TIMEOUT_S = 900


def _blocks() -> Iterator[object]:
    for doc in DOCS:
        for block in pytest_codeblocks.extract_from_file(doc):
            if block.syntax in RUN:  # markers are evaluated as pytest-codeblocks does: they come from our docs
                marks = [eval(mark, {"pytest": pytest, "sys": sys}) for mark in block.marks]
                if TRAINS.search(block.code):
                    marks.append(pytest.mark.slow)
                name = f"{doc.relative_to(REPO)}:{block.lineno}"
                yield pytest.param(block.syntax, block.code, id=name, marks=marks)


def _scratch_checkout(root: Path) -> Path:
    """A folder that looks like this checkout to a command (its entries are links) with nothing the docs create."""
    checkout = root / "checkout"
    checkout.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in OUTPUTS and entry.name != ".git":
            (checkout / entry.name).symlink_to(entry)
    if SHARED_DATA.is_dir():  # the docs name the sample data ../shared/data, as it lies beside a checkout
        (root / "shared").mkdir()
        (root / "shared" / "data").symlink_to(SHARED_DATA)
    return checkout


def _install_stamp_is_current() -> bool:
    """scripts/install.sh reinstalls astrodet (editable, from where it runs) when pyproject.toml changed since the
    last install; from a scratch checkout that would point the venv at a folder about to be deleted."""
    stamp = REPO / ".venv" / ".astrodet-pyproject.sha256"
    digest = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()
    return stamp.is_file() and stamp.read_text().strip() == digest


@pytest.mark.parametrize(("syntax", "code"), list(_blocks()))
def test_doc_block_runs_as_written(syntax: str, code: str, tmp_path: Path) -> None:
    if "../shared/data" in code and not SHARED_DATA.is_dir():
        pytest.skip(f"the block uses ../shared/data, not found at {SHARED_DATA}")
    if re.search(r"\bmake\b", code) and not _install_stamp_is_current():
        pytest.fail("run `make install` in the checkout first: its install stamp is older than pyproject.toml")
    checkout = _scratch_checkout(tmp_path)
    block = checkout / ("doc_block.py" if syntax == "python" else "doc_block.sh")
    block.write_text(code)
    run = "python doc_block.py" if syntax == "python" else "source doc_block.sh"
    script = f"set -eo pipefail\nsource .venv/bin/activate\n{run}\n"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    env.setdefault("ASTRODET_MAX_ITER", MAX_ITER)
    result = subprocess.run(
        ["bash", "-c", script], cwd=checkout, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S
    )
    assert result.returncode == 0, (
        f"exit {result.returncode}\n--- block ---\n{code}--- stdout (end) ---\n{result.stdout[-4000:]}\n"
        f"--- stderr (end) ---\n{result.stderr[-4000:]}"
    )


def test_every_fenced_block_says_whether_it_runs() -> None:
    """A block without a language would be skipped silently; one that does not run names what it is (text, ...)."""
    unnamed = [
        f"{doc.relative_to(REPO)}:{block.lineno}"
        for doc in DOCS
        for block in pytest_codeblocks.extract_from_file(doc)
        if block.syntax not in RUN and block.syntax not in NOT_RUN
    ]
    assert not unnamed, f"fenced blocks with no language or an unknown one: {unnamed}"


def test_what_doc_commands_create_is_ignored_by_git() -> None:
    ignored = {line.strip().strip("/") for line in (REPO / ".gitignore").read_text().splitlines()}
    assert set(OUTPUTS) <= ignored, f"add to .gitignore: {sorted(set(OUTPUTS) - ignored)}"
