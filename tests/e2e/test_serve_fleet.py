"""The HTTP service serves a Fleet like a Collection (issue 16): search equals the
collection's, and writes go through the shard owners and are seen at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")

from tests.conftest import demo_docs
from tests.e2e._server import running

from ragfleet.client import Client
from ragfleet.collection import Collection
from ragfleet.config import CollectionConfig, ShardingConfig
from ragfleet.types import Document


def test_a_writable_fleet_behind_the_service(tmp_path: Path, encoder: Any) -> None:
    from ragfleet.fleet import Fleet
    from ragfleet.serve.app import create_app
    from ragfleet.serve.auth import KeyStore, new_key
    from ragfleet.serve.settings import ServeSettings

    root = tmp_path / "c"
    config = CollectionConfig(sharding=ShardingConfig(n_shards=2))
    Collection.build(root, demo_docs(20), config, encoder=encoder).close()
    fleet = Fleet.open(root, encoder=encoder, replicas=2, writable=True)
    key, record = new_key("fleet", ("write",), iterations=1000)
    app = create_app({"c": fleet}, ServeSettings(), KeyStore([record]), owns_collections=True)
    with running(app) as url, Client(url, key) as client:
        remote = client.collection("c")
        q = "Who won Super Bowl 50?"
        want = [h.chunk_id for h in fleet.search(q, k=5).hits]
        assert [h.chunk_id for h in remote.search(q, k=5).hits] == want
        client.upsert("c", [Document("owl", "Owls hunt at night on silent feathers.")])
        assert remote.search("silent night hunters", k=1).hits[0].doc_id == "owl"
        assert client.delete("c", ["owl"]) == 1
        assert client.stats("c")["documents"] == 20
    with Collection.open(root, encoder=encoder, read_only=True) as col:  # closed, checkpointed
        assert len(col.doc_ids()) == 20
        assert all(s["wal_seq"] == s["checkpoint_seq"] for s in col.stats()["shards"])
