"""Two cache levels: a fast local front (in-process LRU) over a shared back (Redis).

``get`` reads the front, then the back, and copies a back hit into the front (read-through
promotion); ``set`` writes both (write-through). Keys carry the collection generation, so
a front entry can never outlive a write on another node: the next query asks a new key.
"""

from __future__ import annotations

import threading

from ragfleet.cache.base import CacheBackend, CacheStats


class TieredCache:
    """A :class:`~ragfleet.cache.base.CacheBackend` of ``front`` over ``back``.

    Args:
        front: the local level (e.g. :class:`~ragfleet.cache.memory.MemoryCache`).
        back: the shared level (e.g. :class:`~ragfleet.cache.redis.RedisCache`).
        promote_ttl_s: TTL of entries copied from back to front (``None``: front's default).
    """

    def __init__(
        self, front: CacheBackend, back: CacheBackend, promote_ttl_s: float | None = None
    ) -> None:
        self.front, self.back, self.promote_ttl_s = front, back, promote_ttl_s
        self._lock = threading.Lock()
        self._hits = self._misses = self._sets = 0

    def get(self, key: str) -> bytes | None:
        value = self.front.get(key)
        if value is None:
            value = self.back.get(key)
            if value is not None:
                self.front.set(key, value, self.promote_ttl_s)
        with self._lock:
            if value is None:
                self._misses += 1
            else:
                self._hits += 1
        return value

    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        self.front.set(key, value, ttl_s)
        self.back.set(key, value, ttl_s)
        with self._lock:
            self._sets += 1

    def delete(self, key: str) -> None:
        self.front.delete(key)
        self.back.delete(key)

    def clear(self) -> None:
        self.front.clear()
        self.back.clear()

    def stats(self) -> CacheStats:
        """Hits at either level, misses at both; evictions, errors and bytes summed."""
        f, b = self.front.stats(), self.back.stats()
        with self._lock:
            return CacheStats(
                hits=self._hits,
                misses=self._misses,
                sets=self._sets,
                evictions=f.evictions + b.evictions,
                errors=f.errors + b.errors,
                bytes=f.bytes + b.bytes,
            )
