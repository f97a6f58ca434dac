"""Galaxy Zoo question schemas: the decision tree's questions over a flat vector of vote columns.

Schemas are data (JSON files beside this module, as zoobot keeps its schemas in a module of their own): the vote
losses and heads need them to know which answer columns form one question and which answer leads to it; the Galaxy
Zoo converter needs the column order to store vote fractions. Both import them from here, so building a model never
imports a converter.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from astrodet.errors import AstrodetInputError

SCHEMA_DIR = Path(__file__).resolve().parent
QUESTIONS = SCHEMA_DIR / "gz2_questions.json"  # the Galaxy Zoo 2 Kaggle decision tree (37 answer columns)


@dataclass(frozen=True)
class Question:
    """One decision-tree question: its answer columns ``[start, stop)`` and the answer column that leads to it."""

    name: str
    start: int
    stop: int
    parent: int | None  # index of the parent answer column, None if every volunteer was asked


@dataclass(frozen=True)
class QuestionSchema:
    """Galaxy Zoo questions over a flat vector of answer columns: what vote losses and metrics need to know."""

    name: str
    columns: tuple[str, ...]
    questions: tuple[Question, ...]

    @property
    def slices(self) -> list[tuple[int, int]]:
        return [(q.start, q.stop) for q in self.questions]

    @property
    def parents(self) -> list[int | None]:
        return [q.parent for q in self.questions]


def read_json_object(path: Path) -> dict:
    """A JSON file that must hold an object; a missing or malformed file is a one-line input error naming it."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise AstrodetInputError(f"{path}: no such file") from None
    except json.JSONDecodeError as err:
        raise AstrodetInputError(f"{path}: not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise AstrodetInputError(f"{path}: expected a JSON object")
    return data


@lru_cache(maxsize=8)
def load_question_schema(path: str | os.PathLike[str] = QUESTIONS) -> QuestionSchema:
    """Read a question schema (JSON: questions with ``answers`` {column: name} and ``parent`` column or null)."""
    data = read_json_object(Path(path))
    columns: list[str] = []
    questions: list[Question] = []
    for q in data["questions"]:
        start = len(columns)
        columns.extend(q["answers"])
        questions.append(Question(q["name"], start, len(columns), None))
    index = {c: i for i, c in enumerate(columns)}
    resolved = []
    for q, raw in zip(questions, data["questions"], strict=True):
        parent = raw.get("parent")
        if parent is not None and parent not in index:
            raise AstrodetInputError(f"{path}: question {q.name!r}: parent {parent!r} is not an answer column")
        resolved.append(Question(q.name, q.start, q.stop, None if parent is None else index[parent]))
    return QuestionSchema(str(data.get("name", Path(path).stem)), tuple(columns), tuple(resolved))


def vote_columns() -> tuple[str, ...]:
    """The 37 Kaggle columns in schema order (Class1.1 .. Class11.6)."""
    return load_question_schema().columns
