"""The backend a service or command asks for by URL: ``None`` → in-process, ``redis://…`` →
in-process front over the fleet-wide Redis (:class:`~ragfleet.cache.tiered.TieredCache`)."""

from __future__ import annotations

from ragfleet.cache.base import CacheBackend
from ragfleet.cache.memory import MemoryCache
from ragfleet.cache.redis import RedisCache
from ragfleet.cache.tiered import TieredCache
from ragfleet.errors import ConfigError


def cache_backend(
    url: str | None = None,
    *,
    max_bytes: int = 256 << 20,
    ttl_s: float | None = 3600.0,
    prefix: str = "ragfleet:",
) -> CacheBackend:
    """A :class:`MemoryCache` of ``max_bytes``, in front of Redis at ``url`` when given.

    Args:
        url: ``redis://host:port/db``, or ``None`` for the in-process cache alone.
        max_bytes: budget of the in-process level.
        ttl_s: default TTL of entries at both levels (orphans of old generations age out).
        prefix: key prefix in Redis (``clear`` removes only keys under it).

    Raises:
        ConfigError: ``url`` is not a ``redis://`` / ``rediss://`` / ``unix://`` URL.
    """
    front = MemoryCache(max_bytes=max_bytes, default_ttl_s=ttl_s)
    if url is None:
        return front
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"cache URL must start with redis://, rediss:// or unix://, got {url!r}")
    return TieredCache(front, RedisCache(url, prefix=prefix, default_ttl_s=ttl_s))
