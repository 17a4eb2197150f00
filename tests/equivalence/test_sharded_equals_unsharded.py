"""Sharding must not change answers: 1 shard and 4 shards give the same ranking and scores."""

from __future__ import annotations

import pytest

QUERIES = [
    "Which NFL team won Super Bowl 50?",
    "Who sang at the halftime show?",
    "What stadium hosted the game?",
    "How many tackles did the defense make?",
    "Where is Warsaw located?",
    "Which river flows through the city?",
    "What is the population of Warsaw?",
    "Who designed the Palace of Culture?",
]


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_four_shards_equal_one_shard(collection_factory, mode: str) -> None:  # type: ignore[no-untyped-def]
    one, four = collection_factory(1), collection_factory(4)
    assert {s["documents"] for s in four.stats()["shards"]} != {0}  # every shard holds data
    for q in QUERIES:
        a = one.search(q, k=10, mode=mode)
        b = four.search(q, k=10, mode=mode)
        assert [h.chunk_id for h in a.hits] == [h.chunk_id for h in b.hits], q
        for ha, hb in zip(a.hits, b.hits, strict=True):
            for signal, score in ha.scores.items():
                assert hb.scores[signal] == pytest.approx(score, abs=1e-5), (q, signal)
        assert b.coverage == 1.0


def test_flat_dense_equals_brute_force(collection_factory, encoder) -> None:  # type: ignore[no-untyped-def]
    """The oracle: exact inner product over every stored vector, computed here with numpy."""
    import numpy as np

    col = collection_factory(4)
    q = "Who won the AFC championship?"
    res = col.search(q, k=10, mode="dense")
    rows = [(s.shard_id, r) for s in col.shards for r in range(s.dense.ntotal)]
    vecs = np.concatenate(
        [s.dense.faiss_index.reconstruct_n(0, s.dense.ntotal) for s in col.shards]
    )
    scores = vecs @ encoder.encode([q], kind="query")[0]
    best = np.argsort(-scores, kind="stable")[:10]
    assert [(h.shard, h.score) for h in res.hits] == [
        (rows[i][0], pytest.approx(float(scores[i]), abs=1e-5)) for i in best
    ]
