"""The OpenAI-compatible client against a real ``llama_cpp.server`` on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from tests.llama_server import free_port, llama_openai_server

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


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with llama_openai_server(tmp_path_factory) as url:
        yield url


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
