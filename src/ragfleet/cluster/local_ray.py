"""A local Ray cluster on loopback for development and tests: a head and N worker nodes.

Every node is one ``ray start --block`` process: it stays in the foreground and stops
the node's own processes (raylet, object store, GCS on the head) when it gets SIGTERM. So
the cluster is exactly the recorded pids, and :meth:`LocalRayCluster.stop` signals those
pids and nothing else. The state (address, pids) is saved as JSON, by default in
``~/.ragfleet/cluster.json`` (``$RAGFLEET_HOME`` overrides the directory), so that
``ragfleet cluster down`` in another process stops what ``cluster up`` started, and
:func:`cluster_address` is where a driver connects by default.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ragfleet.errors import ConfigError, InputError, RagfleetError
from ragfleet.index.atomic import atomic_write_bytes

READY = "Ray runtime started"


def state_file() -> Path:
    home = os.environ.get("RAGFLEET_HOME")
    return (Path(home) if home else Path.home() / ".ragfleet") / "cluster.json"


def _ray_exe() -> str:
    exe = Path(sys.executable).parent / "ray"
    if not exe.exists():
        raise ConfigError(f"no `ray` next to {sys.executable}; pip install 'ray[default]'")
    return str(exe)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return False  # our child, and it has exited (now reaped)
    except ChildProcessError:
        pass  # not our child: probe it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass(frozen=True)
class LocalRayCluster:
    """A running local cluster: its GCS address, node pids (head first) and log directory."""

    address: str
    pids: tuple[int, ...]
    log_dir: str

    @classmethod
    def start(
        cls,
        workers: int = 1,
        *,
        num_cpus: int = 1,
        object_store_bytes: int = 200_000_000,
        log_dir: Path | None = None,
        timeout_s: float = 120.0,
    ) -> LocalRayCluster:
        """Start a head and ``workers`` worker nodes on 127.0.0.1; stop them all on failure."""
        if workers < 0 or num_cpus < 1:
            raise InputError(f"need workers >= 0 and num_cpus >= 1, got {workers}, {num_cpus}")
        log_dir = log_dir or state_file().parent / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        address = f"127.0.0.1:{_free_port()}"
        common = _node_args(num_cpus, object_store_bytes)
        head = ["--head", f"--port={address.split(':')[1]}", "--include-dashboard=false"]
        pids: list[int] = []
        try:
            pids.append(_start_node([*head, *common], log_dir / "head.log", timeout_s))
            for i in range(workers):
                args = [f"--address={address}", *common]
                pids.append(_start_node(args, log_dir / f"worker-{i}.log", timeout_s))
        except BaseException:
            cls(address, tuple(pids), str(log_dir)).stop()
            raise
        return cls(address, tuple(pids), str(log_dir))

    def add_worker(
        self, *, num_cpus: int = 1, object_store_bytes: int = 200_000_000, timeout_s: float = 120.0
    ) -> LocalRayCluster:
        """This cluster with one more worker node (a new value; save it to record it)."""
        log = Path(self.log_dir) / f"worker-{len(self.pids) - 1}.log"
        args = [f"--address={self.address}", *_node_args(num_cpus, object_store_bytes)]
        return LocalRayCluster(
            self.address, (*self.pids, _start_node(args, log, timeout_s)), self.log_dir
        )

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM every recorded pid (all at once, so the nodes shut down in parallel),
        then wait; a node still up after ``timeout_s`` gets SIGKILL."""
        live = [p for p in self.pids if _alive(p)]
        for pid in live:
            os.kill(pid, signal.SIGTERM)
        for pid in live:
            _wait_exit(pid, timeout_s)

    def alive(self) -> list[bool]:
        return [_alive(p) for p in self.pids]

    # -- state file -----------------------------------------------------------------------
    def save(self, path: Path | None = None) -> Path:
        path = path or state_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(asdict(self), indent=2).encode("utf-8"))
        return path

    @classmethod
    def load(cls, path: Path | None = None) -> LocalRayCluster | None:
        """The cluster recorded at ``path``, or ``None`` when nothing is recorded."""
        path = path or state_file()
        if not path.is_file():
            return None
        try:
            d = json.loads(path.read_text("utf-8"))
            return cls(str(d["address"]), tuple(int(p) for p in d["pids"]), str(d["log_dir"]))
        except (KeyError, ValueError, TypeError) as e:
            raise ConfigError(f"{path} is corrupt ({e}); delete it after stopping Ray") from e


def cluster_address(address: str | None = None) -> str:
    """``address``, else the recorded cluster's, once something answers there (raises
    ``ConfigError`` saying what to do when nothing is recorded or nothing answers)."""
    if address is None:
        local = LocalRayCluster.load()
        if local is None:
            raise ConfigError(
                "no Ray cluster: start one with `ragfleet cluster up` or pass --address HOST:PORT"
            )
        address = local.address
    check_reachable(address)
    return address


def check_reachable(address: str, timeout_s: float = 3.0) -> None:
    """Raise ``ConfigError`` unless something accepts TCP at ``address`` (``HOST:PORT`` or
    ``ray://HOST:PORT``; other forms, such as ``auto``, are left to Ray) — so a dead
    cluster is one clear error, not a hang inside ``ray.init``."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()):
        return
    host = host.removeprefix("[").removesuffix("]")  # [::1]:6379
    if not 0 < int(port) < 65536:
        raise ConfigError(f"--address {address}: the port must be in 1..65535")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ConfigError(
            f"no Ray cluster answers at {address} ({e.strerror or e}): start one with "
            "`ragfleet cluster up` (`ragfleet cluster status` shows it), or pass the right "
            "--address HOST:PORT"
        ) from e


def _node_args(num_cpus: int, object_store_bytes: int) -> list[str]:
    return [
        f"--num-cpus={num_cpus}",
        f"--object-store-memory={object_store_bytes}",
        "--node-ip-address=127.0.0.1",
        "--disable-usage-stats",
        "--block",
    ]


def _start_node(args: list[str], log: Path, timeout_s: float) -> int:
    """Run ``ray start ARGS`` in its own session; return its pid once the node is up."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [_ray_exe(), "start", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if READY in log.read_text("utf-8", errors="replace"):
            return proc.pid
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    if proc.poll() is None:
        proc.terminate()
        _wait_exit(proc.pid, 30.0)
    raise RagfleetError(f"`ray start {' '.join(args)}` did not come up; see {log}")


def _wait_exit(pid: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5.0
        time.sleep(0.1)
