"""Declarative selections for catalogue conversions: cuts such as ``mag_v <= 19.4`` and label -> class mappings.

Why data, not code: a selection recipe (the Perseus brightness cut, which catalogue classes count as positives,
which are dropped) is part of a dataset's provenance. Kept in a small YAML or JSON file, it is versioned with the
data, written into the COCO ``info`` and reported cut by cut, so a reader can see what each step removed.

Config keys (all optional; unknown keys are refused so a typo cannot silently do nothing)::

    label_column: pcc_class          # catalogue column holding the label text or value
    classes:                         # output classes in order -> COCO category ids 1..K
      other: [Cluster or background LTG, ...]    # label values mapped to this class
      star: {where: "CLASS_STAR >= 0.8"}          # or a cut: the first class whose cut passes
    drop: [Likely merging system]    # label values rejected as 'dropped_class'
    cuts: ["mag_v <= 19.4"]          # applied in order; a missing value fails the cut

plus reader settings used by :mod:`astrodet.data.catalog` (format, column names). Label values are compared after
collapsing runs of whitespace, so fixed-width padding does not matter.
"""

from __future__ import annotations

import math
import operator
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astrodet.data.toolkit import read_structured
from astrodet.errors import AstrodetInputError

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_CUT_RE = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*(<=|>=|==|!=|<|>)\s*(.+?)\s*$")
CONFIG_KEYS = frozenset(
    {
        "label_column",
        "classes",
        "drop",
        "cuts",
        "format",
        "numeric_columns",
        "id_column",
        "ra_column",
        "dec_column",
        "x_column",
        "y_column",
        "name_pattern",
    }
)


def normalise_label(value: object) -> str:
    """Label text as compared: surrounding and repeated whitespace removed (fixed-width padding is not meaning)."""
    return " ".join(str(value).split())


