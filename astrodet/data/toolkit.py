"""What every converter shares: reading CSV tables, picking columns, parsing ids, naming outputs, parsing splits,
options objects filled from the command line, what a run may write (never over an input) and the tail that
publishes a run's files as one unit.

Why one module: a converter is "rows in, COCO files + rejects report out", and the parts around its own row checks
(where a row is in the file, which column is the id, where the images and the rejects report go, how the files are
written together) must behave the same in every converter, so a user meets one set of conventions and a fix lands
once. Conventions:

- Row numbers count the header as row 1, as a spreadsheet shows them; blank lines are not rows but keep their
  number, so every reported row number is the one the user sees in their file.
- ``<out>.json`` names the outputs: ``<out>_<split>.json`` per split, ``<out>_images/`` for written images,
  ``<out>_rejects.csv`` for the rejects report; image paths in the COCO files are relative to the JSON's folder.
- No output may be, or remove, an input: ``--out`` ends in ``.json``, and every output path (split files, rejects
  report, images folder) is compared with every input through links and hard links (:class:`ConversionOutputs`).
- A run's outputs are published together (:mod:`astrodet.data.outputs`): killed at any point, the folder shows the
  previous run's complete set or this run's, never a mix.
- A converter's options are a dataclass whose field names are its ``argparse`` dest names, so the command line,
  :func:`options_from_args` and the keyword form of ``convert_*`` (:func:`build_options`) are one mechanism.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from astrodet.data.coco import category_counts
from astrodet.data.outputs import OutputUnit
from astrodet.data.rejects import ConversionSummary, RejectsLedger
from astrodet.data.splits import check_fractions, parse_fractions
from astrodet.errors import AstrodetInputError
from astrodet.io import atomic_write_bytes, atomic_write_json, clone

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"  # converter recipes: class mappings, selection configs

# --- reading tables ----------------------------------------------------------------------------------------------


def read_text(path: Path, what: str = "file") -> str:
    """A UTF-8 text file (a byte-order mark is dropped); an encoding error names the line, not a byte offset."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AstrodetInputError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise AstrodetInputError(f"{path}: is a folder, expected a {what}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise AstrodetInputError(
            f"{path}: line {line} is not UTF-8 text (byte 0x{data[err.start]:02x}); save the {what} as UTF-8"
        ) from None


@dataclass(frozen=True)
class CsvTable:
    """A CSV table as text: the header (stripped) and the data rows with their row numbers (header = row 1)."""

    path: Path
    header: list[str]
    rows: list[list[str]]
    numbers: list[int]

    def values(self, i: int) -> dict[str, str]:
        """Row ``i`` as column -> text, as the rejects report shows it."""
        return dict(zip(self.header, self.rows[i], strict=False))


def read_csv(path: Path, expected_header: str = "") -> CsvTable:
    """Read a CSV table; errors name the file and the line (``expected_header`` is quoted when there is no header)."""
    text = read_text(path, "table")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        records = list(reader)
    except csv.Error as err:
        raise AstrodetInputError(f"{path}: line {reader.line_num}: not a readable CSV table: {err}") from None
    if not records or not records[0]:
        hint = f" {expected_header}" if expected_header else ""
        raise AstrodetInputError(f"{path}: empty file, expected a header row{hint}")
    rows, numbers = [], []
    for number, record in enumerate(records[1:], start=2):
        if record:  # a blank line is not a row
            rows.append(record)
            numbers.append(number)
    return CsvTable(path, [h.strip() for h in records[0]], rows, numbers)


def pick_column(
    columns: Sequence[str], aliases: Sequence[str] = (), given: str | None = None, where: str = "the table"
) -> int | None:
    """Index of the column ``given`` by name (an error if absent), else of the first alias present (any case)."""
    if given:
        if given not in columns:
            raise AstrodetInputError(f"column {given!r} is not in {where}; columns: {', '.join(columns)}")
        return list(columns).index(given)
    lowered = [c.lower() for c in columns]
    return next((lowered.index(a) for a in aliases if a in lowered), None)


def id_value(text: str) -> int | str | None:
    """An id cell as JSON: an integer when it is all digits (Galaxy Zoo and SDSS ids), else the text; empty -> None."""
    text = text.strip()
    return int(text) if text.isdecimal() else (text or None)


def cell_value(text: str) -> Any:
    """A free-form cell as JSON: int or float when it parses (non-finite -> None), empty -> None, else the text."""
    text = text.strip()
    if not text:
        return None
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else None


def basename(path_text: str) -> str:
    """The file name of a path written on any system (tables made on Windows use backslashes)."""
    return path_text.strip().replace("\\", "/").rsplit("/", 1)[-1]


