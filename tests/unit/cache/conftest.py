"""Real redis-server processes for the cache tests, started by scripts/redis-server.sh.

Tests that need Redis are skipped with the reason when redis-server cannot be installed or
started here; set RAGFLEET_REQUIRE_REDIS=1 (CI) to make that a failure instead.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests import services

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "redis-server.sh"


@dataclass
class RedisServer:
    """One redis-server started by the script; ``kill`` is an unclean crash (SIGKILL)."""

    port: int
    pid: int
    dir: str

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def signal(self, sig: signal.Signals) -> None:
        os.kill(self.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while _alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        subprocess.run([str(SCRIPT), "stop", str(self.pid), self.dir], check=False)
        services.forget(self.pid)


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a daemon's parent may reap it late)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _start(port: int | None) -> RedisServer:
    args = [str(SCRIPT), "start"] + ([str(port)] if port is not None else [])
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip() or f"exit status {done.returncode}")
    p, pid, d = done.stdout.split()
    services.record("redis-server", int(pid))  # daemonised: it leads its own session
    return RedisServer(int(p), int(pid), d)


@pytest.fixture(scope="session")
def start_redis() -> Iterator[Callable[[int | None], RedisServer]]:
    """A function that starts a fresh redis-server (on ``port`` or a free one); all are
    stopped at the end of the session."""
    pytest.importorskip("redis", reason="redis-py is not installed: pip install 'ragfleet[redis]'")
    started: list[RedisServer] = []

    def start(port: int | None = None) -> RedisServer:
        try:
            server = _start(port)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            if os.environ.get("RAGFLEET_REQUIRE_REDIS") == "1":
                raise
            pytest.skip(f"cannot start redis-server via {SCRIPT.name}: {e}")
        started.append(server)
        return server

    yield start
    for server in started:
        if _alive(server.pid):
            server.signal(signal.SIGCONT)  # a test may have left it stopped
        server.stop()


@pytest.fixture(scope="session")
def redis_server(start_redis: Callable[[int | None], RedisServer]) -> RedisServer:
    """One server shared by the tests that do not kill it."""
    return start_redis(None)