def as_float(value: object) -> float | None:
    """A finite float, or None for missing / non-numeric / non-finite values."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Cut:
    """One ``column op value`` selection; numbers compare numerically, quoted values as text."""

    column: str
    op: str
    value: float | str
    text: str

    @classmethod
    def parse(cls, text: str) -> Cut:
        match = _CUT_RE.match(str(text))
        if not match:
            raise AstrodetInputError(
                f"cut {text!r}: expected 'COLUMN OP VALUE' with OP one of {', '.join(_OPS)} (e.g. 'mag_v <= 19.4')"
            )
        column, op, raw = match.groups()
        value: float | str
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
            value = raw[1:-1]
        else:
            number = as_float(raw)
            if number is None:
                raise AstrodetInputError(f"cut {text!r}: value {raw!r} is not a number (quote text values)")
            value = number
            raw = f"{number:g}"
        return cls(column, op, value, f"{column} {op} {raw}")

    @property
    def reason(self) -> str:
        """The rejects-ledger reason code of rows this cut removes, e.g. ``cut:mag_v<=19.4``."""
        return "cut:" + self.text.replace(" ", "")

    def check(self, value: object) -> str | None:
        """None if ``value`` passes, else why not (a missing value fails: it cannot be shown to pass)."""
        if isinstance(self.value, str):
            if value is None:
                return f"{self.column} is missing"
            ok = _OPS[self.op](normalise_label(value), self.value)
            return None if ok else f"{self.column} = {normalise_label(value)!r} fails {self.text}"
        number = as_float(value)
        if number is None:
            return f"{self.column} is missing or not a number ({value!r})"
        return None if _OPS[self.op](number, self.value) else f"{self.column} = {number:g} fails {self.text}"


@dataclass(frozen=True)
class ClassMapping:
    """Label values (or per-class cuts) -> output classes, in category order; some values dropped on purpose."""

    categories: tuple[str, ...]
    label_column: str | None = None
    values: Mapping[str, str] = field(default_factory=dict)  # normalised label value -> category
    where: Mapping[str, Cut] = field(default_factory=dict)  # category -> cut selecting it
    drop: frozenset[str] = frozenset()

    @property
    def columns(self) -> list[str]:
        """Catalogue columns the mapping reads."""
        cols = [self.label_column] if self.label_column else []
        return cols + [cut.column for cut in self.where.values() if cut.column not in cols]

    def classify(self, row: Mapping[str, Any]) -> tuple[str | None, str, str]:
        """``(category, "", "")`` or ``(None, reason, message)`` for one catalogue row."""
        if self.label_column is not None:
            raw = row.get(self.label_column)
            if raw is None or not normalise_label(raw):
                return None, "missing_label", f"{self.label_column} is empty"
            label = _label_key(raw)
            if label in self.drop:
                return None, "dropped_class", f"{self.label_column} {label!r} is dropped by the class mapping"
            if label in self.values:
                return self.values[label], "", ""
        for category, cut in self.where.items():
            if cut.check(row.get(cut.column)) is None:
                return category, "", ""
        if self.label_column is None:
            return None, "unknown_class", "no class's 'where' cut selects this row"
        known = ", ".join(repr(v) for v in sorted(self.values)) or "none"
        return None, "unknown_class", f"{self.label_column} {_label_key(raw)!r} is not in the mapping (known: {known})"


def _label_key(value: object) -> str:
    """Integers and integral floats compare as integers ('1', 1 and 1.0 are one label); text is normalised."""
    number = as_float(value)
    if number is not None and number == int(number) and not isinstance(value, str):
        return str(int(number))
    text = normalise_label(value)
    if re.fullmatch(r"[+-]?\d+(\.0*)?", text):
        return str(int(float(text)))
    return text


def build_mapping(config: Mapping[str, Any], source: str = "class mapping") -> ClassMapping | None:
    """The :class:`ClassMapping` of a config dict, or None when it has no ``classes``."""
    classes = config.get("classes")
    if classes is None:
        if config.get("drop"):
            raise AstrodetInputError(f"{source}: 'drop' needs 'classes'")
        return None
    if not isinstance(classes, Mapping) or not classes:
        raise AstrodetInputError(f"{source}: 'classes' must map class names to label values or {{where: cut}}")
    label_column = config.get("label_column")
    values: dict[str, str] = {}
    where: dict[str, Cut] = {}
    for category, spec in classes.items():
        if not isinstance(category, str) or not category:
            raise AstrodetInputError(f"{source}: class names must be non-empty strings, got {category!r}")
        if isinstance(spec, Mapping):
            if set(spec) != {"where"}:
                raise AstrodetInputError(f"{source}: class {category!r}: a mapping must be {{where: 'CUT'}}")
            where[category] = Cut.parse(spec["where"])
            continue
        items = [spec] if isinstance(spec, str | int | float) else spec
        if not isinstance(items, Sequence) or not items:
            raise AstrodetInputError(f"{source}: class {category!r}: expected a list of label values")
        for item in items:
            key = _label_key(item)
            if key in values and values[key] != category:
                raise AstrodetInputError(f"{source}: label {key!r} mapped to both {values[key]!r} and {category!r}")
            values[key] = category
    if values and not label_column:
        raise AstrodetInputError(f"{source}: classes given by label values need 'label_column'")
    drop = frozenset(_label_key(v) for v in (config.get("drop") or []))
    clash = sorted(drop & set(values))
    if clash:
        raise AstrodetInputError(f"{source}: label(s) {clash} are both mapped and dropped")
    return ClassMapping(tuple(classes), label_column, values, where, drop)


def parse_cuts(items: Sequence[str] | None) -> tuple[Cut, ...]:
    if items is None:
        return ()
    if isinstance(items, str) or not isinstance(items, Sequence):
        raise AstrodetInputError(f"cuts must be a list of 'COLUMN OP VALUE' strings, got {items!r}")
    return tuple(Cut.parse(item) for item in items)


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a selection config (YAML or JSON, by content); unknown top-level keys are an error naming the file."""
    file = Path(path)
    data = read_structured(file, "config file")  # one-line errors: no such file, a folder, not UTF-8, bad syntax
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise AstrodetInputError(f"{file}: the config must be a mapping of keys, got {type(data).__name__}")
    unknown = sorted(set(data) - CONFIG_KEYS)
    if unknown:
        raise AstrodetInputError(f"{file}: unknown key(s) {unknown}; known: {sorted(CONFIG_KEYS)}")
    return data


@dataclass
class CutReport:
    """Rows before and after each cut, in order: what each step removed."""

    steps: list[dict[str, Any]] = field(default_factory=list)

    def add(self, name: str, rows_before: int, removed: int, missing: int = 0) -> None:
        self.steps.append(
            {
                "step": name,
                "rows_before": rows_before,
                "removed": removed,
                "missing": missing,
                "rows_after": rows_before - removed,
            }
        )

    def lines(self) -> list[str]:
        out = []
        for s in self.steps:
            extra = f"; {s['missing']} of them missing a value" if s["missing"] else ""
            out.append(f"{s['step']}: {s['rows_before']} -> {s['rows_after']} (removed {s['removed']}{extra})")
        return out
