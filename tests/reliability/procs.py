"""Real processes for the reliability tests: the ``ragfleet`` command, a Python child that
uses the library, and ``ragfleet serve`` on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests import services

REPO = Path(__file__).resolve().parents[2]
RAGFLEET = Path(sys.executable).with_name("ragfleet")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def ragfleet(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the ``ragfleet`` console script; returns the finished process."""
    return subprocess.run(
        [str(RAGFLEET), *map(str, args)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=timeout,
        check=False,
    )


def python(code: str, *args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``code`` (dedented) in a fresh interpreter with ``sys.argv[1:] = args``."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=REPO,
        timeout=timeout,
        check=False,
    )


def write_jsonl(path: Path, docs: list[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running ``ragfleet serve``; ``log`` collects its stderr."""

    proc: subprocess.Popen[str]
    url: str
    key: str
    log: Path

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def stop(self, sig: signal.Signals, timeout: float = 60) -> int:
        """Send ``sig``; wait for the exit and return the exit status."""
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            services.forget(self.proc.pid)


def make_key(keys: Path, scopes: str = "admin") -> str:
    done = ragfleet("keys", "add", "tester", "--scopes", scopes, "--file", keys)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[0]


@contextmanager
def serving(collection: Path, tmp: Path, *extra: str) -> Iterator[Server]:
    """``ragfleet serve COLLECTION`` until the block ends (SIGKILL if still running)."""
    keys = tmp / "keys.json"
    key = make_key(keys) if not keys.exists() else (tmp / "key.txt").read_text()
    (tmp / "key.txt").write_text(key)
    port = free_port()
    log = tmp / f"serve-{port}.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [str(RAGFLEET), "serve", str(collection), "--keys", str(keys), "--port", str(port),
             "--no-batching", *extra],
            stdout=err, stderr=subprocess.STDOUT, text=True, env=ENV, start_new_session=True,
        )  # fmt: skip
    services.record("ragfleet-serve", proc.pid)
    server = Server(proc, f"http://127.0.0.1:{port}", key, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(server.url + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except (OSError, urllib.error.HTTPError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ragfleet serve did not start: {log.read_text()}")
            time.sleep(0.2)
        yield server
    finally:
        if proc.poll() is None:
            services.stop_group(proc.pid, grace_s=0.1)
            proc.wait(timeout=30)
        services.forget(proc.pid)
