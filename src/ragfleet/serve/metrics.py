"""Prometheus metrics of one server, on a registry of its own (served at ``/metrics``).

- ``ragfleet_request_seconds{route, status}``: wall time per HTTP request;
- ``ragfleet_stage_seconds{endpoint, stage}``: each pipeline stage (embed, search, merge,
  fuse, fetch, rerank, generate, total) from the response's ``timings_ms``;
- ``ragfleet_shard_search_seconds{collection, shard}``: one shard's search call;
- ``ragfleet_coverage{endpoint}``: fraction of shards that answered in time;
- ``ragfleet_cache_requests_total{endpoint, result}``: cache hits and misses (hit ratio =
  ``rate(…{result="hit"}) / rate(…)``);
- ``ragfleet_embed_batch_size``: texts per micro-batch;
- ``ragfleet_inflight``, ``ragfleet_shed_total{reason}``: admission and rate limiting;
- ``ragfleet_replica_*{collection, shard, replica}``: calls, failures, in flight, health
  and call time of each replica of a fleet (:mod:`ragfleet.serve.replicas`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ragfleet._optional import require

if TYPE_CHECKING:
    from ragfleet.cluster.client import ShardClient
    from ragfleet.index.shard import ShardQuery, ShardResult

_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.0, 2.0, 5.0,
)  # fmt: skip
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
_COVERAGE_BUCKETS = (0.0, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)


class ServeMetrics:
    """The server's metric families."""

    def __init__(self) -> None:
        prom = require("prometheus_client", "serve")
        self.registry = prom.CollectorRegistry()
        hist, reg = prom.Histogram, self.registry
        self.request = hist(
            "ragfleet_request_seconds", "HTTP request wall time", ["route", "status"],
            buckets=_LATENCY_BUCKETS, registry=reg,
        )  # fmt: skip
        self.stage = hist(
            "ragfleet_stage_seconds", "pipeline stage wall time", ["endpoint", "stage"],
            buckets=_LATENCY_BUCKETS, registry=reg,
        )  # fmt: skip
        self.shard = hist(
            "ragfleet_shard_search_seconds", "one shard's search call", ["collection", "shard"],
            buckets=_LATENCY_BUCKETS, registry=reg,
        )  # fmt: skip
        self.coverage = hist(
            "ragfleet_coverage", "fraction of shards that answered", ["endpoint"],
            buckets=_COVERAGE_BUCKETS, registry=reg,
        )  # fmt: skip
        self.cache = prom.Counter(
            "ragfleet_cache_requests",
            "cache lookups by result",
            ["endpoint", "result"],
            registry=reg,
        )
        self.batch = hist(
            "ragfleet_embed_batch_size", "texts per query micro-batch", buckets=_BATCH_BUCKETS,
            registry=reg,
        )  # fmt: skip
        self.inflight = prom.Gauge("ragfleet_inflight", "requests in flight", registry=reg)
        self.shed = prom.Counter(
            "ragfleet_shed", "requests refused with 429", ["reason"], registry=reg
        )
        self._latest = prom.generate_latest
        self.content_type: str = prom.CONTENT_TYPE_LATEST

    def render(self) -> bytes:
        out: bytes = self._latest(self.registry)
        return out

    def observe_response(self, endpoint: str, body: Mapping[str, Any]) -> None:
        """Stage times, coverage and cache outcome of one search or ask response."""
        for stage, ms in body.get("timings_ms", {}).items():
            self.stage.labels(endpoint, stage).observe(float(ms) / 1e3)
        self.coverage.labels(endpoint).observe(float(body.get("coverage", 1.0)))
        cache = body.get("cache")
        if isinstance(cache, Mapping):
            self.cache.labels(endpoint, "hit" if cache.get("hit") else "miss").inc()


class TimedShard:
    """A shard client whose ``search`` is timed into ``ragfleet_shard_search_seconds``;
    everything else is passed to the wrapped shard."""

    def __init__(self, inner: ShardClient, metrics: ServeMetrics, collection: str) -> None:
        self._inner = inner
        self._hist = metrics.shard.labels(collection, str(inner.shard_id))

    @property
    def shard_id(self) -> int:
        return self._inner.shard_id

    def search(self, q: ShardQuery) -> ShardResult:
        t = time.perf_counter()
        try:
            return self._inner.search(q)
        finally:
            self._hist.observe(time.perf_counter() - t)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def timed_shards(
    shards: Sequence[ShardClient], metrics: ServeMetrics, collection: str
) -> list[Any]:
    """Each shard wrapped in a :class:`TimedShard` (once: wrapped ones are kept)."""
    return [s if isinstance(s, TimedShard) else TimedShard(s, metrics, collection) for s in shards]
