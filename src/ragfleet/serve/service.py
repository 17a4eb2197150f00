"""What the routes share: the collections, their pipelines, keys, limits and metrics.

:meth:`Service.instrument` puts two wrappers into each collection's searcher for as long
as the server runs (and :meth:`Service.close` takes them out again): a
:class:`BatchingEncoder` in front of the query encoder and a :class:`TimedShard` around
each shard, so that search results are unchanged but concurrent queries are embedded
together and every shard call is timed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from ragfleet.collection import Collection
from ragfleet.generate.extractive import Extractive
from ragfleet.pipeline import Pipeline
from ragfleet.serve.auth import AuthError, KeyRecord, KeyStore, Scope
from ragfleet.serve.authn import Authenticator
from ragfleet.serve.batching import BatchingEncoder
from ragfleet.serve.errors import ApiError
from ragfleet.serve.limits import Admission, RateLimiter
from ragfleet.serve.logging import LOGGER
from ragfleet.serve.metrics import ServeMetrics, timed_shards
from ragfleet.serve.replicas import ReplicaCollector
from ragfleet.serve.settings import ServeSettings
from ragfleet.serve.tracing import Tracing

T = TypeVar("T")


def _searcher(col: Collection, settings: ServeSettings) -> Any:
    """The collection, or a :class:`~ragfleet.cache.search.CachedSearch` in front of it
    when the server has a result cache."""
    if not settings.cache_bytes:
        return col
    from ragfleet.cache.factory import cache_backend
    from ragfleet.cache.search import CachedSearch

    backend = cache_backend(settings.cache_url, max_bytes=settings.cache_bytes)
    return CachedSearch(col, backend)


def _pipeline(
    col: Collection, searcher: Any, generator: Extractive | None, settings: ServeSettings
) -> Pipeline:
    """``/ask``'s pipeline over ``searcher``, reranking with ``settings.reranker`` (over the
    collection's stored token vectors for ``late``) when one is configured."""
    if not settings.reranker or (settings.reranker == "late" and not col.has_token_vectors):
        return Pipeline(searcher, generator=generator)
    from ragfleet.pipeline import PipelineConfig
    from ragfleet.rerank import RerankConfig, load_reranker

    n = settings.rerank_n
    rr = load_reranker(
        settings.reranker, RerankConfig(candidates=n), retriever=col,
        late_weight=settings.late_weight,
    )  # fmt: skip
    config = PipelineConfig(
        budget_ms=settings.ask_budget_ms, k=max(20, n), rerank_candidates=n,
        min_rerank_candidates=min(5, n),
    )  # fmt: skip
    return Pipeline(searcher, rr, generator=generator, config=config)


