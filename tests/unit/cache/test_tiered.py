"""TieredCache: read-through promotion, write-through, a dead back level."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from ragfleet.cache import MemoryCache, RedisCache, TieredCache, cache_backend
from ragfleet.errors import ConfigError


def test_back_hit_is_promoted_to_the_front() -> None:
    front, back = MemoryCache(max_bytes=1000), MemoryCache(max_bytes=1000)
    tiered = TieredCache(front, back)
    back.set("k", b"v")
    assert front.get("k") is None
    assert tiered.get("k") == b"v"
    assert front.get("k") == b"v"
    assert tiered.get("missing") is None
    s = tiered.stats()
    assert (s.hits, s.misses) == (1, 1)
    assert s.bytes == front.stats().bytes + back.stats().bytes


def test_set_writes_both_levels_and_delete_removes_both() -> None:
    front, back = MemoryCache(max_bytes=1000), MemoryCache(max_bytes=1000)
    tiered = TieredCache(front, back)
    tiered.set("k", b"v")
    assert (front.get("k"), back.get("k")) == (b"v", b"v")
    tiered.delete("k")
    assert (front.get("k"), back.get("k")) == (None, None)


def test_dead_redis_behind_memory_still_serves_from_memory() -> None:
    pytest.importorskip("redis", reason="redis-py is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tiered = TieredCache(MemoryCache(max_bytes=1000), RedisCache(f"redis://127.0.0.1:{port}/0"))
    tiered.set("k", b"v")
    assert tiered.get("k") == b"v"
    assert tiered.get("other") is None
    assert tiered.stats().errors == 1


def test_cache_backend_by_url(redis_server: Any) -> None:
    assert isinstance(cache_backend(None, max_bytes=1 << 10), MemoryCache)
    tiered = cache_backend(redis_server.url, prefix="factory-test:")
    assert isinstance(tiered, TieredCache)
    tiered.set("k", b"v")
    assert (
        isinstance(tiered, TieredCache) and tiered.back.get("k") == b"v"
    )  # written through to Redis
    tiered.clear()
    with pytest.raises(ConfigError, match="redis://"):
        cache_backend("http://localhost:6379")
