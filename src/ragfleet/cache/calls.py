"""A cache for any expensive call whose value is JSON: the answer cache of ``ask``.

:meth:`CallCache.cached_call` keys the value by
:func:`~ragfleet.cache.keys.result_key` ``(namespace, query, params, generation)`` — so the
caller must name every parameter that changes the value (reranker, generator, budget…) and
the collection's generation, and a write orphans every older answer. Concurrent identical
misses run ``fn`` once (single-flight). A value the caller marks not ``cacheable`` (a
truncated answer, a partial result) is returned but not stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from ragfleet.cache.base import CacheBackend
from ragfleet.cache.guard import GuardedCache
from ragfleet.cache.keys import result_key
from ragfleet.cache.metrics import CacheMetrics
from ragfleet.cache.singleflight import SingleFlight
from ragfleet.types import CacheInfo

MISS = CacheInfo()
EXACT = CacheInfo(hit=True, kind="exact")


def _always(value: Any) -> bool:
    return True


class CallCache:
    """JSON values of calls, keyed by query, parameters and generation.

    Args:
        backend: where values live.
        namespace: key prefix, e.g. ``"answers:<collection>"``.
        name: the metrics series.
        metrics: shared metrics (a fresh one if None).
        ttl_s: TTL of stored values (``None``: the backend's default).
    """

    def __init__(
        self,
        backend: CacheBackend,
        namespace: str,
        *,
        name: str = "answers",
        metrics: CacheMetrics | None = None,
        ttl_s: float | None = None,
    ) -> None:
        self.namespace = namespace
        self.metrics = metrics or CacheMetrics()
        self._cache = GuardedCache(backend, name, self.metrics, ttl_s)
        self._flight: SingleFlight[Any] = SingleFlight()

    def cached_call(
        self,
        query: str,
        params: Mapping[str, Any],
        generation: int | str,
        fn: Callable[[], Any],
        *,
        cacheable: Callable[[Any], bool] = _always,
    ) -> tuple[Any, CacheInfo]:
        """``fn()``'s JSON value, from the cache when an equal call was made before.

        Args:
            query: the question (normalised in the key).
            params: every parameter that changes the value (JSON-serialisable).
            generation: the collection's generation (``Collection.generation``).
            fn: computes the value (a dict, list, str, number…; JSON round-trips it).
            cacheable: whether a computed value may be stored.

        Returns:
            ``(value, CacheInfo)``; the value is what JSON gives back, on a hit and a miss
            alike, so a caller never sees a difference between the two.
        """
        key = result_key(self.namespace, query, params, generation)
        value = self._cache.lookup(key, json.loads)
        if value is not None:
            return value, EXACT

        def compute() -> Any:
            raw = json.dumps(fn(), ensure_ascii=False, separators=(",", ":"))
            computed = json.loads(raw)
            if computed is not None and cacheable(computed):  # null would read as a miss
                self._cache.store(key, lambda: raw.encode("utf-8"))
            return computed

        value, _ = self._flight.do(key, compute)
        return value, MISS
