"""Fusion: RRF and convex combination formulas, and their invariants (Hypothesis)."""

from __future__ import annotations

import copy
import math
import random
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ragfleet.errors import InputError, UnknownSpecError
from ragfleet.search.fusion import FUSIONS, convex, fuse, minmax_normalize, rrf, zscore_normalize


# ---------------------------------------------------------------------------------- RRF
def test_rrf_formula() -> None:
    fused = dict(rrf([["a", "b", "c"], ["c", "a"]], k=60))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["b"] == pytest.approx(1 / 62)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert [d for d, _ in rrf([["a", "b", "c"], ["c", "a"]])] == ["a", "c", "b"]


def test_rrf_weights_names_and_duplicates() -> None:
    fused = dict(
        rrf(
            {"dense": ["a", "b"], "sparse": ["b", "b", "c"]},
            k=1,
            weights={"dense": 2.0, "sparse": 0.5},
        )
    )
    assert fused == pytest.approx({"a": 2 / 2, "b": 2 / 3 + 0.5 / 2, "c": 0.5 / 3})


def test_rrf_ties_by_id_and_empty_inputs() -> None:
    assert rrf([["b"], ["a"]]) == [("a", 1 / 61), ("b", 1 / 61)]
    assert rrf([]) == [] and rrf([[], []]) == [] and rrf({}) == []


def test_rrf_validation() -> None:
    with pytest.raises(InputError, match="k must be"):
        rrf([["a"]], k=-1)
    with pytest.raises(InputError, match="weights"):
        rrf([["a"]], weights=[1.0, 2.0])
    with pytest.raises(InputError, match=">= 0"):
        rrf([["a"]], weights=[-1.0])
    with pytest.raises(InputError, match="lack rankings"):
        rrf({"dense": ["a"]}, weights={"sparse": 1.0})


rankings = st.lists(
    st.lists(st.sampled_from("abcdefghij"), max_size=10, unique=True), min_size=0, max_size=4
)


@given(rankings, st.randoms())
def test_rrf_is_order_independent_pure_and_finite(
    lists: list[list[str]], rnd: random.Random
) -> None:
    before = copy.deepcopy(lists)
    fused = rrf(lists)
    assert lists == before
    shuffled = list(lists)
    rnd.shuffle(shuffled)
    assert rrf(shuffled) == fused
    assert all(math.isfinite(s) and s > 0 for _, s in fused)
    assert [s for _, s in fused] == sorted((s for _, s in fused), reverse=True)
    assert {d for d, _ in fused} == {d for r in lists for d in r}


# ------------------------------------------------------------------------------ convex
def test_minmax_and_zscore_formulas() -> None:
    scores = {"a": 1.0, "b": 3.0, "c": 2.0}
    assert minmax_normalize(scores) == {"a": 0.0, "b": 1.0, "c": 0.5}
    std = math.sqrt(((1 - 2) ** 2 + (3 - 2) ** 2 + 0) / 3)
    assert zscore_normalize(scores) == pytest.approx({"a": -1 / std, "b": 1 / std, "c": 0.0})


def test_max_equals_min_and_empty() -> None:
    assert minmax_normalize({"a": 5.0, "b": 5.0}) == {"a": 1.0, "b": 1.0}
    assert zscore_normalize({"a": 5.0}) == {"a": 0.0}
    assert minmax_normalize({}) == {} == zscore_normalize({})
    assert convex({}, {}) == [] and convex({"dense": {}}, {"dense": 1.0}) == []


def test_convex_formula_with_one_sided_hits() -> None:
    lists = {"dense": {"a": 0.9, "b": 0.5, "c": 0.1}, "sparse": {"b": 12.0, "d": 4.0}}
    fused = dict(convex(lists, {"dense": 0.7, "sparse": 0.3}))
    # dense minmax: a 1, b 0.5, c 0; sparse minmax: b 1, d 0; missing → the list's minimum (0)
    assert fused == pytest.approx({"a": 0.7, "b": 0.35 + 0.3, "c": 0.0, "d": 0.0})
    z = dict(convex(lists, {"dense": 1.0, "sparse": 1.0}, normalize="zscore"))
    zd, zs = zscore_normalize(lists["dense"]), zscore_normalize(lists["sparse"])
    assert z["a"] == pytest.approx(zd["a"] + min(zs.values()))
    assert z["d"] == pytest.approx(min(zd.values()) + zs["d"])


def test_convex_validation() -> None:
    with pytest.raises(InputError, match="weight"):
        convex({"dense": {"a": 1.0}}, {})
    with pytest.raises(UnknownSpecError, match="normalisation"):
        convex({"dense": {"a": 1.0}}, {"dense": 1.0}, normalize="max")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="finite"):
        convex({"dense": {"a": math.nan}}, {"dense": 1.0})


score_lists = st.dictionaries(
    st.sampled_from(["dense", "sparse", "splade"]),
    st.dictionaries(st.sampled_from("abcdefgh"), st.floats(-1e6, 1e6), max_size=8),
    max_size=3,
)


@given(score_lists, st.sampled_from(["minmax", "zscore"]), st.randoms())
def test_convex_is_order_independent_pure_and_finite(
    lists: dict[str, dict[str, float]], normalize: Literal["minmax", "zscore"], rnd: random.Random
) -> None:
    weights = {"dense": 0.5, "sparse": 0.3, "splade": 0.2}
    before = copy.deepcopy(lists)
    fused = convex(lists, weights, normalize=normalize)
    assert lists == before
    items = list(lists.items())
    rnd.shuffle(items)
    shuffled = {name: dict(reversed(list(s.items()))) for name, s in items}
    assert convex(shuffled, weights, normalize=normalize) == fused
    assert all(math.isfinite(s) for _, s in fused)
    assert {d for d, _ in fused} == {d for s in lists.values() for d in s}
    if normalize == "minmax":
        assert all(-1e-12 <= s <= 1 + 1e-12 for _, s in fused)


# -------------------------------------------------------------------------------- fuse
def test_fuse_dispatches_every_method() -> None:
    lists = {"dense": {"a": 0.9, "b": 0.2}, "sparse": {"b": 7.0, "c": 1.0}}
    assert fuse("rrf", lists, rrf_k=10) == rrf({"dense": ["a", "b"], "sparse": ["b", "c"]}, k=10)
    w = {"dense": 0.6, "sparse": 0.4}
    assert fuse("minmax", lists, w) == convex(lists, w, "minmax")
    assert fuse("zscore", lists, w) == convex(lists, w, "zscore")
    assert set(FUSIONS) == {"rrf", "minmax", "zscore"}
    with pytest.raises(UnknownSpecError, match="unknown fusion"):
        fuse("borda", lists)
