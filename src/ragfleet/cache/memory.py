"""An in-process LRU cache with per-entry TTL and a byte budget.

Entries live in an ``OrderedDict`` in recency order (least recent first) under one lock.
An entry's size is ``len(key.encode()) + len(value)``; after each ``set`` the least recently
used entries are evicted until ``sum(sizes) <= max_bytes``. A value whose entry alone exceeds
the budget is not stored (and any older value under that key is dropped, so a reader never
sees it). Expired entries are removed lazily, when a ``get`` finds them.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ragfleet.cache.base import CacheStats, check_ttl, check_value
from ragfleet.errors import ConfigError


@dataclass(frozen=True, slots=True)
class _Entry:
    value: bytes
    size: int
    expires_at: float | None


class MemoryCache:
    """Thread-safe LRU of bytes values with TTL and a byte budget.

    Args:
        max_bytes: budget for ``sum(len(key.encode()) + len(value))`` over held entries.
        default_ttl_s: TTL used when ``set`` gets ``ttl_s=None``; ``None`` means no expiry.
        clock: a monotonic clock in seconds (injectable so tests need not sleep).
    """

    def __init__(
        self,
        max_bytes: int,
        default_ttl_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_bytes <= 0:
            raise ConfigError(f"MemoryCache max_bytes must be > 0, got {max_bytes}")
        check_ttl(default_ttl_s, "default_ttl_s")
        self.max_bytes = max_bytes
        self.default_ttl_s = default_ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0
        self._hits = self._misses = self._sets = self._evictions = 0

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and self._expired(entry):
                self._drop(key)
                entry = None
            if entry is None:
                self._misses += 1
                return None
            self._entries.move_to_end(key)
            self._hits += 1
            return entry.value

    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        check_value(value)
        check_ttl(ttl_s)
        ttl = self.default_ttl_s if ttl_s is None else ttl_s
        size = len(key.encode()) + len(value)
        with self._lock:
            if key in self._entries:
                self._drop(key)
            if size > self.max_bytes:
                return
            expires_at = None if ttl is None else self._clock() + ttl
            self._entries[key] = _Entry(bytes(value), size, expires_at)
            self._bytes += size
            self._sets += 1
            while self._bytes > self.max_bytes:
                oldest = next(iter(self._entries))
                self._drop(oldest)
                self._evictions += 1

    def delete(self, key: str) -> None:
        with self._lock:
            if key in self._entries:
                self._drop(key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                hits=self._hits,
                misses=self._misses,
                sets=self._sets,
                evictions=self._evictions,
                errors=0,
                bytes=self._bytes,
            )

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def lru_keys(self) -> list[str]:
        """Held keys, least recently used first (expired ones included until read)."""
        with self._lock:
            return list(self._entries)

    def _expired(self, entry: _Entry) -> bool:
        return entry.expires_at is not None and self._clock() >= entry.expires_at

    def _drop(self, key: str) -> None:
        """Remove ``key`` (caller holds the lock)."""
        self._bytes -= self._entries.pop(key).size
