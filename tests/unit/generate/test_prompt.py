"""Prompt packing: best passages first, numbered, never over the token budget."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragfleet.errors import ConfigError, InputError
from ragfleet.generate.prompt import PromptConfig, build_prompt, passage_line, render
from ragfleet.ingest.tokenize import minilm_tokenizer
from ragfleet.types import Hit

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "theta",
    "kappa",
    "lambda",
    "Denver",
    "Broncos",
    "1879",
    "naïve",
    "co-operate",
    "U.S.",
    "日本",
]


def hit(i: int, text: str, title: str = "") -> Hit:
    return Hit(i + 1, f"d{i}", f"d{i}#0", 1.0 / (i + 1), text, 0, title=title)


texts = st.lists(st.sampled_from(WORDS), min_size=1, max_size=120).map(" ".join)


@settings(max_examples=80, deadline=None)
@given(
    bodies=st.lists(texts, min_size=0, max_size=8),
    budget=st.integers(40, 600),
    max_passages=st.integers(1, 6),
)
def test_packing_never_exceeds_the_budget_and_keeps_rank_order(
    bodies: list[str], budget: int, max_passages: int
) -> None:
    tok = minilm_tokenizer()
    hits = [hit(i, b, title="T" if i % 2 else "") for i, b in enumerate(bodies)]
    config = PromptConfig(budget_tokens=budget, max_passages=max_passages, min_passage_tokens=4)
    p = build_prompt("what is gamma?", hits, tok, config)
    assert p.n_tokens == tok.count([p.text])[0] <= budget
    assert len(p.passages) <= max_passages
    # best first: passage n is hit n (whole, or its last one cut to a prefix)
    for n, (got, src) in enumerate(zip(p.passages, hits, strict=False), start=1):
        assert got.chunk_id == src.chunk_id
        assert src.text.startswith(got.text)
        assert f"[{n}] " in p.text
        if got.text != src.text:
            assert n == len(p.passages)
    assert p.text.endswith("Question: what is gamma?\nAnswer:")


def test_all_passages_fit_when_the_budget_is_large() -> None:
    hits = [hit(i, f"passage number {i} about gamma") for i in range(3)]
    p = build_prompt("q?", hits, minilm_tokenizer(), PromptConfig(budget_tokens=512))
    assert p.passages == tuple(hits)
    assert p.text == render("q?", hits)
    assert passage_line(2, hits[1]) in p.text


def test_question_over_the_budget_raises() -> None:
    with pytest.raises(InputError, match="prompt budget"):
        build_prompt("gamma " * 200, [], minilm_tokenizer(), PromptConfig(budget_tokens=64))
    with pytest.raises(ConfigError):
        PromptConfig(budget_tokens=4)
