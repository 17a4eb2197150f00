"""Compressed specs with rescoring answer as flat does once every row is a candidate.

With ``+refine`` (float32 vectors on disk) and ``k · oversample >=`` the rows of a shard,
the codes only decide which rows are rescored — all of them — so the dense ranking and
scores are flat's exactly: the oracle holds through sharding, filters, upserts, deletes,
compaction and resharding. float16 vectors (``+refine16``) agree to their rounding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.conftest import demo_docs

from ragfleet.collection import Collection
from ragfleet.config import CollectionConfig, IndexConfig, ShardingConfig
from ragfleet.search.request import SearchRequest
from ragfleet.types import Document

QUERIES = [
    "Which NFL team won Super Bowl 50?",
    "Who sang at the halftime show?",
    "Where is Warsaw located?",
    "What is the population of Warsaw?",
]
ALL_ROWS = SearchRequest(k=10, mode="dense", oversample=100.0)  # 1,000 candidates per shard
SPECS = ["binary", "sq8+refine", "ivf4,pq16x4+refine"]  # 3 shards of ~40 rows: small codebooks


def ranking(col: Collection, req: SearchRequest = ALL_ROWS) -> list[list[tuple[str, float]]]:
    return [[(h.chunk_id, h.score) for h in r.hits] for r in col.search_batch(QUERIES, req)]


def assert_same(
    a: list[list[tuple[str, float]]], b: list[list[tuple[str, float]]], tol: float
) -> None:
    for ra, rb in zip(a, b, strict=True):
        assert [c for c, _ in ra] == [c for c, _ in rb]
        assert [s for _, s in rb] == pytest.approx([s for _, s in ra], abs=tol)


def make(path: Path, spec: str, shards: int, encoder: Any, docs: list[Document]) -> Collection:
    config = CollectionConfig(
        sharding=ShardingConfig(n_shards=shards), index=IndexConfig(spec=spec)
    )
    return Collection.build(path, docs, config, encoder=encoder)


@pytest.mark.parametrize("spec", SPECS)
def test_sharded_compressed_equals_flat_with_filters(
    collection_factory: Any, spec: str
) -> None:  # fmt: skip
    flat, comp = collection_factory(1, "flat"), collection_factory(3, spec)
    assert comp.stats()["shards"][0]["dense"]["vectors_on_disk"] == "fp32"
    assert_same(ranking(flat), ranking(comp), 1e-5)
    where = {"article": "Super_Bowl_50"}
    req = SearchRequest(k=10, mode="dense", oversample=100.0, filter=where)
    assert_same(ranking(flat, req), ranking(comp, req), 1e-5)
    hybrid = SearchRequest(k=10, mode="hybrid", oversample=100.0)
    assert [[c for c, _ in r] for r in ranking(flat, hybrid)] == [
        [c for c, _ in r] for r in ranking(comp, hybrid)
    ]


def test_writes_compaction_and_reshard_keep_flat_answers(tmp_path: Path, encoder: Any) -> None:
    docs = demo_docs(60)
    flat = make(tmp_path / "flat", "flat", 1, encoder, docs)
    comp = make(tmp_path / "comp", "sq8+refine16", 2, encoder, docs)
    try:
        changed = [Document(d.doc_id, d.text + " Warsaw river.", d.title, d.metadata)
                   for d in docs[:5]]  # fmt: skip
        gone = [d.doc_id for d in docs[5:25]]
        for col in (flat, comp):
            col.upsert(changed)
            col.delete(gone)
        assert_same(ranking(flat), ranking(comp), 2e-3)  # float16 vectors
        assert comp.compact(threshold=0.1)  # the tombstones are reclaimed...
        assert_same(ranking(flat), ranking(comp), 2e-3)  # ...from the stored vectors
        for s in comp.shards:
            assert s.rows.n_rows == s.rows.n_live == s.dense.ntotal == len(s.dense.vectors or ())
    finally:
        flat.close()
        comp.close()
    from ragfleet.collection.reshard import reshard

    reshard(tmp_path / "comp", 3)
    opened = [
        Collection.open(tmp_path / n, encoder=encoder, read_only=True) for n in ("comp", "flat")
    ]
    with opened[0] as again, opened[1] as oracle:
        assert len(again.shards) == 3
        assert_same(ranking(oracle), ranking(again), 2e-3)
