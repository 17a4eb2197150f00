"""Ray backend == local backend: the same collection answers identically on the cluster."""

from __future__ import annotations

import pytest

QUERIES = [
    "Which NFL team won Super Bowl 50?",
    "Who sang at the halftime show?",
    "Where is Warsaw located?",
    "What stadium hosted the game?",
]


@pytest.fixture(scope="module")
def ray_fleet(ray_cluster, ray_collection):  # type: ignore[no-untyped-def]
    from ragfleet.fleet import Fleet

    fleet = Fleet.open(
        ray_collection.path, backend="ray", replicas=2, encoder=ray_collection.encoder
    )
    yield fleet
    fleet.close()


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_ray_equals_local(ray_fleet, ray_collection, mode: str) -> None:  # type: ignore[no-untyped-def]
    for q in QUERIES:
        a = ray_collection.search(q, k=10, mode=mode)
        b = ray_fleet.search(q, k=10, mode=mode, timeout_ms=30_000)
        assert [h.chunk_id for h in a.hits] == [h.chunk_id for h in b.hits], q
        assert [h.text for h in a.hits] == [h.text for h in b.hits]
        for ha, hb in zip(a.hits, b.hits, strict=True):
            assert hb.scores == pytest.approx(ha.scores, abs=1e-6)
        assert b.coverage == 1.0 and b.missing_shards == ()


def test_batch_and_filters_equal_local(ray_fleet, ray_collection) -> None:  # type: ignore[no-untyped-def]
    from ragfleet.search.request import SearchRequest

    req = SearchRequest(k=5, mode="hybrid", unique_docs=True)
    a = ray_collection.search_batch(QUERIES, req)
    b = ray_fleet.search_batch(QUERIES, req)
    assert [[h.chunk_id for h in r.hits] for r in a] == [[h.chunk_id for h in r.hits] for r in b]


def test_replicas_of_a_shard_run_on_different_nodes(ray_fleet) -> None:  # type: ignore[no-untyped-def]
    for shard in ray_fleet.shards:
        nodes = {r.where()[1] for r in shard.replicas}
        assert len(nodes) == 2, f"shard {shard.shard_id}'s replicas share a node"


@pytest.mark.parametrize("via", ["scores", "blocks"])
def test_late_rerank_on_ray_equals_local(ray_fleet, ray_collection, via: str) -> None:  # type: ignore[no-untyped-def]
    """MaxSim over stored token vectors: the shard actors score them (or return their
    packed blocks) and the reranked order and scores equal the local collection's."""
    from ragfleet.rerank.late import LateReranker

    local, remote = LateReranker(ray_collection), LateReranker(ray_fleet, via=via)  # type: ignore[arg-type]
    for q in QUERIES:
        hits = ray_collection.search(q, k=20).hits
        a = local.rerank(q, hits, 10)
        ray_fleet.search(q, k=20, timeout_ms=30_000)
        b = remote.rerank(q, hits, 10)
        assert [h.chunk_id for h in a] == [h.chunk_id for h in b], q
        assert [h.score for h in b] == pytest.approx([h.score for h in a], abs=1e-4)
