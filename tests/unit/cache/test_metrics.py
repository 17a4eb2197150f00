"""CacheMetrics: counts, hit rate, latency percentiles, bounded samples, threads."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from ragfleet.cache import CacheMetrics
from ragfleet.errors import ConfigError, InputError


def test_counts_hit_rate_and_percentiles() -> None:
    m = CacheMetrics()
    hit_lat = [0.001 * i for i in range(1, 101)]
    for x in hit_lat:
        m.record("results", "hit", x)
    for _ in range(300):
        m.record("results", "miss", 0.010)
    m.record("results", "stale_skip")
    m.record("results", "error")
    snap = m.snapshot()["results"]
    assert (snap["hit"], snap["miss"], snap["stale_skip"], snap["error"]) == (100, 300, 1, 1)
    assert snap["hit_rate"] == pytest.approx(100 / (100 + 300))
    assert snap["latency_ms"]["hit"]["n"] == 100
    assert snap["latency_ms"]["hit"]["p50"] == pytest.approx(np.percentile(hit_lat, 50) * 1e3)
    assert snap["latency_ms"]["hit"]["p99"] == pytest.approx(np.percentile(hit_lat, 99) * 1e3)
    assert snap["latency_ms"]["miss"]["p50"] == pytest.approx(10.0)
    assert "error" not in snap["latency_ms"]  # no samples recorded
    json.dumps(m.snapshot())  # the service can expose it as is


def test_caches_are_separate_and_samples_bounded() -> None:
    m = CacheMetrics(max_samples=10)
    for i in range(25):
        m.record("a", "hit", float(i))
    m.record("b", "miss", 1.0)
    snap = m.snapshot()
    assert snap["a"]["hit"] == 25
    assert snap["a"]["latency_ms"]["hit"]["n"] == 10
    assert snap["a"]["latency_ms"]["hit"]["p50"] == pytest.approx(
        np.percentile(range(15, 25), 50) * 1e3
    )
    assert (snap["b"]["hit"], snap["b"]["miss"], snap["b"]["hit_rate"]) == (0, 1, 0.0)
    m.reset()
    assert m.snapshot() == {}


def test_threads_do_not_lose_counts() -> None:
    m = CacheMetrics()

    def work() -> None:
        for _ in range(5000):
            m.record("c", "hit", 0.0)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert m.snapshot()["c"]["hit"] == 8 * 5000


def test_invalid_arguments_raise() -> None:
    with pytest.raises(InputError, match="outcome"):
        CacheMetrics().record("c", "expired")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_samples"):
        CacheMetrics(max_samples=0)
