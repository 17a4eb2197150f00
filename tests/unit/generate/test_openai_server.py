"""The OpenAI-compatible client against a real ``llama_cpp.server`` on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests import services

from ragfleet.errors import ConfigError, DeadlineExceeded, RagfleetError
from ragfleet.generate.openai import OpenAIConfig, OpenAIGenerator, parse_event
from ragfleet.types import Hit

HITS = [
    Hit(
        1,
        "sb50",
        "sb50#0",
        1.0,
        "Super Bowl 50 was played at Levi's Stadium in Santa Clara.",
        0,
        title="Super Bowl 50",
    ),
    Hit(2, "bread", "bread#0", 0.5, "Sourdough bread is leavened by a starter.", 0),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
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


@pytest.mark.parametrize("endpoint", ["completions", "chat"])
def test_streams_an_answer_from_a_real_server(server: str, endpoint: str) -> None:
    deltas: list[str] = []
    gen = OpenAIGenerator(
        OpenAIConfig(server, "gemma", endpoint=endpoint, max_tokens=24, timeout_ms=300_000),
        on_token=deltas.append,
    )
    a = gen.generate("Where was Super Bowl 50 played?", HITS)
    assert a.text and len(deltas) > 1 and "".join(deltas).strip() == a.text
    assert a.model == "openai:gemma" and a.passages == tuple(HITS) and not a.truncated
    assert all(1 <= c.n <= len(HITS) for c in a.citations)


def test_deadline_cuts_the_stream(server: str) -> None:
    gen = OpenAIGenerator(
        OpenAIConfig(server, "gemma", endpoint="completions", max_tokens=400, stop=())
    )
    t = time.perf_counter()
    try:
        a = gen.generate("Write a long story about Super Bowl 50.", HITS, timeout_ms=400)
    except DeadlineExceeded:
        pass  # no token at all within 400 ms is also a correct outcome
    else:
        assert a.truncated
    assert time.perf_counter() - t < 0.4 * 1.1 + 0.2  # at most one token late


def test_unreachable_server_and_bad_config() -> None:
    gen = OpenAIGenerator(OpenAIConfig(f"http://127.0.0.1:{free_port()}/v1", "m"))
    with pytest.raises(RagfleetError, match="cannot reach"):
        gen.generate("q", HITS, timeout_ms=2000)
    with pytest.raises(ConfigError):
        OpenAIConfig("ftp://x", "m")
    assert parse_event('data: {"choices": [{"text": "hi"}]}', "completions") == "hi"
    assert parse_event("data: [DONE]", "chat") is None
    assert parse_event(": keep-alive", "chat") == ""
