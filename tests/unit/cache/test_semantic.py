"""SemanticCache: cosine threshold, nearest match, generations, FIFO eviction."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragfleet.cache import SemanticCache
from ragfleet.errors import ConfigError, DimensionError, InputError

pytest.importorskip("faiss", reason="faiss is not installed: pip install 'ragfleet[index]'")


def e(i: int, d: int = 16) -> np.ndarray:
    """The i-th standard basis vector of R^d."""
    v = np.zeros(d, dtype=np.float32)
    v[i] = 1.0
    return v


def at_angle(cos: float, d: int = 16) -> np.ndarray:
    """cos·e0 + sin·e1: a unit vector whose cosine with e0 is ``cos``."""
    return cos * e(0, d) + math.sqrt(1.0 - cos * cos) * e(1, d)


@pytest.mark.parametrize("cos", [1.0, 0.99, 0.951])
def test_match_at_or_above_threshold(cos: float) -> None:
    cache = SemanticCache(dim=16, threshold=0.95)
    cache.add(e(0), "cached question", "key-0", generation=1)
    match = cache.lookup(at_angle(cos), generation=1)
    assert match is not None
    assert (match.query_text, match.key) == ("cached question", "key-0")
    assert match.cosine == pytest.approx(cos, abs=1e-6)


@pytest.mark.parametrize("cos", [0.949, 0.5, 0.0, -1.0])
def test_no_match_below_threshold(cos: float) -> None:
    cache = SemanticCache(dim=16, threshold=0.95)
    cache.add(e(0), "cached question", "key-0", generation=1)
    assert cache.lookup(at_angle(cos), generation=1) is None


def test_nearest_of_several_wins() -> None:
    cache = SemanticCache(dim=16, threshold=0.5)
    cache.add(e(0), "zero", "k0", generation=1)
    cache.add(e(1), "one", "k1", generation=1)
    q = 0.6 * e(0) + 0.8 * e(1)  # cos with e0 = 0.6, with e1 = 0.8
    match = cache.lookup(q, generation=1)
    assert match is not None
    assert match.key == "k1"
    assert match.cosine == pytest.approx(0.8, abs=1e-6)


def test_new_generation_drops_everything_and_old_generation_is_refused() -> None:
    cache = SemanticCache(dim=16)
    cache.add(e(0), "q", "k", generation=1)
    assert cache.lookup(e(0), generation=2) is None
    assert len(cache) == 0
    assert cache.generation == 2
    assert cache.add(e(0), "q", "k-old", generation=1) is False  # a stale writer
    assert cache.lookup(e(0), generation=1) is None
    assert cache.add(e(0), "q", "k-new", generation=2) is True
    match = cache.lookup(e(0), generation=2)
    assert match is not None and match.key == "k-new"


def test_fifo_eviction_drops_the_oldest_tenth() -> None:
    cache = SemanticCache(dim=16, threshold=0.99, max_entries=10)
    for i in range(10):
        cache.add(e(i), f"q{i}", f"k{i}", generation=1)
    cache.add(e(10), "q10", "k10", generation=1)  # full: evict ceil(10 / 10) = 1, the oldest
    assert len(cache) == 10
    assert cache.lookup(e(0), generation=1) is None
    for i in range(1, 11):
        match = cache.lookup(e(i), generation=1)
        assert match is not None and match.key == f"k{i}"


def test_duplicate_key_is_not_added_twice() -> None:
    cache = SemanticCache(dim=16)
    assert cache.add(e(0), "q", "k", generation=1) is True
    assert cache.add(e(1), "q again", "k", generation=1) is False
    assert len(cache) == 1


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-10, 10, allow_nan=False), min_size=8, max_size=8).filter(
        lambda xs: math.sqrt(sum(x * x for x in xs)) > 1e-3
    ),
    st.floats(1e-3, 1e3),
)
def test_lookup_is_scale_invariant(xs: list[float], scale: float) -> None:
    """cos(c·v, v) = 1 for every c > 0: a rescaled query always matches itself."""
    v = np.asarray(xs, dtype=np.float32)
    cache = SemanticCache(dim=8, threshold=0.999)
    cache.add(v, "q", "k", generation=0)
    match = cache.lookup(scale * v, generation=0)
    assert match is not None
    assert match.cosine == pytest.approx(1.0, abs=1e-4)


def test_invalid_input_raises() -> None:
    cache = SemanticCache(dim=16)
    with pytest.raises(DimensionError, match="dimension 8"):
        cache.lookup(np.ones(8), generation=1)
    with pytest.raises(InputError, match="non-zero"):
        cache.add(np.zeros(16), "q", "k", generation=1)
    with pytest.raises(InputError, match="finite"):
        cache.lookup(np.full(16, np.nan), generation=1)
    for kwargs in ({"dim": 0}, {"dim": 4, "threshold": 0.0}, {"dim": 4, "max_entries": 0}):
        with pytest.raises(ConfigError):
            SemanticCache(**kwargs)  # type: ignore[arg-type]


def test_threads_add_and_lookup_concurrently() -> None:
    cache = SemanticCache(dim=16, threshold=0.99, max_entries=40)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((4, 100, 16)).astype(np.float32)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i, v in enumerate(vectors[t]):
                cache.add(v, f"t{t}q{i}", f"t{t}k{i}", generation=1)
                match = cache.lookup(v, generation=1)
                assert match is None or match.cosine >= 0.99
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert len(cache) <= 40


def test_string_generations_are_unordered_so_any_change_resets() -> None:
    """``Collection.generation`` is ``"<fingerprint>:<seq>"``: not orderable, so a different
    one always drops the entries (a stale caller costs hits, never serves a stale answer)."""
    cache = SemanticCache(dim=16)
    cache.add(e(0), "q", "k-a", generation="fp:7")
    assert cache.lookup(e(0), generation="fp:8") is None
    assert cache.generation == "fp:8" and len(cache) == 0
    assert cache.add(e(0), "q", "k-old", generation="fp:7") is True  # taken as new
    assert cache.lookup(e(0), generation="fp:8") is None  # never k-old under fp:8
    cache.add(e(0), "q", "k-b", generation="fp:8")
    match = cache.lookup(e(0), generation="fp:8")
    assert match is not None and match.key == "k-b"
