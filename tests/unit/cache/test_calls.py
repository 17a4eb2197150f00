"""CallCache (the answer cache) and GuardedCache: hits, generations, single-flight, and
a failing backend that degrades to no cache."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from ragfleet.cache import CacheMetrics, CacheStats, CallCache, GuardedCache, MemoryCache
from ragfleet.types import CacheInfo


class BrokenBackend:
    """A backend whose every call fails, as a store on a dead network would."""

    def __init__(self) -> None:
        self.calls = 0

    def get(self, key: str) -> bytes | None:
        self.calls += 1
        raise ConnectionError("backend unreachable")

    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        self.calls += 1
        raise ConnectionError("backend unreachable")

    def delete(self, key: str) -> None: ...

    def clear(self) -> None: ...

    def stats(self) -> CacheStats:
        return CacheStats()


def answer(text: str) -> dict[str, Any]:
    return {"text": text, "citations": [1], "score": 0.5}


def test_hit_after_miss_and_generation_orphans() -> None:
    calls = CallCache(MemoryCache(1 << 20), "answers:test")
    computed: list[int] = []

    def fn() -> dict[str, Any]:
        computed.append(1)
        return answer("Paris")

    v1, i1 = calls.cached_call("Where is it?", {"generator": "extractive"}, "g1", fn)
    v2, i2 = calls.cached_call("where is it? ", {"generator": "extractive"}, "g1", fn)
    v3, i3 = calls.cached_call("where is it?", {"generator": "llm"}, "g1", fn)
    v4, i4 = calls.cached_call("where is it?", {"generator": "extractive"}, "g2", fn)
    assert v1 == v2 == v3 == v4 == answer("Paris")
    assert (i1, i2, i3, i4) == (CacheInfo(), CacheInfo(True, "exact"), CacheInfo(), CacheInfo())
    assert len(computed) == 3
    snap = calls.metrics.snapshot()["answers"]
    assert (snap["hit"], snap["miss"]) == (1, 3)


def test_uncacheable_values_are_returned_but_not_stored() -> None:
    backend = MemoryCache(1 << 20)
    calls = CallCache(backend, "answers:test")
    for _ in range(2):
        value, info = calls.cached_call(
            "q", {}, 1, lambda: {"truncated": True}, cacheable=lambda v: not v["truncated"]
        )
        assert value == {"truncated": True} and info.hit is False
    assert backend.stats().sets == 0


def test_concurrent_identical_calls_compute_once() -> None:
    calls = CallCache(MemoryCache(1 << 20), "answers:test")
    computed: list[int] = []
    barrier = threading.Barrier(8)

    def fn() -> dict[str, Any]:
        computed.append(1)
        time.sleep(0.05)
        return answer("once")

    def work() -> None:
        barrier.wait()
        calls.cached_call("q", {}, 1, fn)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert computed == [1]


def test_failing_backend_degrades_logs_once_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    backend, metrics = BrokenBackend(), CacheMetrics()
    calls = CallCache(backend, "answers:test", metrics=metrics)
    with caplog.at_level(logging.WARNING, logger="ragfleet.cache"):
        for _ in range(3):
            value, info = calls.cached_call("q", {}, 1, lambda: answer("still served"))
            assert value == answer("still served") and info.hit is False
    assert backend.calls == 6  # get and set per call, each failing
    assert metrics.snapshot()["answers"]["error"] == 6
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "ConnectionError" in warnings[0].getMessage()


def test_guarded_cache_logs_recovery(caplog: pytest.LogCaptureFixture) -> None:
    metrics = CacheMetrics()
    guarded = GuardedCache(BrokenBackend(), "results", metrics)
    with caplog.at_level(logging.INFO, logger="ragfleet.cache"):
        assert guarded.lookup("k", bytes) is None
        guarded.backend = MemoryCache(1 << 10)  # the store comes back
        guarded.store("k", lambda: b"v")
        assert guarded.lookup("k", bytes) == b"v"
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.INFO]
    snap = metrics.snapshot()["results"]
    assert (snap["hit"], snap["miss"], snap["error"]) == (1, 0, 1)


def test_a_failing_encoder_is_counted_not_raised() -> None:
    metrics = CacheMetrics()
    guarded = GuardedCache(MemoryCache(1 << 10), "results", metrics)

    def encode() -> bytes:
        raise TypeError("Object of type set is not JSON serializable")

    guarded.store("k", encode)
    assert metrics.snapshot()["results"]["error"] == 1
