"""One named cache in front of a backend that may fail: failures degrade to "no cache".

A query must never fail because its cache did. :class:`GuardedCache` calls a
:class:`~ragfleet.cache.base.CacheBackend` and turns any exception it raises (a custom
backend, a bug, a full disk) and any value that does not decode into a miss or a no-op,
counted as ``error`` in :class:`~ragfleet.cache.metrics.CacheMetrics` and logged once per
outage (again, once, when the cache works again). Every lookup records ``hit`` or ``miss``
with its latency under the cache's name.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from ragfleet.cache.base import CacheBackend, check_ttl
from ragfleet.cache.metrics import CacheMetrics

log = logging.getLogger("ragfleet.cache")
T = TypeVar("T")


class GuardedCache:
    """``backend`` as the cache called ``name``, degrading every failure to a miss.

    Args:
        backend: where values live.
        name: the metrics series (``"results"``, ``"embeddings"``, ``"answers"``…).
        metrics: where outcomes and latencies are recorded.
        ttl_s: TTL for stored values (``None``: the backend's default).
    """

    def __init__(
        self, backend: CacheBackend, name: str, metrics: CacheMetrics, ttl_s: float | None = None
    ) -> None:
        check_ttl(ttl_s)
        self.backend, self.name, self.metrics, self.ttl_s = backend, name, metrics, ttl_s
        self._lock = threading.Lock()
        self._failing = False

    def lookup(self, key: str, decode: Callable[[bytes], T], *, record: bool = True) -> T | None:
        """The decoded value under ``key``; ``None`` when absent, unreadable or on failure.

        ``record=False`` leaves hit/miss to the caller (errors are always counted).
        """
        t0 = time.perf_counter()
        try:
            raw = self.backend.get(key)
            value = None if raw is None else decode(raw)
        except Exception as e:  # degrade, count and log: the query goes on without a cache
            self._failed("get", key, e)
            return None
        self._succeeded()
        if record:
            latency = time.perf_counter() - t0
            self.metrics.record(self.name, "miss" if value is None else "hit", latency)
        return value

    def store(self, key: str, encode: Callable[[], bytes]) -> None:
        """Store ``encode()``; a failure to encode or store is counted and logged, never raised."""
        try:
            self.backend.set(key, encode(), self.ttl_s)
        except Exception as e:  # degrade, count and log: the answer is still returned
            self._failed("set", key, e)
            return
        self._succeeded()

    def _failed(self, op: str, key: str, e: Exception) -> None:
        self.metrics.record(self.name, "error")
        with self._lock:
            first, self._failing = not self._failing, True
        if first:
            log.warning(
                "%s cache %s(%s) failed (%s: %s); serving without it until it works again",
                self.name,
                op,
                key[:48],
                type(e).__name__,
                e,
            )

    def _succeeded(self) -> None:
        with self._lock:
            recovered, self._failing = self._failing, False
        if recovered:
            log.info("%s cache works again", self.name)
