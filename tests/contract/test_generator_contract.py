"""One behavioural suite over every Generator: the extractive one, the local GGUF model
(llama-cpp-python) and an OpenAI-compatible server (a real llama.cpp server over the same
GGUF). Each must answer from the passages it was given only (every ``[n]`` resolves to
``passages[n - 1]``, a passage it was passed), report its model and its ``generate``
time, leave its input alone, refuse an empty question, cite nothing when given no
passages, and — where it says it streams — send pieces that add up to its text."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from tests.llama_server import llama_openai_server

from ragfleet.errors import InputError
from ragfleet.generate.base import Answer, Generator
from ragfleet.types import Hit

pytestmark = pytest.mark.model

KINDS = ["extractive", "llama", "openai"]
Q = "Where was Super Bowl 50 played?"
HITS = [
    Hit(1, "sb50", "sb50#0", 1.0, "Super Bowl 50 was played at Levi's Stadium in Santa Clara.",
        0, title="Super Bowl 50"),
    Hit(2, "bread", "bread#0", 0.5, "Sourdough bread is leavened by a starter.", 0),
    Hit(3, "nile", "nile#0", 0.2, "The Nile flows north into the Mediterranean Sea.", 0),
]  # fmt: skip


@pytest.fixture(scope="module")
def openai_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with llama_openai_server(tmp_path_factory) as url:
        yield url


@pytest.fixture(scope="module", params=KINDS)
def generator(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, encoder: Any
) -> Generator:
    kind = request.param
    if kind == "extractive":
        from ragfleet.generate.extractive import Extractive

        return Extractive(encoder=encoder)
    if kind == "llama":
        pytest.importorskip("llama_cpp", reason="llama-cpp-python (extra 'llama') is not installed")
        from ragfleet.generate.llama import LlamaConfig, LlamaGenerator, bundled_model_path

        path = bundled_model_path(tmp_path_factory.mktemp("gguf"))
        return LlamaGenerator(LlamaConfig(model_path=str(path), max_tokens=32))
    from ragfleet.generate.openai import OpenAIConfig, OpenAIGenerator

    url = request.getfixturevalue("openai_url")
    return OpenAIGenerator(OpenAIConfig(url, "gemma", endpoint="completions", max_tokens=32))


def _cites_only_its_passages(a: Answer, given: list[Hit]) -> None:
    shown = [p.chunk_id for p in a.passages]
    assert all(p in given for p in a.passages), shown  # a subset of what it was given,
    assert len(set(shown)) == len(shown), shown  # each passage once
    for c in a.citations:
        assert 1 <= c.n <= len(a.passages)
        p = a.passages[c.n - 1]
        assert (c.chunk_id, c.doc_id) == (p.chunk_id, p.doc_id)
        if c.span is not None:
            start, end = c.span
            assert 0 <= start < end <= len(p.text)


def test_is_a_generator(generator: Generator) -> None:
    assert isinstance(generator, Generator) and generator.name


def test_answers_from_its_passages_only(generator: Generator) -> None:
    before = [dataclasses.replace(h) for h in HITS]
    a = generator.generate(Q, HITS, timeout_ms=60_000)
    assert before == HITS  # the input is not mutated
    assert a.text.strip() and a.model and a.timings_ms["generate"] >= 0
    _cites_only_its_passages(a, HITS)
    d = a.to_dict()
    assert d["text"] == a.text and len(d["passages"]) == len(a.passages)


def test_no_passages_no_citation(generator: Generator) -> None:
    a = generator.generate(Q, [], timeout_ms=60_000)
    assert a.citations == () and a.passages == ()


def test_an_empty_question_is_refused(generator: Generator) -> None:
    for q in ("", "   "):
        with pytest.raises(InputError):
            generator.generate(q, HITS)


def test_streamed_pieces_add_up_to_the_text(generator: Generator) -> None:
    """A generator that says it streams takes ``on_token``; one that does not answers at
    once (the pipeline then sends its text as one piece) and takes no such argument."""
    takes = "on_token" in inspect.signature(generator.generate).parameters
    assert takes == bool(getattr(generator, "streams", False))
    if not takes:
        return
    pieces: list[str] = []
    a = generator.generate(Q, HITS, timeout_ms=60_000, on_token=pieces.append)  # type: ignore[call-arg]
    assert pieces and all(pieces)
    assert a.text.startswith("".join(pieces).strip())  # a post-hoc citation may follow
    _cites_only_its_passages(a, HITS)
