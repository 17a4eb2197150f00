"""A fleet-wide cache in Redis that degrades to "no cache" when Redis is unreachable.

Every call goes through a circuit breaker: the first failure (connection refused, a
timeout, any ``RedisError``) is counted, logged once for the outage, and opens the circuit
for ``retry_after_s``; while open, calls return ``None`` / do nothing without touching the
network, so a dead Redis does not add its socket timeout to every query. When the interval
has passed, exactly one call probes Redis (half-open); success closes the circuit (logged
once as recovered), failure re-opens it. redis-py's own retries are disabled: the breaker
is the retry policy. ``stats().bytes`` and ``stats().evictions`` stay 0: the server is
shared and expires / evicts by its own policy (see ``INFO memory`` and ``INFO stats``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from ragfleet._optional import require
from ragfleet.cache.base import CacheStats, check_ttl, check_value
from ragfleet.errors import ConfigError

log = logging.getLogger("ragfleet.cache")
T = TypeVar("T")


class RedisCache:
    """A :class:`~ragfleet.cache.base.CacheBackend` over ``redis-py``.

    Args:
        url: ``redis://host:port/db``.
        prefix: namespace prepended to every key; ``clear`` removes only keys under it.
        socket_timeout_s: connect and read timeout per call.
        default_ttl_s: TTL used when ``set`` gets ``ttl_s=None``; ``None`` means no expiry.
        retry_after_s: how long the circuit stays open after a failure.
        clock: monotonic clock in seconds (injectable for tests).
    """

    def __init__(
        self,
        url: str,
        prefix: str = "ragfleet:",
        socket_timeout_s: float = 0.05,
        default_ttl_s: float | None = None,
        retry_after_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not socket_timeout_s > 0 or not retry_after_s > 0:
            raise ConfigError(
                "RedisCache socket_timeout_s and retry_after_s must be > 0, got "
                f"{socket_timeout_s!r} and {retry_after_s!r}"
            )
        check_ttl(default_ttl_s, "default_ttl_s")
        redis = require("redis", "redis")
        backoff = require("redis.backoff", "redis")
        no_retry = require("redis.retry", "redis").Retry(backoff.NoBackoff(), 0)
        try:
            self._client: Any = redis.Redis.from_url(
                url,
                socket_timeout=socket_timeout_s,
                socket_connect_timeout=socket_timeout_s,
                retry=no_retry,
            )
        except ValueError as e:
            raise ConfigError(f"bad Redis URL {url!r}: {e}; expected redis://host:port/db") from e
        self._failures: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self.url = _redact(url)  # for logs: never the password
        self.prefix, self.default_ttl_s = prefix, default_ttl_s
        self.retry_after_s = retry_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._open_until = 0.0  # circuit open while clock() < _open_until
        self._in_outage = False
        self._counts = {"hits": 0, "misses": 0, "sets": 0, "errors": 0}

    def get(self, key: str) -> bytes | None:
        """The value, or ``None`` when absent, on failure, or while the circuit is open."""
        value: bytes | None = self._call(lambda: self._client.get(self.prefix + key), None)
        self._count("hits" if value is not None else "misses")
        return value

    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        check_value(value)
        check_ttl(ttl_s)
        ttl = self.default_ttl_s if ttl_s is None else ttl_s
        px = None if ttl is None else max(1, round(ttl * 1000))
        if self._call(lambda: self._client.set(self.prefix + key, bytes(value), px=px), False):
            self._count("sets")

    def delete(self, key: str) -> None:
        self._call(lambda: self._client.delete(self.prefix + key), 0)

    def clear(self) -> None:
        """Unlink every key under ``prefix`` (SCAN, never FLUSHDB: the server is shared)."""

        def unlink_all() -> int:
            n = 0
            for batch in _batched(self._client.scan_iter(match=self._match(), count=500), 500):
                n += int(self._client.unlink(*batch))
            return n

        self._call(unlink_all, 0)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(evictions=0, bytes=0, **self._counts)

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()

    @property
    def available(self) -> bool:
        """False while the circuit is open (Redis recently failed)."""
        with self._lock:
            return self._clock() >= self._open_until

    def _call(self, op: Callable[[], T], fallback: T) -> T:
        """Run ``op`` through the circuit breaker; on failure count, log and return fallback."""
        if not self._admit():
            return fallback
        try:
            result = op()
        except self._failures as e:
            self._on_failure(e)
            return fallback
        self._on_success()
        return result

    def _admit(self) -> bool:
        """Closed: admit. Open: refuse until ``_open_until``, then admit one probe."""
        with self._lock:
            now = self._clock()
            if now < self._open_until:
                return False
            if self._in_outage:  # half-open: this call probes; others wait another interval
                self._open_until = now + self.retry_after_s
            return True

    def _on_failure(self, e: BaseException) -> None:
        with self._lock:
            self._counts["errors"] += 1
            self._open_until = self._clock() + self.retry_after_s
            first = not self._in_outage
            self._in_outage = True
        if first:
            log.warning(
                "Redis cache %s unreachable (%s: %s); serving without it, retrying every %.1f s",
                self.url,
                type(e).__name__,
                e,
                self.retry_after_s,
            )

    def _on_success(self) -> None:
        with self._lock:
            recovered = self._in_outage
            self._in_outage = False
            self._open_until = 0.0
        if recovered:
            log.info("Redis cache %s reachable again; cache re-enabled", self.url)

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def _match(self) -> str:
        """A SCAN pattern matching ``prefix*`` with glob metacharacters escaped."""
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix)
        return escaped + "*"


def _redact(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _batched(items: Iterable[T], n: int) -> Iterator[list[T]]:
    """Consecutive lists of ``n`` items (the last may be shorter)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch
