"""Stratified splits: deterministic, input-order independent, fractions kept, every stratum in every split."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from astrodet.data.splits import assign_splits, parse_fractions, stratified_split
from astrodet.errors import AstrodetInputError

FRACTIONS = {"train": 0.7, "val": 0.2, "test": 0.1}


def _strata(n: int = 2000, seed: int = 1) -> dict[str, tuple[int, bool]]:
    rng = random.Random(seed)
    return {f"gal{i}": (rng.choice([0, 1, 2, 5]), rng.random() < 0.3) for i in range(n)}


def test_same_inputs_same_split_whatever_the_order():
    strata = _strata()
    items = list(strata.items())
    random.Random(7).shuffle(items)
    assert stratified_split(strata, FRACTIONS, seed=3) == stratified_split(dict(items), FRACTIONS, seed=3)
    assert stratified_split(strata, FRACTIONS, seed=3) != stratified_split(strata, FRACTIONS, seed=4)


def test_partition_fractions_and_strata():
    strata = _strata()
    split = stratified_split(strata, FRACTIONS, seed=0)
    keys = [k for ks in split.values() for k in ks]
    assert sorted(keys) == sorted(strata) and len(set(keys)) == len(keys)
    for name, fraction in FRACTIONS.items():
        assert abs(len(split[name]) - fraction * len(strata)) <= 1
    per_stratum = Counter(strata.values())
    for name, fraction in FRACTIONS.items():
        counts = Counter(strata[k] for k in split[name])
        for stratum, total in per_stratum.items():
            assert abs(counts[stratum] - fraction * total) <= 2, (name, stratum)


def test_small_strata_are_represented_where_possible():
    strata = {"a": "x", "b": "x", "c": "x", "d": "y", "e": "y", "f": "z"}
    split = assign_splits(strata, FRACTIONS, seed=0)
    assert {split[k] for k in "abc"} == {"train", "val", "test"}  # 3 keys, 3 splits: one each
    assert len(split) == 6


def test_zero_fraction_split_stays_empty():
    split = stratified_split(_strata(100), {"train": 0.8, "val": 0.2, "test": 0.0}, seed=0)
    assert split["test"] == [] and len(split["train"]) == 80


def test_parse_fractions():
    assert parse_fractions("train=0.7, val=0.2,test=0.1") == FRACTIONS
    for bad in ("train=0.7,val=0.2", "train=0.7,val=x,test=0.1", "train0.7", "a=0.5,a=0.5", "a=-0.5,b=1.5"):
        with pytest.raises(AstrodetInputError, match="split"):
            parse_fractions(bad)
