"""A registry of the service processes a test run starts (redis-server, Ray nodes, a
llama.cpp server), so that none outlives the run that started it.

Every service is started in its own process group (its own session) and recorded here as
``<registry>/<owner pid>-<service pid>.json`` with the start time of both processes (from
``/proc/PID/stat``, so a recycled pid is never mistaken for the service). The fixture that
started a service stops it by pid and calls :func:`forget`. A run that dies without
cleaning up — SIGKILL, or a native crash such as SIGILL that skips every ``finally`` —
leaves its records behind, and the next run's :func:`reap_stale` (called at session start,
``tests/conftest.py``) stops each recorded service whose owner is gone: SIGTERM to its
process group, SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import time
from pathlib import Path


def registry() -> Path:
    """The registry directory (``$RAGFLEET_TEST_SERVICES`` overrides it)."""
    override = os.environ.get("RAGFLEET_TEST_SERVICES")
    return Path(override) if override else Path(tempfile.gettempdir()) / "ragfleet-test-services"


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, ``None`` if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])  # field 22 of proc(5); fields[0] is field 3


def _record_path(owner: int, pid: int) -> Path:
    return registry() / f"{owner}-{pid}.json"


def record(kind: str, pid: int) -> None:
    """Record a service started by this process (``pid`` leads its own process group)."""
    d = registry()
    d.mkdir(parents=True, exist_ok=True)
    owner = os.getpid()
    entry = {
        "kind": kind,
        "pid": pid,
        "pid_start": start_time(pid),
        "owner": owner,
        "owner_start": start_time(owner),
    }
    tmp = d / f".{owner}-{pid}.tmp"
    tmp.write_text(json.dumps(entry))
    tmp.replace(_record_path(owner, pid))


def forget(pid: int) -> None:
    """Drop the record of a service this process has stopped."""
    _record_path(os.getpid(), pid).unlink(missing_ok=True)


def _same_process(pid: int, started: object) -> bool:
    return started is not None and start_time(pid) == started


def stop_group(pid: int, grace_s: float = 10.0) -> None:
    """SIGTERM the process group led by ``pid`` (or the process alone if it leads none),
    then SIGKILL whatever is left after ``grace_s``."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    target = pgid if pgid == pid else None

    def send(sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if target is not None:
                os.killpg(target, sig)
            else:
                os.kill(pid, sig)

    send(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
    send(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while start_time(pid) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    send(signal.SIGKILL)


def reap_stale() -> list[str]:
    """Stop every recorded service whose owner process is gone; returns what was stopped
    (``"kind pid"``). Records of live owners (a parallel run) are left alone."""
    stopped = []
    d = registry()
    if not d.is_dir():
        return stopped
    for f in sorted(d.glob("*.json")):
        try:
            entry = json.loads(f.read_text())
            pid, owner = int(entry["pid"]), int(entry["owner"])
        except (OSError, ValueError, KeyError, TypeError):
            f.unlink(missing_ok=True)
            continue
        if _same_process(owner, entry.get("owner_start")):
            continue
        if _same_process(pid, entry.get("pid_start")):
            stop_group(pid)
            stopped.append(f"{entry.get('kind', '?')} {pid}")
        f.unlink(missing_ok=True)
    return stopped
