"""The semantic false-hit benchmark's accounting, on vectors whose cosines are known."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "semantic_false_hits.py"

pytest.importorskip("faiss", reason="faiss is not installed: pip install 'ragfleet[index]'")


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("semantic_false_hits", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def at(cos: float) -> np.ndarray:
    """A unit vector in R^4 whose cosine with e0 is ``cos``."""
    return np.asarray([cos, math.sqrt(1 - cos * cos), 0, 0], dtype=np.float32)


def test_true_and_false_hits_by_threshold(bench: ModuleType) -> None:
    qs = bench.QuerySet(
        "toy",
        ["a", "a again", "a-ish", "far"],
        [frozenset({"d1"}), frozenset({"d1"}), frozenset({"d2"}), frozenset({"d3"})],
        [frozenset({"x"}), frozenset({"y"}), frozenset({"x"}), frozenset({"z"})],
    )
    vectors = np.stack([at(1.0), at(1.0), at(0.96), at(0.0)])
    # At τ = 0.98 only "a again" hits (cos 1 with a: same gold, another answer). At τ = 0.95
    # the first of {a, a again, a-ish} to arrive is cached and the other two hit it (hits are
    # not added); a hit between a-ish (gold d2) and an a (gold d1) is false: 1 or 2 of them.
    strict = [bench.stream(qs, vectors, 0.98, seed) for seed in range(20)]
    assert {(r["hits"], r["false_hits"], r["answer_false_hits"]) for r in strict} == {(1, 0, 1)}
    loose = [bench.stream(qs, vectors, 0.95, seed) for seed in range(20)]
    assert {r["hits"] for r in loose} == {2}
    assert {r["false_hits"] for r in loose} == {1, 2}  # arrival order matters
    for r in strict + loose:
        assert r["hit_rate"] == r["hits"] / 4
        assert r["false_hit_rate"] == r["false_hits"] / 4
        assert r["precision"] == (r["hits"] - r["false_hits"]) / r["hits"]
        assert r["paraphrase_free_miss_rate"] == 1 - r["hits"] / 4


def test_nearest_cosines_leave_one_out(bench: ModuleType) -> None:
    vectors = np.stack([at(1.0), at(0.6), at(0.0)])
    nn = bench.nearest_cosines(vectors)
    # cos(e0, at(.6)) = .6; cos(at(.6), at(0)) = .8 (= sin of the first); cos(at(0), e0) = 0
    np.testing.assert_allclose(nn, [0.6, 0.8, 0.8], atol=1e-6)
