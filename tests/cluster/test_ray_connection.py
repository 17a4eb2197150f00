"""Two fleets on one Ray connection this process made: closing the first keeps the
connection for the second, whose shard owners still checkpoint when it closes; the
connection goes with the last."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import demo_docs

from ragfleet.collection import Collection
from ragfleet.config import CollectionConfig, ShardingConfig
from ragfleet.types import Document


def test_closing_one_fleet_keeps_the_connection_for_the_next(
    ray_cluster: Any, tmp_path: Path, encoder: Any
) -> None:
    import ray

    from ragfleet.fleet import Fleet

    config = CollectionConfig(sharding=ShardingConfig(n_shards=1))
    paths = [tmp_path / "a", tmp_path / "b"]
    for p in paths:
        Collection.build(p, demo_docs(6), config, encoder=encoder).close()
    ray.shutdown()  # the session's connection: the fleets make their own
    try:
        opts = {"backend": "ray", "address": ray_cluster.address, "writable": True}
        a, b = (Fleet.open(p, encoder=encoder, **opts) for p in paths)
        b.upsert([Document("owl", "Owls hunt at night on silent feathers.")])
        a.close()
        assert ray.is_initialized()  # b still needs it
        assert b.search("silent night hunters", k=1).hits[0].doc_id == "owl"
        b.close()
        assert not ray.is_initialized()  # the last one out closed it
    finally:
        if not ray.is_initialized():
            ray.init(address=ray_cluster.address, namespace="ragfleet-tests", log_to_driver=False)
    with Collection.open(paths[1], encoder=encoder, read_only=True) as col:  # checkpointed
        assert "owl" in col.doc_ids()
        assert all(s["wal_seq"] == s["checkpoint_seq"] for s in col.stats()["shards"])
