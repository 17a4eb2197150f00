"""The shared rerank contract: candidate budget, order, renumbering, no mutation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragfleet.errors import ConfigError, InputError
from ragfleet.rerank.base import RerankConfig, Scores, passage_text, reorder, rerank_with
from ragfleet.types import Hit


def make_hits(n: int) -> list[Hit]:
    return [
        Hit(
            rank=i + 1,
            doc_id=f"d{i}",
            chunk_id=f"d{i}#0",
            score=float(n - i),
            text=f"t{i}",
            shard=0,
            scores={"fused": float(n - i)},
            ranks={"fused": i + 1},
        )
        for i in range(n)
    ]


class LengthReranker:
    """A real (if silly) reranker: longer passages score higher; counts what it scores."""

    name = "length"

    def __init__(self, candidates: int) -> None:
        self.config = RerankConfig(candidates=candidates)
        self.seen: list[int] = []

    def score(self, query: str, texts: Sequence[str]) -> Scores:
        self.seen.append(len(texts))
        return np.array([len(t) for t in texts], dtype=np.float32)

    def rerank(self, query: str, hits: Sequence[Hit], top_n: int) -> list[Hit]:
        return rerank_with(self, query, hits, top_n)


@settings(max_examples=60, deadline=None)
@given(
    scores=st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=12),
    n_tail=st.integers(0, 5),
    top_n=st.integers(1, 20),
)
def test_reorder_sorts_head_keeps_tail_and_renumbers(
    scores: list[float], n_tail: int, top_n: int
) -> None:
    hits = make_hits(len(scores) + n_tail)
    head, tail = hits[: len(scores)], hits[len(scores) :]
    before = [h.to_dict() for h in hits]
    out = reorder(head, np.array(scores, dtype=np.float32), tail, top_n)
    assert [h.to_dict() for h in hits] == before  # inputs untouched
    assert len(out) == min(top_n, len(hits))
    assert [h.rank for h in out] == list(range(1, len(out) + 1))
    got = [h.scores["rerank"] for h in out if "rerank" in h.scores]
    assert got == sorted(got, reverse=True)
    assert [h.chunk_id for h in out[len(scores) :]] == [h.chunk_id for h in tail][
        : max(0, top_n - len(scores))
    ]
    for h in out:
        if "rerank" in h.scores:
            assert h.score == h.scores["rerank"] and h.scores["fused"] == float(
                len(hits) - int(h.doc_id[1:])
            )


def test_ties_keep_incoming_order() -> None:
    hits = make_hits(4)
    out = reorder(hits, np.zeros(4, dtype=np.float32), [], 4)
    assert [h.doc_id for h in out] == ["d0", "d1", "d2", "d3"]
    assert [h.ranks["rerank"] for h in out] == [1, 2, 3, 4]


def test_candidate_budget_limits_what_is_scored() -> None:
    hits = [
        Hit(rank=i + 1, doc_id=f"d{i}", chunk_id=f"d{i}#0", score=0.0, text="x" * (i + 1), shard=0)
        for i in range(10)
    ]
    r = LengthReranker(candidates=4)
    out = r.rerank("q", hits, top_n=6)
    assert r.seen == [4]
    # the four candidates reversed (longest first), then the unscored tail in order
    assert [h.doc_id for h in out] == ["d3", "d2", "d1", "d0", "d4", "d5"]
    assert "rerank" not in out[4].scores


def test_bad_requests_raise() -> None:
    r = LengthReranker(candidates=4)
    with pytest.raises(InputError):
        r.rerank(" ", make_hits(2), 2)
    with pytest.raises(InputError):
        r.rerank("q", make_hits(2), 0)
    with pytest.raises(InputError):
        reorder(make_hits(2), np.zeros(3, dtype=np.float32), [], 2)
    with pytest.raises(ConfigError):
        RerankConfig(candidates=0)
    assert r.rerank("q", [], 3) == []


def test_passage_text_prefixes_title() -> None:
    h = make_hits(1)[0]
    assert passage_text(h) == "t0"
    assert passage_text(Hit(1, "d", "d#0", 0.0, "body", 0, title="T")) == "T\nbody"
