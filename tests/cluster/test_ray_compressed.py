"""A compressed collection on Ray: shard actors map the on-disk vectors and rescore from
them, answering as the same collection in process, oversample and rescore included."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ragfleet.search.request import SearchRequest

QUERIES = ["Which NFL team won Super Bowl 50?", "Where is Warsaw located?"]


@pytest.fixture(scope="module")
def binary_collection(tmp_path_factory: pytest.TempPathFactory, encoder: Any) -> Any:
    from tests.conftest import demo_docs

    from ragfleet.collection import Collection
    from ragfleet.config import CollectionConfig, IndexConfig, ShardingConfig

    path: Path = tmp_path_factory.mktemp("ray-binary") / "c"
    config = CollectionConfig(sharding=ShardingConfig(n_shards=2), index=IndexConfig("binary"))
    col = Collection.build(path, demo_docs(40), config, encoder=encoder)
    os.sync()
    yield col
    col.close()


@pytest.fixture(scope="module")
def binary_fleet(ray_cluster: Any, binary_collection: Any) -> Any:
    from ragfleet.fleet import Fleet

    fleet = Fleet.open(binary_collection.path, backend="ray", encoder=binary_collection.encoder)
    yield fleet
    fleet.close()


@pytest.mark.parametrize(
    "req",
    [
        SearchRequest(k=5, mode="dense"),
        SearchRequest(k=5, mode="dense", oversample=2.0),
        SearchRequest(k=5, mode="hybrid", rescore=False),
    ],
    ids=["defaults", "oversample", "codes-only"],
)
def test_ray_binary_equals_local(binary_fleet: Any, binary_collection: Any, req: Any) -> None:
    a = binary_collection.search_batch(QUERIES, req)
    b = binary_fleet.search_batch(QUERIES, req)
    for ra, rb in zip(a, b, strict=True):
        assert [h.chunk_id for h in ra.hits] == [h.chunk_id for h in rb.hits]
        assert [h.score for h in rb.hits] == pytest.approx([h.score for h in ra.hits], abs=1e-6)
        assert rb.coverage == 1.0


def test_ray_shards_report_codes_in_ram(binary_fleet: Any) -> None:
    for shard in binary_fleet.shards:
        dense = shard.stats()["dense"]
        assert dense["vectors_on_disk"] == "fp32" and dense["ram_bytes_per_vector"] < 1536 / 16