# --- naming outputs ----------------------------------------------------------------------------------------------


def out_stem(out_json: Path) -> Path:
    return out_json.with_suffix("") if out_json.suffix.lower() == ".json" else out_json


def split_path(out_json: Path, split: str | None) -> Path:
    """The COCO file of one split: ``<out_stem>_<split>.json``, or ``out_json`` itself without splits."""
    stem = out_stem(out_json)
    return out_json if split is None else stem.parent / f"{stem.name}_{split}.json"


def images_dir_for(out_json: Path) -> Path:
    """Where a converter writes new image files: ``<out_stem>_images/`` beside the JSON."""
    stem = out_stem(out_json)
    return stem.parent / f"{stem.name}_images"


def rejects_path(out_json: Path, given: Path | None = None) -> Path:
    """The rejects report: ``given``, else ``<out_stem>_rejects.csv`` beside the JSON."""
    stem = out_stem(out_json)
    return given if given is not None else stem.parent / f"{stem.name}_rejects.csv"


def relative_to_json(path: Path, out_json: Path) -> str:
    """``path`` relative to the output JSON's folder, POSIX style (COCO files can be moved with their images)."""
    return Path(os.path.relpath(Path(path).resolve(), out_json.parent.resolve())).as_posix()


def safe_stem(text: str) -> str:
    """A file-name-safe stem: anything other than letters, digits, '.', '_', '-' becomes '_'."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._")
    return stem or "object"


# --- options -----------------------------------------------------------------------------------------------------


def parse_split(split: str | Mapping[str, float] | None) -> dict[str, float] | None:
    """Split fractions from ``"train=0.7,val=0.2,test=0.1"`` or a mapping; checked (>= 0, summing to 1)."""
    if split is None:
        return None
    fractions = parse_fractions(split) if isinstance(split, str) else {str(k): float(v) for k, v in split.items()}
    check_fractions(fractions)
    return fractions


@dataclass(kw_only=True)
class ConverterOptions:
    """The options every converter has (``astrodet convert``'s --split, --seed, --rejects).

    Subclasses add their own; every field name is the dest of a command-line option. Values are normalised and
    checked on construction (``split`` may be given as text), so a bad option fails before any file is read.
    """

    split: dict[str, float] | None = None  # None: one output file
    seed: int = 0
    rejects_csv: Path | None = None  # None: <out_stem>_rejects.csv

    def __post_init__(self) -> None:
        self.split = parse_split(self.split)
        self.seed = int(self.seed)
        self.rejects_csv = optional_path(self.rejects_csv)


def optional_path(value: str | os.PathLike[str] | None) -> Path | None:
    return Path(value) if value is not None else None


Options = TypeVar("Options", bound=ConverterOptions)


def option_names(cls: type[ConverterOptions]) -> list[str]:
    return [f.name for f in fields(cls) if f.init]


def options_from_args(cls: type[Options], args: argparse.Namespace) -> Options:
    """The options of one converter from parsed command-line arguments, field by field (field name = dest)."""
    names = option_names(cls)
    missing = [name for name in names if not hasattr(args, name)]
    if missing:
        raise TypeError(f"{cls.__name__}: no command-line option has dest {', '.join(missing)}")
    return cls(**{name: getattr(args, name) for name in names})


def build_options(cls: type[Options], options: Options | None, given: Mapping[str, Any], caller: str) -> Options:
    """The options of a ``convert_*`` call: the object passed, or one built from keyword options by field name."""
    if options is not None:
        if given:
            raise TypeError(f"{caller}: pass an options object or keyword options, not both")
        if not isinstance(options, cls):
            raise TypeError(f"{caller}: options must be a {cls.__name__}, got {type(options).__name__}")
        return options
    names = option_names(cls)
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise TypeError(f"{caller}: unknown option(s) {', '.join(unknown)}; known: {', '.join(names)}")
    return cls(**given)


# --- reading config files ------------------------------------------------------------------------------------


def read_structured(path: Path, what: str = "file") -> Any:
    """A JSON (``.json``) or YAML (any other suffix) file; a syntax error names its line and column, in one line."""
    text = read_text(path, what)
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise AstrodetInputError(
                f"{path}: line {err.lineno}, column {err.colno}: not valid JSON ({err.msg})"
            ) from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise AstrodetInputError(f"{path}: {where}not valid YAML ({problem})") from None


def short_number(value: float, spec: str = ".6g") -> str:
    """A number as a message shows it: formatted by ``spec``, but in six significant digits when that would be long
    (``1e+308``, not the 309 digits ``.2f`` gives)."""
    text = format(value, spec)
    return text if len(text) <= 16 else format(value, ".6g")


# --- the outputs of a run ----------------------------------------------------------------------------------------

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".fits", ".fit", ".fits.gz", ".fz", ".npy", ".tif", ".tiff", ".gif", ".bmp")


def _same(a: Path, b: Path) -> bool:
    """Whether two paths name one file or folder: one resolved path (through links), or one inode (hard links)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


class ConversionOutputs:
    """The outputs of one conversion run: their names, the check that none of them is an input, and the unit they
    are published as (:class:`astrodet.data.outputs.OutputUnit`: the split files, the rejects report and the images
    folder switch together, so an interrupted run leaves the previous set whole).

    ``options`` give the rejects path and the split names. Use it as a context manager around the conversion;
    images go to :meth:`write_image` (or :attr:`staged_images`), and :func:`write_conversion` writes the rest and
    publishes. Constructing it already refuses an ``--out`` that does not end in ``.json`` and any output that would
    overwrite or remove an input.
    """

    def __init__(
        self,
        out_json: str | os.PathLike[str],
        options: ConverterOptions,
        *,
        inputs: Sequence[Path | None] = (),
        input_folders: Sequence[Path | None] = (),
        writes_images: bool = False,
    ) -> None:
        out = Path(out_json)
        self.out_json = out
        self.rejects_csv = rejects_path(out, options.rejects_csv)
        self._rejects_role = "--rejects" if options.rejects_csv is not None else "the rejects report of --out"
        self.images = images_dir_for(out) if writes_images else None
        self.inputs = [Path(p) for p in inputs if p is not None]
        self.input_folders = [Path(p) for p in input_folders if p is not None]
        self.unit = OutputUnit(out.parent, out_stem(out).name, f"outputs of {out}")
        self._staged_images: Path | None = None
        self.check(list(options.split or [None]))  # first: "--out boxes.csv" names the input it would destroy
        if out.suffix.lower() != ".json":
            raise AstrodetInputError(f"--out {out}: the COCO output must be a path ending in .json")

    def __enter__(self) -> ConversionOutputs:
        self.unit.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.unit.__exit__(*exc)

    def json_path(self, split: str | None) -> Path:
        return split_path(self.out_json, split)

    @property
    def staged_images(self) -> Path:
        """The folder this run writes its images to; published as ``<out_stem>_images/``."""
        if self.images is None:
            raise RuntimeError(f"{self.out_json}: this conversion was not opened with writes_images=True")
        if self._staged_images is None:
            self._staged_images = self.unit.staged(self.images)
            self._staged_images.mkdir(exist_ok=True)
        return self._staged_images

    def image_file_name(self, name: str) -> str:
        """The COCO ``file_name`` of an image written to :attr:`staged_images` under ``name``."""
        assert self.images is not None
        return f"{self.images.name}/{name}"

    def previous_image(self, name: str) -> Path:
        """Where the previous run's image ``name`` is visible (it may be reused when unchanged)."""
        assert self.images is not None
        return self.images / name

    def keep_previous_image(self, name: str) -> str:
        """Take the previous run's image ``name`` into this run (a hard link: no copy, same file); its file_name."""
        clone(self.previous_image(name), self.staged_images / name)
        return self.image_file_name(name)

    def write_image(self, name: str, data: bytes) -> str:
        """Write image ``name`` of this run (the previous run's file is taken over when it holds the same bytes,
        so a rerun rewrites nothing that did not change); its file_name."""
        previous = self.previous_image(name)
        if previous.is_file() and previous.stat().st_size == len(data) and previous.read_bytes() == data:
            return self.keep_previous_image(name)
        atomic_write_bytes(self.staged_images / name, data)
        return self.image_file_name(name)

    def check(self, splits: Sequence[str | None], datasets: Mapping[str | None, dict[str, Any]] | None = None) -> None:
        """Refuse (one line naming both paths) an output that is an input or would remove one, and clashing outputs.

        ``datasets``, once built, add the image files they point at as inputs (a run removes the previous images
        folder, so an input image must not be in it).
        """
        files = [(self.json_path(s), "--out" if s is None else f"the {s} split file of --out") for s in splits]
        files.append((self.rejects_csv, self._rejects_role))
        inputs = [*self.inputs, *self._referenced_images(datasets or {}, {path.name for path, _ in files})]
        for path, role in files:
            if path.is_dir():
                raise AstrodetInputError(f"{role} {path} is a folder; give a file path")
            if self.unit.owns(path.parent):
                raise AstrodetInputError(f"{role} {path} is inside the hidden files of --out {self.out_json}")
            for given in inputs:
                if _same(path, given):
                    raise AstrodetInputError(f"{role} {path} would overwrite the input {given}; choose another path")
            for folder in self.input_folders:
                is_image = path.name.lower().endswith(IMAGE_SUFFIXES) and path.exists()
                if is_image and path.resolve().parent == folder.resolve():
                    raise AstrodetInputError(f"{role} {path} would overwrite an image of the input folder {folder}")
        for path, role in files[:-1]:
            if _same(self.rejects_csv, path):
                raise AstrodetInputError(f"{self._rejects_role} {self.rejects_csv} is also {role} {path}")
        for given in [*self.inputs, *self.input_folders]:
            if self.unit.owns(given):
                raise AstrodetInputError(
                    f"the input {given} is one of the files an earlier run of --out {self.out_json} wrote, which "
                    "this run replaces; copy it elsewhere first or choose another --out"
                )
        if self.images is not None:
            if self.images.exists() and not self.images.is_dir():
                raise AstrodetInputError(f"the images folder of --out, {self.images}, is a file; remove it first")
            for given in [*self.inputs, *self.input_folders]:
                if _same(self.images, given) or self.images.resolve() in given.resolve().parents:
                    raise AstrodetInputError(
                        f"the images folder of --out, {self.images}, would replace the input {given}; "
                        "choose another --out"
                    )

    def _referenced_images(self, datasets: Mapping[str | None, dict[str, Any]], output_names: set[str]) -> list[Path]:
        """Source images the COCO files point at that share a name with an output (the only ones it could hit);
        an image inside this output's own images folder or hidden files is refused (the run replaces those)."""
        root = self.out_json.parent
        stem = out_stem(self.out_json).name
        replaced = (os.path.normpath(images_dir_for(self.out_json)) + os.sep, os.path.normpath(root / f".{stem}."))
        found: list[Path] = []
        for data in datasets.values():
            for image in data["images"]:
                refs = [image.get("source_file_name"), image["file_name"]]
                if self.images is not None and image["file_name"].startswith(f"{self.images.name}/"):
                    refs.pop()  # an image this run writes
                for ref in refs:
                    if ref is None:
                        continue
                    path = os.path.normpath(root / ref)
                    if path.startswith(replaced):
                        raise AstrodetInputError(
                            f"the input image {path} is in the outputs of an earlier run of --out {self.out_json}, "
                            "which this run replaces; copy the images elsewhere first or choose another --out"
                        )
                    if os.path.basename(path) in output_names:
                        found.append(Path(path))
        return found


def write_conversion(
    outputs: ConversionOutputs,
    datasets: Mapping[str | None, dict[str, Any]],
    ledger: RejectsLedger,
    *,
    source: Path,
    rows_in: int,
    rows_out: int,
    out_label: str,
    notes: Sequence[str] = (),
) -> ConversionSummary:
    """Check the row accounting, stage the rejects report and every COCO file, publish them with the images as
    one unit (:class:`ConversionOutputs`), and summarise. A run that would write no image at all fails instead:
    exiting 0 with an empty dataset (every row rejected, no PNG to keep) hides the mistake until training.

    ``datasets`` maps split name (None: no split) to a validated COCO dict; the summary's per-category counts and
    image count are read back from them, so they are what the files hold.
    """
    line = ledger.summary(rows_in, rows_out, file=source, out_label=out_label)  # raises if the counts do not add up
    if not any(data["images"] for data in datasets.values()):  # an empty dataset is a failed run, never a result
        first = next(iter(ledger.rejects()), None)
        example = f"; first reject: {first.file} row {first.row}: {first.message}" if first else ""
        raise AstrodetInputError(f"{source}: no image to write ({line}){example}; nothing written")
    outputs.check(list(datasets), datasets)
    ledger.write_csv(outputs.unit.staged(outputs.rejects_csv))
    paths = {name: outputs.json_path(name) for name in datasets}
    for name, data in datasets.items():
        atomic_write_json(outputs.unit.staged(paths[name]), data)
    outputs.unit.publish()
    categories: dict[str, int] = {}
    for data in datasets.values():
        for name, count in category_counts(data).items():
            categories[name] = categories.get(name, 0) + count
    return ConversionSummary(
        rows_in=rows_in,
        rows_out=rows_out,
        rejected=ledger.counts(source),
        outputs={(name or "all"): path for name, path in paths.items()},
        rejects_csv=outputs.rejects_csv,
        images_out=sum(len(data["images"]) for data in datasets.values()),
        categories=categories,
        out_label=out_label,
        notes=tuple(notes),
    )
