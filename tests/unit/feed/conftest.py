"""The feed tests use the cache tests' real redis-server fixtures."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from tests.unit.cache.conftest import RedisServer, redis_server, start_redis

__all__ = ["RedisServer", "redis_server", "start_redis"]

_n = itertools.count()


@pytest.fixture
def stream_url(redis_server: RedisServer) -> Callable[[], str]:
    """A function giving a fresh stream address on the shared server."""

    def make() -> str:
        return f"{redis_server.url}?stream=t{next(_n)}-{id(make)}"

    return make
