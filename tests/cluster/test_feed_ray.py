"""The change feed writing through a Ray Fleet's shard owner actors (replicas on a real
loopback Ray cluster): an acknowledged entry is searchable on every replica, and the owners
wrote the collection on disk."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from tests.unit.cache.conftest import RedisServer, redis_server, start_redis

from ragfleet.types import Document

__all__ = ["redis_server", "start_redis"]


def test_the_feed_writes_through_a_ray_fleet(
    ray_cluster: Any, ray_collection: Any, redis_server: RedisServer, tmp_path: Path
) -> None:
    from ragfleet.collection import Collection
    from ragfleet.collection.layout import Layout
    from ragfleet.feed import FeedWorker, StreamAddress, WorkerConfig, feed_status, publish
    from ragfleet.feed.ledger import Ledger
    from ragfleet.fleet import Fleet

    root = tmp_path / "c"
    shutil.copytree(ray_collection.path, root)
    encoder = ray_collection.encoder
    address = StreamAddress.parse(f"{redis_server.url}?stream=ray-feed")
    publish(address, [Document("owl", "Owls hunt at night on silent feathers."),
                      Document("hawk", "Hawks hunt by day."), ("delete", "hawk")])  # fmt: skip
    with Fleet.open(root, backend="ray", replicas=2, encoder=encoder, writable=True) as fleet:
        ledger = Ledger(Layout.of(root).feed_ledger(address.stream, "g"))
        worker = FeedWorker(fleet, address, WorkerConfig("g", claim_every_s=0.5), ledger)
        worker.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            st = feed_status(address, "g")
            if st.lag_entries == 0 and st.pending == 0:
                break
            time.sleep(0.05)
        worker.stop()
        ledger.close()
        assert worker.errors == []
        for _ in range(6):  # whichever replica answers has the write
            hits = fleet.search("silent night hunters", k=10).hits
            assert hits[0].doc_id == "owl" and "hawk" not in {h.doc_id for h in hits}
    with Collection.open(root, encoder=encoder, read_only=True) as col:
        live = {d for s in col.shards for d in s.doc_hashes()}
    assert "owl" in live and "hawk" not in live
