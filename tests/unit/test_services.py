"""The test-service registry (``tests/services.py``): a run that dies without cleaning up
leaves no service running past the next run's start."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from tests import services


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "registry"
    monkeypatch.setenv("RAGFLEET_TEST_SERVICES", str(d))
    return d


def _crashing_owner(registry: Path) -> int:
    """A process that starts a service in its own session, records it and dies without
    stopping it (``os._exit``, as a SIGKILL or SIGILL would); returns the service's pid."""
    repo = Path(__file__).resolve().parents[2]
    code = textwrap.dedent(
        """
        import os, subprocess, sys
        sys.path.insert(0, sys.argv[1])
        from tests import services
        quiet = subprocess.DEVNULL
        proc = subprocess.Popen(
            ["sleep", "300"], start_new_session=True, stdout=quiet, stderr=quiet
        )
        services.record("sleeper", proc.pid)
        print(proc.pid, flush=True)
        os._exit(0)
        """
    )
    env = {**os.environ, "RAGFLEET_TEST_SERVICES": str(registry)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(repo)], capture_output=True, text=True, env=env, check=True
    )
    return int(out.stdout.strip())


def test_a_dead_runs_service_is_stopped_at_the_next_start(registry: Path) -> None:
    pid = _crashing_owner(registry)
    assert services.start_time(pid) is not None, "the service should outlive its owner"
    assert len(list(registry.glob("*.json"))) == 1

    stopped = services.reap_stale()

    assert stopped == [f"sleeper {pid}"]
    deadline = time.monotonic() + 5
    while services.start_time(pid) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert services.start_time(pid) is None
    assert list(registry.glob("*.json")) == []


def test_services_of_a_live_owner_are_left_alone(registry: Path) -> None:
    proc = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        services.record("sleeper", proc.pid)
        assert services.reap_stale() == []
        assert proc.poll() is None
    finally:
        services.stop_group(proc.pid, grace_s=5)
        proc.wait(timeout=5)
        services.forget(proc.pid)
    assert list(registry.glob("*.json")) == []


def test_a_recycled_pid_is_not_killed(registry: Path) -> None:
    """A record whose pid now belongs to another process (another start time) is dropped
    without a signal."""
    proc = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        registry.mkdir(parents=True)
        entry = (
            f'{{"kind": "x", "pid": {proc.pid}, "pid_start": 1, "owner": 999999999, '
            '"owner_start": 1}'
        )
        (registry / f"999999999-{proc.pid}.json").write_text(entry)
        assert services.reap_stale() == []
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait(timeout=5)
