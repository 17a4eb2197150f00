"""RedisCache against real redis-server processes: isolation, outages, recovery."""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from ragfleet.cache import RedisCache
from ragfleet.errors import ConfigError

pytest.importorskip("redis", reason="redis-py is not installed: pip install 'ragfleet[redis]'")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(cond: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def outage_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "ragfleet.cache" and r.levelno == logging.WARNING and "unreachable" in r.msg
    ]


def test_prefixes_isolate_and_clear_only_their_own(redis_server: Any) -> None:
    a = RedisCache(redis_server.url, prefix=f"a-{uuid.uuid4().hex}[*]:")  # glob chars escaped
    b = RedisCache(redis_server.url, prefix=f"a-{uuid.uuid4().hex}:")
    a.set("k", b"from a")
    b.set("k", b"from b")
    assert (a.get("k"), b.get("k")) == (b"from a", b"from b")
    a.clear()
    assert (a.get("k"), b.get("k")) == (None, b"from b")
    b.clear()


def test_clear_removes_more_than_one_scan_batch(redis_server: Any) -> None:
    cache = RedisCache(redis_server.url, prefix=f"many-{uuid.uuid4().hex}:")
    for i in range(1200):
        cache.set(str(i), b"v")
    cache.clear()
    assert all(cache.get(str(i)) is None for i in range(0, 1200, 97))


def test_bad_config_raises() -> None:
    with pytest.raises(ConfigError, match="URL"):
        RedisCache("http://127.0.0.1:1/")
    with pytest.raises(ConfigError, match="socket_timeout_s"):
        RedisCache("redis://127.0.0.1:1/0", socket_timeout_s=0)


def test_dead_redis_degrades_to_misses_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0", retry_after_s=60.0)
    caplog.set_level(logging.INFO, logger="ragfleet.cache")
    t0 = time.perf_counter()
    for i in range(200):
        cache.set(f"k{i}", b"v")
        assert cache.get(f"k{i}") is None
    elapsed = time.perf_counter() - t0
    s = cache.stats()
    assert s.errors == 1  # the first failure opens the circuit; the rest never touch the network
    assert (s.hits, s.misses, s.sets) == (0, 200, 0)
    assert not cache.available
    assert len(outage_warnings(caplog)) == 1
    assert elapsed < 1.0  # 400 calls, at most one connection attempt


def test_logs_never_show_the_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ragfleet.cache")
    cache = RedisCache(f"redis://user:s3cret@127.0.0.1:{free_port()}/0")
    assert cache.get("k") is None
    assert cache.url == f"redis://user:***@127.0.0.1:{cache.url.rsplit(':', 1)[1]}"
    assert len(outage_warnings(caplog)) == 1
    assert "s3cret" not in caplog.text


def test_kill_mid_use_then_recover_on_same_port(
    start_redis: Callable[[int | None], Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ragfleet.cache")
    server = start_redis(None)
    cache = RedisCache(server.url, retry_after_s=0.1)
    cache.set("k", b"before")
    assert cache.get("k") == b"before"
    server.kill()
    assert cache.get("k") is None  # no exception
    cache.set("k2", b"lost")  # no exception, no-op
    assert cache.stats().errors >= 1
    assert len(outage_warnings(caplog)) == 1
    start_redis(server.port)

    def works() -> bool:
        cache.set("k3", b"after")
        return cache.get("k3") == b"after"

    assert wait_until(works), "the cache did not recover after redis-server restarted"
    assert any("reachable again" in r.msg for r in caplog.records)
    assert len(outage_warnings(caplog)) == 1


def test_hung_redis_times_out_then_recovers(start_redis: Callable[[int | None], Any]) -> None:
    """SIGSTOP: the kernel still accepts connections but nothing answers -> socket timeout."""
    server = start_redis(None)
    cache = RedisCache(server.url, socket_timeout_s=0.05, retry_after_s=0.1)
    cache.set("k", b"v")
    server.signal(signal.SIGSTOP)
    try:
        t0 = time.perf_counter()
        assert cache.get("k") is None
        assert time.perf_counter() - t0 < 0.5  # one timeout (50 ms), no redis-py retries
        assert cache.stats().errors == 1
        t0 = time.perf_counter()
        assert cache.get("k") is None  # circuit open: immediate
        assert time.perf_counter() - t0 < 0.04  # under the 50 ms socket timeout: no wait
    finally:
        server.signal(signal.SIGCONT)
    assert wait_until(lambda: cache.get("k") == b"v")


def test_concurrent_load_survives_a_kill(start_redis: Callable[[int | None], Any]) -> None:
    """Four threads keep reading and writing while the server dies and comes back."""
    server = start_redis(None)
    cache = RedisCache(server.url, retry_after_s=0.1)
    stop = threading.Event()
    failures: list[BaseException] = []
    served = [0, 0, 0, 0]

    def load(t: int) -> None:
        i = 0
        while not stop.is_set():
            try:
                cache.set(f"t{t}:{i % 50}", b"x" * 100)
                if cache.get(f"t{t}:{i % 50}") is not None:
                    served[t] += 1
            except BaseException as e:  # the property under test: nothing escapes
                failures.append(e)
            i += 1

    threads = [threading.Thread(target=load, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    try:
        assert wait_until(lambda: min(served) > 10)
        server.kill()
        assert wait_until(lambda: cache.stats().errors > 0)
        start_redis(server.port)
        before = sum(served)
        assert wait_until(lambda: sum(served) > before + 40), "load did not recover"
    finally:
        stop.set()
        for th in threads:
            th.join()
    assert failures == []


def test_the_cli_caches_through_redis_on_the_plain_and_the_fleet_path(
    redis_server: Any, collection_factory: Any
) -> None:
    """``ragfleet search DIR q [--replicas R] --cache-url redis://…``: the second identical
    search is an exact hit, on the embedded path and the Fleet path alike, and both give
    the plain search's hits."""
    import json

    from typer.testing import CliRunner

    from ragfleet.cli.app import app

    col = collection_factory(2)
    runner = CliRunner()
    plain = runner.invoke(app, ["search", str(col.path), "Super Bowl", "--k", "3", "--json"])
    want = [h["chunk_id"] for h in json.loads(plain.stdout)["hits"]]
    for extra in ([], ["--replicas", "2"]):
        args = ["search", str(col.path), f"Super Bowl {len(extra)}", "--k", "3", "--json"]
        args += ["--cache-url", redis_server.url, *extra]
        first = json.loads(runner.invoke(app, args).stdout)
        second = json.loads(runner.invoke(app, args).stdout)
        assert first["cache"]["hit"] is False
        assert second["cache"] == {"hit": True, "kind": "exact"}
        assert [h["chunk_id"] for h in second["hits"]] == [h["chunk_id"] for h in first["hits"]]
    again = runner.invoke(app, ["search", str(col.path), "Super Bowl", "--k", "3", "--json",
                                "--replicas", "2"])  # fmt: skip
    assert [h["chunk_id"] for h in json.loads(again.stdout)["hits"]] == want
