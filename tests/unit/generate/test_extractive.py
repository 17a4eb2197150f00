"""The extractive generator: quotes the answer-bearing sentence and cites its passage."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragfleet.errors import ConfigError, InputError
from ragfleet.generate.extractive import (
    Extractive,
    ExtractiveConfig,
    split_passages,
    term_overlap,
)
from ragfleet.types import Hit

PASSAGES = [
    (
        "Super Bowl 50",
        "Super Bowl 50 was an American football game. It was played on February 7, "
        "2016, at Levi's Stadium in Santa Clara, California.",
    ),
    (
        "Denver Broncos",
        "The Denver Broncos are a professional football team. The Broncos "
        "defeated the Carolina Panthers 24–10 to win Super Bowl 50.",
    ),
    ("Sourdough", "Sourdough bread is leavened by a starter. It has a sour taste."),
]


@pytest.fixture(scope="module")
def gen() -> Extractive:
    return Extractive()


def hits(rows: list[tuple[str, str]]) -> list[Hit]:
    return [
        Hit(i + 1, f"d{i}", f"d{i}#0", 1.0, text, 0, title=t) for i, (t, text) in enumerate(rows)
    ]


def test_term_overlap_formula() -> None:
    # N = 2 sentences; df(a) = 2, df(b) = 1: idf(a) = ln 2, idf(b) = ln 3
    got = term_overlap({"a", "b"}, [{"a", "b"}, {"a"}])
    a, b = np.log(2.0), np.log(3.0)
    np.testing.assert_allclose(got, [1.0, a / (a + b)])
    assert term_overlap(set(), [{"a"}]).tolist() == [0.0]


def test_answer_sentence_is_quoted_and_cited(gen: Extractive) -> None:
    hs = hits(PASSAGES)
    a = gen.generate("Where was Super Bowl 50 played?", hs)
    assert "Levi's Stadium" in a.text and a.text.endswith("[1]")
    (c,) = a.citations
    assert (c.n, c.doc_id) == (1, "d0")
    assert c.span is not None and hs[0].text[c.span[0] : c.span[1]] in a.text
    b = gen.generate("Whom did the Broncos defeat to win Super Bowl 50?", hs)
    assert "Carolina Panthers" in b.text and b.citations[0].doc_id == "d1"


def test_rank_prior_breaks_ties_towards_the_better_passage(gen: Extractive) -> None:
    same = [("A", "The sky is blue."), ("B", "The sky is blue.")]
    assert gen.generate("what colour is the sky", hits(same)).citations[0].n == 1


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["", "T"]), st.sampled_from([p[1] for p in PASSAGES] + ["x."])),
        max_size=7,
    ),
    q=st.sampled_from(["who won", "where was it played", "sour bread", "zzz"]),
)
def test_citations_always_point_at_passed_passages(
    gen: Extractive, rows: list[tuple[str, str]], q: str
) -> None:
    hs = hits(rows)
    a = gen.generate(q, hs)
    for c in a.citations:
        assert 1 <= c.n <= len(a.passages)
        p = a.passages[c.n - 1]
        assert (c.chunk_id, c.doc_id) == (p.chunk_id, p.doc_id)
        assert c.span is not None and p.text[c.span[0] : c.span[1]] in a.text
    assert all(p in hs for p in a.passages)


def test_no_passages_no_answer_and_bad_input(gen: Extractive) -> None:
    a = gen.generate("anything", [])
    assert a.text == "" and a.citations == () and a.passages == ()
    with pytest.raises(InputError):
        gen.generate("  ", hits(PASSAGES))
    with pytest.raises(ConfigError):
        ExtractiveConfig(sentences=0)


class CountingEncoder:
    """The real bundled encoder, counting how many texts it is asked to read."""

    def __init__(self) -> None:
        from ragfleet.embed.registry import load_encoder

        self.inner = load_encoder("minilm-int8")
        self.texts = 0

    def encode(self, texts: list[str], kind: str = "document") -> np.ndarray:
        self.texts += len(texts)
        return self.inner.encode(texts, kind=kind)  # type: ignore[arg-type]


@pytest.mark.model
def test_dense_term_reads_only_the_shortlist_and_respects_the_timeout() -> None:
    enc = CountingEncoder()
    gen = Extractive(ExtractiveConfig(dense_shortlist=2), encoder=enc)
    hs = hits(PASSAGES)  # 6 sentences
    a = gen.generate("Where was Super Bowl 50 played?", hs)
    assert "Levi's Stadium" in a.text
    assert enc.texts == 1 + 2  # the query and the two shortlisted sentences
    # the shortlist is chosen by the lexical score: outside it nothing can win
    sents = split_passages(hs)
    scores = gen.score("Where was Super Bowl 50 played?", sents)
    assert np.isfinite(scores).sum() == 2
    # a timeout below the dense term's observed cost leaves it out (lexical only)
    before = enc.texts
    b = gen.generate("Where was Super Bowl 50 played?", hs, timeout_ms=0.001)
    assert enc.texts == before and "Levi's Stadium" in b.text
    assert b.truncated and not a.truncated  # the deadline cut the dense term
    assert not gen.dense_fits(0.001) and gen.dense_fits(None)
    with pytest.raises(ConfigError):
        ExtractiveConfig(sentences=3, dense_shortlist=2)
