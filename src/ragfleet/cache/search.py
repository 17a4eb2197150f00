"""The cached read path: exact result cache, optional semantic cache, single-flight.

``CachedSearch(retriever, backend).search(query, k=…, mode=…)`` answers like the
retriever it fronts — any :class:`~ragfleet.search.retriever.Retriever`: a Collection, a
Fleet, a RemoteCollection — is itself a Retriever, and says where the answer came from in
``Results.cache``:

1. **exact**: key = :func:`~ragfleet.cache.keys.result_key` over the normalised query,
   the request *resolved* against the retriever's defaults
   (:meth:`SearchRequest.cache_fields <ragfleet.search.request.SearchRequest.cache_fields>`:
   every field but the timeout, so a new search parameter is part of the key without
   anyone listing it), the retriever's search defaults (fusion, depth…) and its
   ``generation`` — any acknowledged write changes the generation, so every older entry
   becomes unreachable at once, without a scan;
2. **semantic** (off unless ``semantic=`` is given): the query is embedded once (through
   the query-embedding cache), the nearest cached query with the same parameters and
   generation is found by cosine (:class:`~ragfleet.cache.semantic.SemanticCache`), and
   if ``cos >= threshold`` its results are returned with the matched query and cosine;
3. otherwise the real search runs, once per concurrent burst of identical misses
   (:class:`~ragfleet.cache.singleflight.SingleFlight`), and a complete result
   (``coverage == 1``) is stored as JSON (:mod:`ragfleet.cache.codec`).

A cache that fails (dead Redis, a corrupt entry) degrades to no cache: counted as
``error`` in the metrics, logged once, and the query is searched as if uncached.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ragfleet.cache.base import CacheBackend
from ragfleet.cache.codec import results_from_bytes, results_to_bytes
from ragfleet.cache.embeddings import EmbeddingCache, embed_with_cache
from ragfleet.cache.guard import GuardedCache
from ragfleet.cache.keys import canonical_json, result_key
from ragfleet.cache.metrics import CacheMetrics
from ragfleet.cache.semantic import SemanticCache
from ragfleet.cache.singleflight import SingleFlight
from ragfleet.config import SearchConfig
from ragfleet.errors import ConfigError
from ragfleet.search.request import SearchRequest
from ragfleet.search.retriever import Retriever, RetrieverBase
from ragfleet.search.searcher import check_queries
from ragfleet.types import CacheInfo, Results

if TYPE_CHECKING:
    from ragfleet.embed.base import Encoder

EXACT = CacheInfo(hit=True, kind="exact")


@dataclass(frozen=True, slots=True)
class SemanticCacheConfig:
    """The semantic cache: reuse results of a query with ``cos >= threshold``.

    ``max_entries`` bounds each parameter set's cache of queries; ``max_param_sets`` bounds
    how many distinct parameter sets (k, mode, filter…) keep one, least recently used first.
    """

    threshold: float = 0.95
    max_entries: int = 10_000
    max_param_sets: int = 4

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"semantic threshold must be in (0, 1], got {self.threshold}")
        if self.max_entries < 1 or self.max_param_sets < 1:
            raise ConfigError("semantic max_entries and max_param_sets must be >= 1")


class CachedSearch(RetrieverBase):
    """A retriever behind the result, semantic and query-embedding caches.

    Args:
        retriever: what is searched on a miss (any Retriever).
        backend: where results live; ``None`` disables the result cache (single-flight
            still applies).
        semantic: enables the semantic cache (needs ``backend``).
        embeddings: where query vectors live (used by the semantic cache); ``None``: no
            embedding cache.
        metrics: shared metrics (a fresh one if None); series ``results``, ``semantic``,
            ``embeddings:query``.
        namespace: identifies the collection in keys shared through Redis (default: the
            retriever's ``identity``, ``"<directory name>@<creation time>"``).
        ttl_s: TTL of stored results (``None``: the backend's default).
    """

    def __init__(
        self,
        retriever: Retriever,
        backend: CacheBackend | None,
        *,
        semantic: SemanticCacheConfig | None = None,
        embeddings: CacheBackend | None = None,
        metrics: CacheMetrics | None = None,
        namespace: str | None = None,
        ttl_s: float | None = None,
    ) -> None:
        if semantic is not None and backend is None:
            raise ConfigError("the semantic cache needs a result backend to hold its results")
        if semantic is not None and retriever.encoder is None:
            raise ConfigError("the semantic cache embeds queries: it needs a local retriever")
        self.retriever = retriever
        self.metrics = metrics or CacheMetrics()
        self.semantic = semantic
        self.namespace = f"results:{namespace or retriever.identity}"
        self._results = (
            None if backend is None else GuardedCache(backend, "results", self.metrics, ttl_s)
        )
        self._queries = None
        enc = retriever.encoder
        if embeddings is not None and enc is not None:
            self._queries = EmbeddingCache(embeddings, enc.dim, kind="query", metrics=self.metrics)
        self._fingerprint = enc.contract.fingerprint() if enc is not None else ""
        self._flight: SingleFlight[Results] = SingleFlight()
        self._semantic: OrderedDict[str, SemanticCache] = OrderedDict()
        self._lock = threading.Lock()

    # -- the Retriever protocol ---------------------------------------------------------
    @property
    def generation(self) -> str:
        return self.retriever.generation

    @property
    def defaults(self) -> SearchConfig:
        return self.retriever.defaults

    @property
    def identity(self) -> str:
        return self.retriever.identity

    @property
    def encoder(self) -> Encoder | None:
        return self.retriever.encoder

    def search(self, query: str, req: SearchRequest | None = None, **params: Any) -> Results:
        """Search one query (as the retriever does), cached; single-flight across
        concurrent identical misses, and the semantic cache when configured."""
        req = SearchRequest.of(req, **params)
        check_queries([query])
        t0 = time.perf_counter()
        generation = self.retriever.generation
        params = self.key_params(req)
        key = result_key(self.namespace, query, params, generation)
        cached = self._lookup(key)
        if cached is not None:
            return _served(cached, EXACT, t0)
        vector = semantic = None
        if self.semantic is not None:
            vector = self._query_vector(query)
            semantic = self._semantic_for(params, self.semantic)
            found = self._semantic_lookup(semantic, vector, generation)
            if found is not None:
                return _served(found[0], found[1], t0)
        lookup_ms = (time.perf_counter() - t0) * 1e3
        results, _ = self._flight.do(key, lambda: self._compute(query, req, key))
        if semantic is not None and vector is not None and _complete(results):
            semantic.add(vector, query, key, generation)
        return _with_lookup(results, lookup_ms)

    def search_batch(
        self, queries: Sequence[str], req: SearchRequest | None = None
    ) -> list[Results]:
        """Search many queries: cached ones from the exact cache, the misses in one
        ``search_batch`` call of the retriever (one encoder call, one scatter; duplicates
        searched once). The semantic cache and single-flight are :meth:`search`'s only."""
        req = req or SearchRequest()
        check_queries(queries)
        t0 = time.perf_counter()
        generation, params = self.retriever.generation, self.key_params(req)
        keys = [result_key(self.namespace, q, params, generation) for q in queries]
        out: list[Results | None] = [self._lookup(key) for key in keys]
        todo: dict[str, str] = {}  # key → first query with it (duplicates searched once)
        for q, key, cached in zip(queries, keys, out, strict=True):
            if cached is None:
                todo.setdefault(key, q)
        lookup_ms = (time.perf_counter() - t0) * 1e3
        computed: dict[str, Results] = {}
        if todo:
            fresh = self.retriever.search_batch(list(todo.values()), req)
            computed = dict(zip(todo, fresh, strict=True))
            for key, results in computed.items():
                self._store(key, results)
        return [
            _served(r, EXACT, t0) if r is not None else _with_lookup(computed[key], lookup_ms)
            for r, key in zip(out, keys, strict=True)
        ]

    def key_params(self, req: SearchRequest) -> dict[str, Any]:
        """Everything that changes the answer: the request resolved against the
        retriever's defaults (so ``k=None`` and ``k=<default>`` share entries) minus its
        timeout, and the defaults themselves (fusion, alpha…)."""
        defaults = self.retriever.defaults
        return {**req.resolve(defaults).cache_fields(), "defaults": dataclasses.asdict(defaults)}

    def stats(self) -> dict[str, Any]:
        """The metrics snapshot, for the service's ``/metrics`` and ``/stats``."""
        return self.metrics.snapshot()

    # -- internals --------------------------------------------------------------------------
    def _lookup(self, key: str, *, record: bool = True) -> Results | None:
        if self._results is None:
            return None
        return self._results.lookup(key, results_from_bytes, record=record)

    def _store(self, key: str, results: Results) -> None:
        if self._results is not None and _complete(results):
            self._results.store(key, lambda: results_to_bytes(results))

    def _compute(self, query: str, req: SearchRequest, key: str) -> Results:
        results = self.retriever.search_batch([query], req)[0]
        self._store(key, results)
        return results

    def _query_vector(self, query: str) -> npt.NDArray[np.float32]:
        encoder = self.retriever.encoder
        if encoder is None:
            raise ConfigError("the semantic cache needs a local retriever to embed queries")

        def embed(texts: list[str]) -> npt.NDArray[np.float32]:
            return encoder.encode(texts, kind="query")

        if self._queries is None:
            vectors = embed([query])
        else:
            vectors = embed_with_cache(self._queries, [query], [query], self._fingerprint, embed)
        row: npt.NDArray[np.float32] = vectors[0]
        return row

    def _semantic_for(self, params: dict[str, Any], cfg: SemanticCacheConfig) -> SemanticCache:
        """The semantic cache of this parameter set (LRU over ``cfg.max_param_sets``)."""
        digest = canonical_json(params)
        with self._lock:
            cache = self._semantic.get(digest)
            if cache is None:
                dim = self.retriever.encoder.dim if self.retriever.encoder is not None else 0
                cache = SemanticCache(dim, cfg.threshold, cfg.max_entries)
                self._semantic[digest] = cache
                if len(self._semantic) > cfg.max_param_sets:
                    self._semantic.popitem(last=False)
            self._semantic.move_to_end(digest)
            return cache

    def _semantic_lookup(
        self, cache: SemanticCache, vector: npt.NDArray[np.float32], generation: str
    ) -> tuple[Results, CacheInfo] | None:
        """The results of the nearest cached query above the threshold, recorded as a
        semantic ``hit``, ``miss`` (none close enough) or ``stale_skip`` (its entry is gone)."""
        t0 = time.perf_counter()
        match = cache.lookup(vector, generation)
        cached = None if match is None else self._lookup(match.key, record=False)
        latency = time.perf_counter() - t0
        if match is None or cached is None:
            self.metrics.record("semantic", "miss" if match is None else "stale_skip", latency)
            return None
        self.metrics.record("semantic", "hit", latency)
        info = CacheInfo(True, "semantic", match.query_text, match.cosine)
        return cached, info


def _complete(results: Results) -> bool:
    """Only answers from every shard are cached: a partial one must not outlive its outage."""
    return results.coverage >= 1.0 and not results.missing_shards


def _served(results: Results, info: CacheInfo, t0: float) -> Results:
    """A cache hit: its cache info, and the time this request took as its timings."""
    ms = round((time.perf_counter() - t0) * 1e3, 3)
    return dataclasses.replace(results, cache=info, timings_ms={"cache": ms, "total": ms})


def _with_lookup(results: Results, lookup_ms: float) -> Results:
    """A miss: the search's timings plus the cache lookup that preceded it."""
    times = dict(results.timings_ms)
    times["cache"] = round(lookup_ms, 3)
    times["total"] = round(times.get("total", 0.0) + lookup_ms, 3)
    return dataclasses.replace(results, timings_ms=times, cache=CacheInfo())
