"""MemoryCache: LRU order, TTL with an injected clock, byte budget, thread safety."""

from __future__ import annotations

import random
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragfleet.cache import MemoryCache
from ragfleet.errors import ConfigError


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def size(key: str, value: bytes) -> int:
    return len(key.encode()) + len(value)


def test_least_recently_used_is_evicted_first() -> None:
    entry = size("a", b"x" * 9)  # every key here is 1 byte, every value 9: entry = 10
    cache = MemoryCache(max_bytes=3 * entry)
    for k in "abc":
        cache.set(k, b"x" * 9)
    assert cache.get("a") is not None  # a becomes most recent: order b, c, a
    cache.set("d", b"x" * 9)
    assert cache.lru_keys() == ["c", "a", "d"]
    assert cache.get("b") is None
    assert cache.stats().evictions == 1
    assert cache.stats().bytes == 3 * entry


def test_byte_budget_evicts_until_under() -> None:
    cache = MemoryCache(max_bytes=100)
    for i in range(5):
        cache.set(f"k{i}", b"v" * 18)  # entry = 2 + 18 = 20; five fit exactly
    assert cache.stats().bytes == 5 * 20
    cache.set("big", b"v" * 57)  # entry = 3 + 57 = 60: must evict k0, k1, k2 (60 bytes)
    assert cache.lru_keys() == ["k3", "k4", "big"]
    assert cache.stats().bytes == 2 * 20 + 60
    assert cache.stats().evictions == 3


def test_value_larger_than_budget_is_not_stored_and_drops_the_old_value() -> None:
    cache = MemoryCache(max_bytes=50)
    cache.set("k", b"old")
    cache.set("k", b"x" * 50)  # entry = 1 + 50 > 50
    assert cache.get("k") is None  # never the stale b"old"
    assert cache.stats().bytes == 0
    assert len(cache) == 0


def test_ttl_with_injected_clock() -> None:
    clock = FakeClock()
    cache = MemoryCache(max_bytes=1000, default_ttl_s=10.0, clock=clock)
    cache.set("default", b"v")
    cache.set("explicit", b"v", ttl_s=2.0)
    clock.now += 2.0  # expiry is at set time + ttl, inclusive
    assert cache.get("explicit") is None
    assert cache.get("default") == b"v"
    clock.now += 8.0
    assert cache.get("default") is None
    assert cache.stats().bytes == 0


def test_no_default_ttl_never_expires() -> None:
    clock = FakeClock()
    cache = MemoryCache(max_bytes=1000, clock=clock)
    cache.set("k", b"v")
    clock.now += 1e9
    assert cache.get("k") == b"v"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"max_bytes": 0}, "max_bytes"), ({"max_bytes": 10, "default_ttl_s": 0}, "ttl")],
)
def test_bad_config_raises(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        MemoryCache(**kwargs)  # type: ignore[arg-type]


def test_many_threads_keep_the_accounting_consistent() -> None:
    cache = MemoryCache(max_bytes=2000)
    gets = [0] * 8

    def work(t: int) -> None:
        rng = random.Random(t)
        for _ in range(2000):
            key = f"k{rng.randrange(64)}"
            if rng.random() < 0.5:
                cache.set(key, bytes(rng.randrange(100)))
            else:
                cache.get(key)
                gets[t] += 1

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    s = cache.stats()
    assert s.hits + s.misses == sum(gets)
    held = {k: cache.get(k) for k in cache.lru_keys()}
    assert s.bytes == sum(size(k, v) for k, v in held.items() if v is not None)
    assert s.bytes <= 2000


ops = st.lists(
    st.tuples(
        st.sampled_from(["set", "get", "delete"]),
        st.sampled_from("abcdef"),
        st.integers(min_value=0, max_value=40),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_matches_a_reference_lru(script: list[tuple[str, str, int]]) -> None:
    """Reference model: a list in recency order; evict from the front while over budget."""
    budget = 60
    cache = MemoryCache(max_bytes=budget)
    model: list[tuple[str, bytes]] = []
    for op, key, n in script:
        found = next((i for i, (k, _) in enumerate(model) if k == key), None)
        if op == "get":
            expected = None if found is None else model[found][1]
            if found is not None:
                model.append(model.pop(found))
            assert cache.get(key) == expected
            continue
        if found is not None:
            model.pop(found)
        if op == "set":
            value = bytes([n]) * n
            cache.set(key, value)
            if size(key, value) <= budget:
                model.append((key, value))
            while sum(size(k, v) for k, v in model) > budget:
                model.pop(0)
        else:
            cache.delete(key)
        assert cache.lru_keys() == [k for k, _ in model]