class Service:
    """State of one server (see the module docstring)."""

    def __init__(
        self,
        collections: Mapping[str, Collection],
        settings: ServeSettings,
        keys: KeyStore,
        pipelines: Mapping[str, Pipeline] | None = None,
    ) -> None:
        self.collections = dict(collections)
        self.settings = settings
        self.keys = keys
        self.searchers = {name: _searcher(col, settings) for name, col in collections.items()}
        self.pipelines = dict(pipelines or {})
        for name, searcher in self.searchers.items():
            if name not in self.pipelines:
                # answers without the dense term unless asked: see ServeSettings.answer_dense
                gen = None if settings.answer_dense else Extractive()
                self.pipelines[name] = _pipeline(collections[name], searcher, gen, settings)
        self.metrics = ServeMetrics()
        self.metrics.registry.register(ReplicaCollector(self.collections))
        self.limiter = RateLimiter(settings.rate_per_s, settings.burst)
        self.admission = Admission(settings.max_inflight)
        self.authenticator = Authenticator(keys)
        self.tracing = Tracing(settings.trace_exporter)
        self._saved: dict[str, tuple[Any, list[Any]]] = {}
        self._answer_encoders: list[tuple[Extractive, Any]] = []
        self.ready = False

    def instrument(self) -> None:
        """Wrap each searcher's encoder (micro-batching) and shards (timing), then warm
        each /ask pipeline up once (:meth:`Pipeline.warm_up`)."""
        for name, col in self.collections.items():
            if name in self._saved:
                continue
            searcher = col.searcher
            self._saved[name] = (searcher.encoder, list(searcher.shards))
            if self.settings.batching:
                searcher.encoder = BatchingEncoder(
                    searcher.encoder, self.settings.batch_max, self.settings.batch_wait_ms,
                    on_batch=self.metrics.batch.observe,
                )  # fmt: skip
                self._swap_answer_encoder(name, searcher.encoder)
            searcher.shards = timed_shards(searcher.shards, self.metrics, name)
        for name, pipe in self.pipelines.items():
            try:  # observed costs, not priors, plan the first real request's budget
                pipe.warm_up("what is this collection about?")
            except Exception as e:  # an unusable collection still serves its errors per route
                logging.getLogger(LOGGER).warning(
                    "warm-up failed", extra={"fields": {"collection": name, "error": repr(e)}}
                )
        self.ready = True

    def _swap_answer_encoder(self, name: str, batcher: BatchingEncoder) -> None:
        """Point the /ask pipeline's extractive generators at ``batcher``, so their sentence
        encodes share the batcher's thread with the queries; :meth:`close` undoes it."""
        pipe = self.pipelines.get(name)
        for gen in (getattr(pipe, "generator", None), getattr(pipe, "fallback", None)):
            if isinstance(gen, Extractive) and gen.encoder is not None:
                self._answer_encoders.append((gen, gen.encoder))
                gen.encoder = batcher

    def close(self) -> None:
        """Undo :meth:`instrument` and flush traces."""
        self.ready = False
        for name, (encoder, shards) in self._saved.items():
            searcher = self.collections[name].searcher
            if isinstance(searcher.encoder, BatchingEncoder):
                searcher.encoder.close()
            searcher.encoder, searcher.shards = encoder, shards
        self._saved.clear()
        for gen, encoder in self._answer_encoders:
            gen.encoder = encoder
        self._answer_encoders.clear()
        self.tracing.shutdown()
        self.authenticator.close()

    def authorize(self, record: KeyRecord | None, scope: Scope, collection: str | None) -> str:
        """The key's name if the key the door authenticated (``record``) may do ``scope``
        on ``collection``; raises ``AuthError`` (401/403) or ``ApiError`` (429 when over
        its rate)."""
        if record is None:
            raise AuthError(401, "unauthenticated", "send an API key: Authorization: Bearer KEY")
        record.require(scope, collection)
        retry = self.limiter.check(record.name)
        if retry:
            self.metrics.shed.labels("rate").inc()
            raise ApiError(
                429, "rate_limited", f"key {record.name!r} is over its rate limit; slow down",
                {"Retry-After": str(retry)},
            )  # fmt: skip
        return record.name

    def collection(self, name: str) -> Collection:
        col = self.collections.get(name)
        if col is None:
            raise ApiError(404, "not_found", f"no collection named {name!r}; see GET /readyz")
        return col

    def check_text(self, field: str, text: str) -> None:
        if len(text) > self.settings.max_query_chars:
            raise ApiError(
                422, "limit_exceeded",
                f"{field} has {len(text)} characters; this server takes at most "
                f"{self.settings.max_query_chars}",
            )  # fmt: skip

    def check_k(self, k: int) -> None:
        if k > self.settings.max_k:
            raise ApiError(
                422, "limit_exceeded", f"k={k} is above this server's max_k={self.settings.max_k}"
            )

    def check_writable(self) -> None:
        if self.settings.read_only:
            raise ApiError(
                409, "read_only",
                "this server is read-only (started with --read-only or --workers > 1); "
                "send writes to the collection's writer: a server with --workers 1 and "
                "without --read-only",
            )  # fmt: skip

    def check_batch(self, n: int) -> None:
        if n > self.settings.max_batch_docs:
            raise ApiError(
                422, "limit_exceeded",
                f"{n} documents in one batch; this server takes at most "
                f"{self.settings.max_batch_docs} — split the batch",
            )  # fmt: skip

    async def timed(
        self, endpoint: str, collection: str, fn: Callable[[], T], body_of: Callable[[T], Any]
    ) -> dict[str, Any]:
        """Run ``fn`` on a worker thread; record its stages in metrics and tracing."""
        start = time.time_ns()
        out: dict[str, Any] = body_of(await run_in_threadpool(fn))
        if "timings_ms" in out:  # a search or an ask
            self.metrics.observe_response(endpoint, out)
        attrs = {"ragfleet.collection": collection, "ragfleet.endpoint": endpoint}
        self.tracing.record(endpoint, start, time.time_ns(), out.get("timings_ms", {}), attrs)
        return out
