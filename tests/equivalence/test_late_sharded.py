"""Sharding must not change the late-interaction rerank: 1 shard and 4 shards give the
same reranked order and MaxSim scores (each chunk's token vectors live with it)."""

from __future__ import annotations

from typing import Any

import pytest

from ragfleet.rerank.late import LateReranker

pytestmark = pytest.mark.model

QUERIES = [
    "Which NFL team won Super Bowl 50?",
    "Who sang at the halftime show?",
    "Where is Warsaw located?",
    "Which river flows through the city?",
    "Who designed the Palace of Culture?",
]


@pytest.mark.parametrize("via", ["scores", "blocks"])
def test_four_shards_rerank_like_one(collection_factory: Any, via: str) -> None:
    one, four = collection_factory(1, tokens=True), collection_factory(4, tokens=True)
    for q in QUERIES:
        a = LateReranker(one).rerank(q, one.search(q, k=30).hits, 10)
        b = LateReranker(four, via=via).rerank(q, four.search(q, k=30).hits, 10)  # type: ignore[arg-type]
        assert [h.chunk_id for h in a] == [h.chunk_id for h in b], q
        assert [h.score for h in b] == pytest.approx([h.score for h in a], abs=1e-4), q
