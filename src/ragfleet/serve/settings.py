"""The service's settings: one frozen dataclass, validated on construction."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

from ragfleet.errors import ConfigError

TraceExporter = Literal["none", "console", "otlp"]


def default_max_inflight() -> int:
    """4 per core, from Little's law at the knee of the open-loop curve
    (``python -m benchmarks.serving_path``, 2 cores, 1,000 SciFact docs, hybrid k=10):
    /search kept up to 63 requests/s at p99 72 ms → 65/s × 72 ms ≈ 5 in flight (and to 107/s
    at p99 149 ms → 16, past a burst at 89/s), /ask to 55/s at p99 122 ms → 8. Past the knee
    more requests in flight only queue (p99 1.8 s at 150/s). Measure yours with ``ragfleet
    bench load --rate ...``: it prints the limit for your latency target."""
    return 4 * max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ServeSettings:
    """Limits, load control and observability switches of one server.

    Args:
        max_body_bytes: a request body above this is refused with 413.
        max_k: largest ``k`` a search may ask for.
        max_query_chars: longest query or question, in characters.
        max_batch_docs: most documents in one upsert.
        max_request_chunks: most chunks one upsert may create (checked after chunking,
            before embedding: 1,024 chunks embed in ~2 min on 2 cores).
        rate_per_s, burst: the per-key token bucket (``burst`` tokens, refilled at
            ``rate_per_s``); ``rate_per_s = 0`` turns rate limiting off.
        max_inflight: requests served at once; the next one gets 429 with Retry-After
            (default :func:`default_max_inflight`: 4 per core).
        body_timeout_s: an admitted request must deliver its whole body within this (408).
        retry_after_s: the Retry-After a shed request is told.
        batching: embed the queries of concurrent searches together.
        batch_max, batch_wait_ms: a micro-batch takes the queries queued, up to
            ``batch_max``; ``batch_wait_ms`` > 0 makes it wait that long for more (0, the
            default: a lone query is encoded at once).
        ask_budget_ms: default latency budget of ``/ask``.
        answer_dense: let ``/ask``'s extractive answers add the encoder's similarity term
            (citation precision 0.840 vs 0.808 on SQuAD, but ~80 ms of model time per
            answer: on 2 cores /ask saturates near 10 QPS instead of ~50); off by default.
        cors_origins: origins allowed by CORS; empty (the default) sends no CORS headers.
        trace_exporter: OpenTelemetry exporter (``none`` by default).
        cache_bytes: in-process result cache per server (``ragfleet.cache``); 0: off.
        cache_url: a Redis URL shared by several servers, behind the in-process cache.
        read_only: open the collections read-only and refuse writes (409): several
            worker processes, or a server beside another writer (one writer per collection).
        reranker: ``/ask`` reranks with this (``late``: MaxSim over stored token vectors,
            for collections built with them); ``""``: no reranking.
        rerank_n: candidates ``/ask`` retrieves and re-scores with ``reranker``.
        late_weight: with ``reranker="late"``, the weight of the first-stage order in the
            reranked order (:mod:`ragfleet.rerank.interpolate`); ``None``: the default, 0.4.
    """

    max_body_bytes: int = 1 << 20
    max_k: int = 100
    max_query_chars: int = 2048
    max_batch_docs: int = 1000
    max_request_chunks: int = 1024
    rate_per_s: float = 100.0
    burst: int = 200
    max_inflight: int = field(default_factory=lambda: default_max_inflight())
    body_timeout_s: float = 30.0
    retry_after_s: int = 1
    batching: bool = True
    batch_max: int = 32
    batch_wait_ms: float = 0.0
    ask_budget_ms: float = 1000.0
    answer_dense: bool = False
    cors_origins: tuple[str, ...] = ()
    trace_exporter: TraceExporter = "none"
    cache_bytes: int = 0
    cache_url: str | None = None
    read_only: bool = False
    reranker: str = ""
    rerank_n: int = 50
    late_weight: float | None = None

    def __post_init__(self) -> None:
        positive = {
            "max_body_bytes": self.max_body_bytes,
            "max_k": self.max_k,
            "max_query_chars": self.max_query_chars,
            "max_batch_docs": self.max_batch_docs,
            "max_request_chunks": self.max_request_chunks,
            "burst": self.burst,
            "max_inflight": self.max_inflight,
            "retry_after_s": self.retry_after_s,
            "batch_max": self.batch_max,
            "ask_budget_ms": self.ask_budget_ms,
            "body_timeout_s": self.body_timeout_s,
            "rerank_n": self.rerank_n,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ConfigError(f"{name} must be > 0, got {value}")
        if self.rate_per_s < 0 or self.batch_wait_ms < 0 or self.cache_bytes < 0:
            raise ConfigError("rate_per_s, batch_wait_ms and cache_bytes must be >= 0")
        if not self.batch_wait_ms <= 1000:  # also refuses NaN and inf
            raise ConfigError(f"batch_wait_ms must be at most 1000, got {self.batch_wait_ms}")
        if self.cache_url and not self.cache_bytes:
            raise ConfigError("cache_url needs cache_bytes > 0 (the in-process level)")
        if self.late_weight is not None:
            from ragfleet.rerank.interpolate import check_weight

            check_weight(self.late_weight)
            if self.reranker != "late":
                raise ConfigError("late_weight needs reranker='late'")
        if self.trace_exporter not in ("none", "console", "otlp"):
            raise ConfigError(
                f"trace_exporter must be none, console or otlp, got {self.trace_exporter!r}"
            )


FleetBackend = Literal["local", "ray"]
MAX_REPLICAS = 16


@dataclass(frozen=True)
class FleetSettings:
    """Serve each collection as a :class:`~ragfleet.fleet.Fleet`: ``replicas`` replicas of
    every shard, on a Ray cluster (``backend="ray"``: the one at ``address``, else the one
    ``ragfleet cluster up`` recorded) or in the server's process (``"local"``). A fleet
    lives in one server process, so it is served with one worker.
    """

    backend: FleetBackend = "ray"
    replicas: int = 2
    address: str | None = None

    def __post_init__(self) -> None:
        if self.backend not in ("local", "ray"):
            raise ConfigError(
                f"backend must be ray or local, got {self.backend!r}: --backend ray serves "
                "replicas on a Ray cluster, --backend local in this process"
            )
        if isinstance(self.replicas, bool) or not 1 <= self.replicas <= MAX_REPLICAS:
            raise ConfigError(
                f"replicas must be between 1 and {MAX_REPLICAS}, got {self.replicas}: one "
                "replica per node survives the loss of a node (--replicas 2 for two nodes)"
            )
        if self.backend == "local" and self.address is not None:
            raise ConfigError("an address is for --backend ray; drop --address or use ray")
