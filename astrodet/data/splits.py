"""Deterministic, stratified train/val/test splits of keys (galaxies, objects).

Why this shape: a split must be reproducible from (keys, strata, fractions, seed) alone, whatever order the keys
arrive in, and a galaxy must never appear in two splits. Each key's place in its stratum is ranked by a hash of
``(seed, key)`` rather than a random generator, so the split does not depend on input order or on numpy's RNG
version, and adding a few keys moves few others. Per stratum, counts are rounded by largest remainder while carrying
the rounding error from stratum to stratum (smallest strata first), so the global fractions stay exact to about one
key even with many small strata; every split with a positive fraction gets at least one key of a stratum that has
at least as many keys as there are such splits.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Hashable, Mapping
from typing import TypeVar

from astrodet.errors import AstrodetInputError

K = TypeVar("K", bound=Hashable)

DEFAULT_FRACTIONS: dict[str, float] = {"train": 0.7, "val": 0.2, "test": 0.1}


def parse_fractions(text: str) -> dict[str, float]:
    """Parse ``"train=0.7,val=0.2,test=0.1"``; fractions must be >= 0 and sum to 1."""
    fractions: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        name = name.strip()
        if not sep or not name:
            raise AstrodetInputError(f"split {text!r}: expected NAME=FRACTION pairs like 'train=0.7,val=0.2,test=0.1'")
        if name in fractions:
            raise AstrodetInputError(f"split {text!r}: split name {name!r} given twice")
        try:
            fractions[name] = float(value)
        except ValueError:
            raise AstrodetInputError(f"split {text!r}: fraction of {name!r} is not a number: {value!r}") from None
    check_fractions(fractions)
    return fractions


def check_fractions(fractions: Mapping[str, float]) -> None:
    """Refuse empty, negative, non-finite or not-summing-to-one fractions (a silent renormalisation hides typos)."""
    if not fractions:
        raise AstrodetInputError("split fractions: at least one split is needed")
    for name, value in fractions.items():
        if not isinstance(name, str) or not name or any(c in name for c in "/\\ "):
            raise AstrodetInputError(f"split fractions: split name {name!r} must be a non-empty word (it names files)")
        if not math.isfinite(value) or value < 0:
            raise AstrodetInputError(f"split fractions: fraction of {name!r} must be a finite number >= 0, got {value}")
    total = math.fsum(fractions.values())
    if abs(total - 1.0) > 1e-6:
        raise AstrodetInputError(f"split fractions: must sum to 1, got {total:g} ({dict(fractions)})")


def _rank(seed: int, key: Hashable) -> bytes:
    return hashlib.sha256(f"{seed}\x1f{key!r}".encode()).digest()


def _allocate(n: int, targets: list[float], minimum: list[int]) -> list[int]:
    """Integer counts summing to ``n``, close to ``targets`` (which sum to ``n``), each >= ``minimum``."""
    clipped = [max(t, 0.0) for t in targets]
    total = math.fsum(clipped)  # > 0: the targets of the active splits sum to n >= 1
    ideal = [t * n / total for t in clipped]
    counts = [math.floor(v) for v in ideal]
    order = sorted(range(len(ideal)), key=lambda i: (-(ideal[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    for i, low in enumerate(minimum):
        while counts[i] < low:
            donor = max((j for j in range(len(counts)) if counts[j] > minimum[j]), key=lambda j: (counts[j], -j))
            counts[donor] -= 1
            counts[i] += 1
    return counts


def stratified_split(
    strata: Mapping[K, Hashable], fractions: Mapping[str, float] | None = None, seed: int = 0
) -> dict[str, list[K]]:
    """Split the keys of ``strata`` (key -> stratum label) into named splits; keys come back sorted by rank.

    Same (keys, strata, fractions, seed) -> same split, whatever the mapping's order.
    """
    fractions = dict(DEFAULT_FRACTIONS if fractions is None else fractions)
    check_fractions(fractions)
    names = list(fractions)
    weights = [fractions[name] for name in names]
    active = [w > 0 for w in weights]
    by_stratum: dict[str, list[K]] = defaultdict(list)
    for key, label in strata.items():
        by_stratum[repr(label)].append(key)
    result: dict[str, list[K]] = {name: [] for name in names}
    debt = [0.0] * len(names)  # ideal minus assigned so far, carried across strata
    # small strata first, so the forced one-per-split of small strata is paid back by the large ones
    for label in sorted(by_stratum, key=lambda s: (len(by_stratum[s]), s)):
        keys = sorted(by_stratum[label], key=lambda k: _rank(seed, k))
        n = len(keys)
        minimum = [1 if a and n >= sum(active) else 0 for a in active]
        targets = [n * w + d if a else 0.0 for w, d, a in zip(weights, debt, active, strict=True)]
        counts = _allocate(n, targets, minimum)
        start = 0
        for i, name in enumerate(names):
            result[name].extend(keys[start : start + counts[i]])
            start += counts[i]
            debt[i] += n * weights[i] - counts[i]
    for name in names:
        result[name].sort(key=lambda k: _rank(seed, k))
    return result


def assign_splits(
    strata: Mapping[K, Hashable], fractions: Mapping[str, float] | None = None, seed: int = 0
) -> dict[K, str]:
    """The same split as :func:`stratified_split`, as key -> split name."""
    return {key: name for name, keys in stratified_split(strata, fractions, seed).items() for key in keys}
