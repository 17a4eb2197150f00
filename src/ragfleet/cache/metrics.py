"""Per-cache counters and latency samples, thread-safe, snapshotted for the service.

Each named cache (``"results"``, ``"embeddings"``, ``"semantic"``…) counts four outcomes —
``hit``, ``miss``, ``stale_skip`` (an entry found but refused: older generation, below the
threshold) and ``error`` (a backend failure degraded to a miss) — and keeps the latest
``max_samples`` latencies per outcome in a ring buffer, from which the snapshot reports
p50/p99 (numpy's linear-interpolation percentiles).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Literal

import numpy as np

from ragfleet.errors import ConfigError, InputError

Outcome = Literal["hit", "miss", "stale_skip", "error"]
OUTCOMES: tuple[Outcome, ...] = ("hit", "miss", "stale_skip", "error")


class _Series:
    __slots__ = ("counts", "latencies")

    def __init__(self, max_samples: int) -> None:
        self.counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        self.latencies: dict[str, deque[float]] = {o: deque(maxlen=max_samples) for o in OUTCOMES}


class CacheMetrics:
    """Counters and latency rings per cache name.

    Args:
        max_samples: latencies kept per (cache, outcome); older ones are dropped.
    """

    def __init__(self, max_samples: int = 4096) -> None:
        if max_samples <= 0:
            raise ConfigError(f"max_samples must be > 0, got {max_samples}")
        self.max_samples = max_samples
        self._lock = threading.Lock()
        self._series: dict[str, _Series] = {}

    def record(self, cache: str, outcome: Outcome, latency_s: float | None = None) -> None:
        """Count one ``outcome`` of ``cache`` and, if given, its latency in seconds."""
        if outcome not in OUTCOMES:
            raise InputError(f"cache outcome must be one of {OUTCOMES}, got {outcome!r}")
        with self._lock:
            series = self._series.get(cache)
            if series is None:
                series = self._series[cache] = _Series(self.max_samples)
            series.counts[outcome] += 1
            if latency_s is not None:
                series.latencies[outcome].append(latency_s)

    def snapshot(self) -> dict[str, Any]:
        """``{cache: {"hit": n, "miss": n, "stale_skip": n, "error": n, "hit_rate": r,
        "latency_ms": {outcome: {"n": n, "p50": ms, "p99": ms}}}}``; JSON-serialisable.

        ``hit_rate = hit / (hit + miss)`` (0.0 before any lookup); outcomes without latency
        samples are left out of ``latency_ms``.
        """
        with self._lock:
            copied = {
                name: (dict(s.counts), {o: list(d) for o, d in s.latencies.items()})
                for name, s in self._series.items()
            }
        return {name: _summary(counts, lat) for name, (counts, lat) in copied.items()}

    def reset(self) -> None:
        """Forget every counter and sample."""
        with self._lock:
            self._series.clear()


def _summary(counts: dict[str, int], latencies: dict[str, list[float]]) -> dict[str, Any]:
    looked_up = counts["hit"] + counts["miss"]
    out: dict[str, Any] = dict(counts)
    out["hit_rate"] = counts["hit"] / looked_up if looked_up else 0.0
    out["latency_ms"] = {
        o: {
            "n": len(xs),
            "p50": float(np.percentile(xs, 50)) * 1e3,
            "p99": float(np.percentile(xs, 99)) * 1e3,
        }
        for o, xs in latencies.items()
        if xs
    }
    return out
