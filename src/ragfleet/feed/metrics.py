"""Prometheus metrics of the feed workers in this process (``ragfleet_feed_*``), labelled by
stream and group; without prometheus-client they are counted but not exported."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

FRESHNESS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class _Null:
    def inc(self, n: float = 1) -> None: ...
    def set(self, v: float) -> None: ...
    def observe(self, v: float) -> None: ...


class FeedMetrics:
    """One set per (stream, group); :meth:`get` shares it between workers of a process."""

    _made: ClassVar[dict[tuple[str, str], FeedMetrics]] = {}
    _families: ClassVar[dict[str, Any] | None] = None
    _lock = threading.Lock()

    def __init__(self, stream: str, group: str) -> None:
        fam = self._registered()
        labels = {"stream": stream, "group": group}

        def child(name: str) -> Any:
            return fam[name].labels(**labels) if fam else _Null()

        self.applied, self.stale, self.dead = child("applied"), child("stale"), child("dead")
        self.faults, self.reclaimed = child("faults"), child("reclaimed")
        self.lag, self.pending, self.batch_size = child("lag"), child("pending"), child("batch")
        self.freshness, self.batch_seconds = child("freshness"), child("batch_seconds")

    @classmethod
    def get(cls, stream: str, group: str) -> FeedMetrics:
        with cls._lock:
            key = (stream, group)
            if key not in cls._made:
                cls._made[key] = cls(stream, group)
            return cls._made[key]

    @classmethod
    def _registered(cls) -> dict[str, Any]:
        if cls._families is None:
            try:
                import prometheus_client as p
            except ImportError:
                cls._families = {}
                return cls._families
            lab = ["stream", "group"]
            cls._families = {
                "applied": p.Counter("ragfleet_feed_applied", "entries written", lab),
                "stale": p.Counter("ragfleet_feed_stale", "entries overtaken by a newer one", lab),
                "dead": p.Counter("ragfleet_feed_dead_letters", "entries dead-lettered", lab),
                "faults": p.Counter("ragfleet_feed_faults", "batches left pending by a fault", lab),
                "reclaimed": p.Counter("ragfleet_feed_reclaimed", "entries taken over", lab),
                "lag": p.Gauge("ragfleet_feed_lag_entries", "entries not yet delivered", lab),
                "pending": p.Gauge("ragfleet_feed_pending", "delivered, not acknowledged", lab),
                "batch": p.Gauge("ragfleet_feed_batch_size", "the adaptive batch size", lab),
                "freshness": p.Histogram(
                    "ragfleet_feed_freshness_seconds",
                    "publish to acknowledged (searchable)",
                    lab,
                    buckets=FRESHNESS_BUCKETS,
                ),
                "batch_seconds": p.Histogram("ragfleet_feed_batch_seconds", "one batch", lab),
            }
        return cls._families

    def observe_batch(self, applied: int, stale: int, dead: int, seconds: float,
                      size: int) -> None:  # fmt: skip
        self.applied.inc(applied)
        self.stale.inc(stale)
        self.dead.inc(dead)
        self.batch_seconds.observe(seconds)
        self.batch_size.set(size)
