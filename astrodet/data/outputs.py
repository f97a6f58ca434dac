"""One conversion's output files, published as one unit: after any interruption, ``kill -9`` included, the visible
files are the complete previous set or the complete new one, never a mix.

Why: a converter writes files that only make sense together (the COCO file of each split, the rejects report, the
folder of images the COCO files name), and Detectron2, MMDetection and pycocotools open the split files directly,
so no reader can check that a train file and the val file beside it came from the same run. No sequence of renames
replaces several files at once; one rename of one link can. So every visible output is a symbolic link through one
switch (``D/S.json`` is the output, ``S`` its stem)::

    D/S_train.json -> .S.astrodet/current/S_train.json        made once, kept across runs
    D/.S.astrodet/current -> g7                                the switch
    D/.S.astrodet/g7/S_train.json -> ../../.S.astrodet-g7-S_train.json
    D/.S.astrodet-g7-S_train.json                              the content: a hidden sibling of the visible name
    D/.S.astrodet/g7.json                                      the manifest: generation 7's visible outputs

A run stages generation 8 in full (contents fsynced, manifest last), then renames a new ``current`` over the old
one: before that rename every visible name shows generation 7, after it generation 8. It then removes the links of
outputs generation 8 does not have, and generation 7's files. Contents sit beside the visible names, so a reader that
resolves the links (``Path.resolve``; MMDetection's ``data_root``) lands in the same folder and image paths relative
to the JSON still hold.

A run holds ``D/.S.astrodet/lock`` (:func:`astrodet.data.cache.exclusive`, released by the kernel when the process
dies) from start to end, so two runs on one output take turns, and at start it removes whatever a killed run left:
staged generations, temporary links, and the ``.<name>.*.tmp`` files of earlier astrodet versions. Outputs an
earlier version wrote as plain files are first taken into the current generation unchanged (hard links) and their
names turned into links, so they too switch at once; only a plain images folder has a moment, between two renames,
where its name is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from pathlib import Path
from types import TracebackType

from astrodet.data.cache import exclusive
from astrodet.errors import AstrodetInputError
from astrodet.io import atomic_write_json, clone, clone_tree, fsync_dir

CURRENT = "current"
LOCK = "lock"
ELSEWHERE = "@"  # key prefix of an output outside the unit's folder (e.g. a --rejects report in another folder)
_LEFTOVER_TMP = re.compile(r"\.[a-z0-9_]{8}\.tmp")  # what atomic_open's temporary files add to the name


def _remove(path: str | os.PathLike[str]) -> None:
    """Remove a file, link or folder if it is there."""
    with contextlib.suppress(FileNotFoundError):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


class OutputUnit:
    """The outputs of one run in ``folder`` under one stem, staged then published together (see the module doc).

    Use as a context manager: :meth:`staged` gives the path to write each output's content to, :meth:`publish`
    switches all of them at once; leaving the block without publishing removes what was staged.
    """

    def __init__(self, folder: Path, stem: str, what: str) -> None:
        self.folder = Path(os.path.abspath(folder))
        self.stem = stem
        self.what = what  # names the outputs in messages, e.g. "outputs of data/clumps.json"
        self.unit_dir = self.folder / f".{stem}.astrodet"
        self.prefix = f".{stem}.astrodet-g"  # contents: <prefix><generation>-<key>
        self.entries: dict[str, Path] = {}  # key -> visible path, of the generation being staged
        self.current: int | None = None
        self.generation = 0
        self.published = False
        self._stack = contextlib.ExitStack()

    # --- the run ---------------------------------------------------------------------------------------------

    def __enter__(self) -> OutputUnit:
        try:
            self.unit_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise AstrodetInputError(f"{self.what}: cannot write in {self.folder} ({err.strerror})") from None
        try:
            self._stack.enter_context(exclusive(self.unit_dir / LOCK, self.what))
        except TimeoutError as err:
            raise AstrodetInputError(str(err)) from None
        try:
            self.current = self._read_current()
            self._clean(keep=self.current)
        except BaseException:
            self._stack.close()
            raise
        self.generation = (self.current or 0) + 1
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            if not self.published:
                self._abort()
        finally:
            self._stack.close()
        if isinstance(error, OSError) and self._names_hidden_file(error):
            # the user's folder is read-only or full: say so for their path, not for a hidden staging file
            raise AstrodetInputError(f"{self.what}: cannot write in {self.folder} ({error.strerror})") from None

    def staged(self, visible: Path) -> Path:
        """Where to write the new content of the output ``visible`` (a file, or a folder the caller creates)."""
        visible = Path(os.path.abspath(visible))
        key = visible.name if visible.parent == self.folder else ELSEWHERE + visible.name
        self.entries[key] = visible
        return self._content(self.generation, key)

    def publish(self) -> None:
        """Switch every visible output to the staged generation at once (outputs never staged are left out)."""
        entries = {k: v for k, v in self.entries.items() if os.path.lexists(self._content(self.generation, k))}
        plain = {k: v for k, v in entries.items() if os.path.exists(v) and not self._is_ours(v, k)}
        if plain:
            self._adopt(plain)
        gen_dir = self._gen_dir(self.generation)
        gen_dir.mkdir()
        for key in entries:
            os.symlink(os.path.relpath(self._content(self.generation, key), gen_dir), gen_dir / key)
            if os.path.isdir(self._content(self.generation, key)):
                fsync_dir(self._content(self.generation, key))
        atomic_write_json(self._manifest(self.generation), {"outputs": {k: str(v) for k, v in entries.items()}})
        for key, visible in entries.items():
            if not self._is_ours(visible, key):
                self._link(visible, key)  # new names dangle until the switch: they show nothing old
        for folder in {self.folder, self.unit_dir, gen_dir, *(v.parent for v in entries.values())}:
            fsync_dir(folder)
        previous = self.current
        self._switch(self.generation)
        self.published = True
        with contextlib.suppress(OSError):  # the new set is in place; what is left here the next run removes
            self._retire(previous, entries)

    def owns(self, path: Path) -> bool:
        """Whether ``path`` (resolved) is inside this unit's hidden files: a run replaces and removes them."""
        resolved = path.resolve()
        folder = self.folder.resolve()
        for candidate in (resolved, *resolved.parents):
            if candidate.parent == folder:
                return candidate.name == self.unit_dir.name or candidate.name.startswith(self.prefix)
        return False

    # --- steps -----------------------------------------------------------------------------------------------

    def _content(self, generation: int, key: str) -> Path:
        return self.folder / f"{self.prefix}{generation}-{key}"

    def _gen_dir(self, generation: int) -> Path:
        return self.unit_dir / f"g{generation}"

    def _manifest(self, generation: int) -> Path:
        return self.unit_dir / f"g{generation}.json"

    def _target(self, visible: Path, key: str) -> str:
        """What the link at ``visible`` holds: the path through ``current``, relative to the link's folder."""
        return os.path.relpath(self.unit_dir / CURRENT / key, visible.parent)

    def _is_ours(self, visible: Path, key: str) -> bool:
        return os.path.islink(visible) and os.readlink(visible) == self._target(visible, key)

    def _read_current(self) -> int | None:
        try:
            name = os.readlink(self.unit_dir / CURRENT)
        except OSError:
            return None
        return int(name[1:]) if re.fullmatch(r"g\d+", name) else None

    def _link(self, visible: Path, key: str) -> None:
        """Point ``visible`` through ``current`` with one rename (a file or link there is replaced at once)."""
        if visible.parent == self.folder:
            temporary = self.unit_dir / f"link-{key}"
        else:  # a rename cannot cross file systems: make it in the link's own folder, under a name reruns reuse
            visible.parent.mkdir(parents=True, exist_ok=True)
            temporary = visible.parent / f".{visible.name}.astrodet-link"
        _remove(temporary)
        os.symlink(self._target(visible, key), temporary)
        os.replace(temporary, visible)

    def _switch(self, generation: int) -> None:
        temporary = self.unit_dir / f"{CURRENT}.new"
        _remove(temporary)
        os.symlink(f"g{generation}", temporary)
        os.replace(temporary, self.unit_dir / CURRENT)
        fsync_dir(self.unit_dir)
        self.current = generation

    def _adopt(self, plain: dict[str, Path]) -> None:
        """Take outputs an earlier version wrote as plain files into the current generation, unchanged, and make
        their names links: from then on they switch with the rest."""
        generation = self.current if self.current is not None else self.generation + 1
        gen_dir = self._gen_dir(generation)
        gen_dir.mkdir(exist_ok=True)
        outputs = self._read_manifest(generation)
        for key, visible in plain.items():
            content = self._content(generation, key)
            _remove(content)
            (clone_tree if visible.is_dir() else clone)(visible, content)
            _remove(gen_dir / key)
            os.symlink(os.path.relpath(content, gen_dir), gen_dir / key)
            outputs[key] = str(visible)
        atomic_write_json(self._manifest(generation), {"outputs": outputs})
        fsync_dir(self.folder)
        fsync_dir(gen_dir)
        if self.current is None:
            self._switch(generation)
        for key, visible in plain.items():
            if visible.is_dir() and not visible.is_symlink():
                os.rename(visible, self.unit_dir / f"plain-{key}")  # removed by the clean-up below
            self._link(visible, key)

    def _read_manifest(self, generation: int | None) -> dict[str, str]:
        if generation is None:
            return {}
        try:
            return dict(json.loads(self._manifest(generation).read_text(encoding="utf-8"))["outputs"])
        except (OSError, ValueError, KeyError, TypeError):
            return {}

    def _retire(self, previous: int | None, kept: dict[str, Path]) -> None:
        """After the switch: remove the links of outputs the new generation lacks, then the old generation."""
        for key, visible in self._read_manifest(previous).items():
            if key not in kept and self._is_ours(Path(visible), key):
                os.unlink(visible)
        links = f"{self.unit_dir.name}/{CURRENT}/"
        for entry in os.scandir(self.folder):  # links of still older generations (a killed run's retire step)
            if entry.is_symlink() and entry.name not in kept:
                target = os.readlink(entry.path)
                if target.startswith(links) and target[len(links) :] not in kept:
                    os.unlink(entry.path)
        self._clean(keep=self.current)
        for visible in kept.values():  # temporary files an earlier astrodet version left beside these outputs
            for entry in os.scandir(visible.parent):
                name = entry.name
                if name.startswith(f".{visible.name}.") and _LEFTOVER_TMP.fullmatch(name[len(visible.name) + 1 :]):
                    _remove(entry.path)

    def _clean(self, keep: int | None) -> None:
        """Remove every generation but ``keep``, and temporary links and files of killed runs."""
        kept_names = {LOCK, CURRENT} | ({f"g{keep}", f"g{keep}.json"} if keep is not None else set())
        for entry in os.scandir(self.unit_dir):
            if entry.name not in kept_names:
                _remove(entry.path)
        for entry in os.scandir(self.folder):
            name = entry.name
            if name.startswith(self.prefix):
                generation = name[len(self.prefix) :].split("-", 1)[0]
                if generation != str(keep):
                    _remove(entry.path)
            elif name.startswith("." + self.prefix) and name.endswith(".tmp"):
                _remove(entry.path)  # a staged file's temporary, from a run killed while writing it

    def _abort(self) -> None:
        """Leave things as they were: the staged generation goes; a unit that never published goes entirely."""
        self._clean(keep=self.current)
        for visible in self.entries.values():
            if visible.parent != self.folder:
                _remove(visible.parent / f".{visible.name}.astrodet-link")
        if self.current is None:
            _remove(self.unit_dir)

    def _names_hidden_file(self, error: OSError) -> bool:
        marker = f".{self.stem}.astrodet"
        return any(isinstance(name, str) and marker in name for name in (error.filename, error.filename2))
