"""The llama.cpp OpenAI-compatible server the generator tests talk to (a real one)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests import services


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def llama_openai_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real OpenAI-compatible server (llama_cpp.server over the bundled GGUF) on a free
    loopback port: its ``/v1`` base URL; stopped (and forgotten by the service registry) on
    exit."""
    pytest.importorskip(
        "llama_cpp.server", reason="llama-cpp-python[server] (extra 'llama') is not installed"
    )
    from ragfleet.generate.llama import bundled_model_path

    gguf = bundled_model_path(tmp_path_factory.mktemp("gguf"))
    port = free_port()
    log = (tmp_path_factory.mktemp("log") / "server.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--n_threads",
            "2",
            "--model_alias",
            "gemma",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        start_new_session=True,
    )
    services.record("llama-server", proc.pid)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/models", timeout=2).read()
                break
            except OSError as e:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"llama_cpp.server did not start: {Path(log.name).read_text()}"
                    ) from e
                time.sleep(0.5)
        yield url
    finally:
        services.stop_group(proc.pid, grace_s=30)
        proc.wait(timeout=30)
        services.forget(proc.pid)
        log.close()
