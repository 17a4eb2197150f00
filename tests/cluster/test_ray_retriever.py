"""The Retriever and ShardClient contracts on a real Ray cluster (head + worker on
loopback): a Ray Fleet answers the contract's requests like the collection, a cache in
front of it too, and a writable Ray Fleet writes through its owner actors, whose replicas
see each write as soon as it is acknowledged."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from tests.contract.test_retriever_contract import QUERIES, REQUESTS, _hits

from ragfleet.types import Document


@pytest.mark.parametrize(
    "req", REQUESTS, ids=lambda r: f"{r.mode}-{r.unique_docs}-{bool(r.filter)}"
)
def test_a_ray_fleet_answers_like_the_collection(ray_cluster, ray_collection, req) -> None:  # type: ignore[no-untyped-def]
    from ragfleet.cache.memory import MemoryCache
    from ragfleet.cache.search import CachedSearch
    from ragfleet.fleet import Fleet

    with Fleet.open(
        ray_collection.path, backend="ray", replicas=2, encoder=ray_collection.encoder
    ) as fleet:
        cached = CachedSearch(fleet, MemoryCache(1 << 24))
        for q in QUERIES:
            want = _hits(ray_collection.search(q, req))
            assert _hits(fleet.search(q, req)) == want
            assert _hits(cached.search(q, req)) == want
            assert _hits(cached.search(q, req)) == want  # from the cache


def test_a_writable_ray_fleet_writes_through_the_owner_actors(
    ray_cluster: Any, ray_collection: Any, tmp_path: Path
) -> None:
    from ragfleet.collection import Collection
    from ragfleet.errors import InputError
    from ragfleet.fleet import Fleet

    root = tmp_path / "c"
    shutil.copytree(ray_collection.path, root)
    encoder = ray_collection.encoder
    with Fleet.open(root, backend="ray", replicas=2, encoder=encoder, writable=True) as fleet:
        fleet.upsert([Document("owl", "Owls hunt at night on silent feathers.")])
        for _ in range(6):  # whichever replica answers has refreshed
            assert fleet.search("silent night hunters", k=1).hits[0].doc_id == "owl"
        assert fleet.delete(["owl"]) == 1
        assert "owl" not in {h.doc_id for h in fleet.search("owls", k=10).hits}
        with pytest.raises(InputError, match="ef_search"):
            fleet.search("owls", ef_search=0)
        assert all(s.errors == 0 for s in fleet.shards)
        fleet.upsert([Document("hawk", "Hawks hunt by day.")])
    with Collection.open(root, encoder=encoder, read_only=True) as col:  # the owners wrote it
        assert "hawk" in col.doc_ids() and "owl" not in col.doc_ids()
