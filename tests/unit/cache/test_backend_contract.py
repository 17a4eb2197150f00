"""One contract suite over every CacheBackend: memory, Redis (real server) and tiered."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ragfleet.cache import CacheBackend, MemoryCache, RedisCache, TieredCache
from ragfleet.errors import ConfigError, InputError

BACKENDS = ["memory", "redis", "tiered"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[CacheBackend]:
    def redis() -> RedisCache:
        server: Any = request.getfixturevalue("redis_server")
        return RedisCache(server.url, prefix=f"test:{uuid.uuid4().hex}:", socket_timeout_s=1.0)

    made: CacheBackend
    if request.param == "memory":
        made = MemoryCache(max_bytes=1 << 20)
    elif request.param == "redis":
        made = redis()
    else:
        made = TieredCache(MemoryCache(max_bytes=1 << 20), redis())
    yield made
    made.clear()


def test_is_a_cache_backend(backend: CacheBackend) -> None:
    assert isinstance(backend, CacheBackend)


def test_missing_key_is_a_miss(backend: CacheBackend) -> None:
    assert backend.get("absent") is None
    assert backend.stats().misses == 1
    assert backend.stats().hits == 0


def test_roundtrip_of_every_byte_value(backend: CacheBackend) -> None:
    value = bytes(range(256)) * 3
    backend.set("k", value)
    assert backend.get("k") == value
    backend.set("empty", b"")
    assert backend.get("empty") == b""
    s = backend.stats()
    assert (s.hits, s.misses, s.sets) == (2, 0, 2)


def test_overwrite_delete_and_clear(backend: CacheBackend) -> None:
    backend.set("k", b"old")
    backend.set("k", b"new")
    assert backend.get("k") == b"new"
    backend.delete("k")
    assert backend.get("k") is None
    backend.delete("never-set")  # no error
    for i in range(5):
        backend.set(f"c{i}", b"x")
    backend.clear()
    assert all(backend.get(f"c{i}") is None for i in range(5))


def test_ttl_expires(backend: CacheBackend) -> None:
    backend.set("short", b"v", ttl_s=0.05)
    backend.set("long", b"v", ttl_s=60)
    time.sleep(0.15)
    assert backend.get("short") is None
    assert backend.get("long") == b"v"


def test_invalid_arguments_raise(backend: CacheBackend) -> None:
    with pytest.raises(InputError, match="bytes"):
        backend.set("k", "text")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="ttl_s"):
        backend.set("k", b"v", ttl_s=0)
    with pytest.raises(ConfigError, match="ttl_s"):
        backend.set("k", b"v", ttl_s=-1.0)
