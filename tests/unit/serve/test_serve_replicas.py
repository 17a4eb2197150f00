"""A served fleet's replica health: /readyz counts healthy replicas without naming a
collection (503 once a shard has none), /metrics has per-replica series and the stats
route per-replica detail."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from tests.unit.serve.conftest import Keys, serve

from ragfleet.cluster.replicated import HedgeConfig, ReplicatedShard
from ragfleet.index.shard import ShardQuery, ShardResult

QUERY = "Who won Super Bowl 50?"


class Flaky:
    """A replica over a real shard whose ``search`` raises while ``fail`` is set."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.fail = False

    @property
    def shard_id(self) -> int:
        return int(self.inner.shard_id)

    def search(self, q: ShardQuery) -> ShardResult:
        if self.fail:
            raise ConnectionError("replica lost")
        return self.inner.search(q)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def fleet(collection_factory: Any, encoder: Any) -> Iterator[Any]:
    """``demo``'s 2 shards, 2 replicas each (both over the same open shard)."""
    from ragfleet.fleet import Fleet

    col = collection_factory(shards=2)
    hedge = HedgeConfig(hedge=False, down_s=60.0, latency_aware=False)
    shards = [ReplicatedShard([Flaky(s), Flaky(s)], hedge) for s in col.shards]
    f = Fleet(shards, encoder, col.info, col.placement, name="demo")
    yield f
    f.close()


def _healthy(metrics: str, shard: int, replica: int) -> float:
    labels = f'collection="demo",replica="{replica}",shard="{shard}"'
    found = re.search(rf"^ragfleet_replica_healthy\{{{labels}\}} (\S+)$", metrics, re.M)
    assert found, f"no healthy gauge for shard {shard} replica {replica}"
    return float(found.group(1))


def test_readyz_and_metrics_follow_replica_health(fleet: Any, keys: Keys) -> None:
    admin, read = keys.header("admin"), keys.header("read")
    with serve({"demo": fleet}, keys, rate_per_s=0) as c:
        ready = c.get("/readyz")
        assert ready.status_code == 200 and "demo" not in ready.text
        counts = {"shards": 2, "shards_down": 0, "replicas": 4, "replicas_healthy": 4}
        assert ready.json() == {"status": "ready", "replicas": counts}
        assert c.post("/v1/collections/demo/search", json={"query": QUERY}, headers=read).is_success

        fleet.shards[0].replicas[0].fail = True  # one replica lost: still served, degraded
        for _ in range(50):  # until the lost one is tried: a coin flip per call
            assert c.post(
                "/v1/collections/demo/search", json={"query": QUERY}, headers=read
            ).is_success
            if not fleet.shards[0].replica_states()[0].healthy:
                break
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        assert ready.json()["replicas"]["replicas_healthy"] == 3
        text = c.get("/metrics", headers=admin).text
        assert _healthy(text, 0, 0) == 0 and _healthy(text, 0, 1) == _healthy(text, 1, 0) == 1
        assert re.search(r'^ragfleet_replica_failures_total\{collection="demo",replica="0",'
                         r'shard="0"\} 1\.0$', text, re.M)  # fmt: skip
        assert 'ragfleet_replica_seconds_count{collection="demo",replica="1",shard="0"}' in text
        assert "ragfleet_replica_inflight{" in text and "ragfleet_replica_calls_total{" in text
        shard0 = c.get("/v1/collections/demo/stats", headers=read).json()["shards"][0]
        assert shard0["healthy_replicas"] == 1
        assert [r["healthy"] for r in shard0["replica_states"]] == [False, True]

        fleet.shards[0].replicas[1].fail = True  # shard 0 has no replica left: not ready
        c.post("/v1/collections/demo/search", json={"query": QUERY}, headers=read)
        down = c.get("/readyz")
        assert down.status_code == 503 and down.json()["status"] == "unavailable"
        assert down.json()["replicas"] == {**counts, "shards_down": 1, "replicas_healthy": 2}


def test_plain_collections_keep_the_bare_readyz(collection_factory: Any, keys: Keys) -> None:
    with serve({"demo": collection_factory(shards=2)}, keys) as c:
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}
        assert (
            "ragfleet_replica_healthy{" not in c.get("/metrics", headers=keys.header("admin")).text
        )


def test_the_spec_opens_fleets_as_serve_does(
    tmp_path: Any, encoder: Any, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ragfleet serve DIR --backend local --replicas 2``'s spec: each directory opened as
    a writable Fleet with 2 replicas per shard, answering as the collection does."""
    from tests.conftest import demo_docs

    from ragfleet.collection import Collection
    from ragfleet.config import CollectionConfig, ShardingConfig
    from ragfleet.fleet import Fleet
    from ragfleet.serve.factory import ENV, from_env, spec_json
    from ragfleet.serve.settings import FleetSettings, ServeSettings

    root = tmp_path / "c"
    config = CollectionConfig(sharding=ShardingConfig(n_shards=2))
    with Collection.build(root, demo_docs(20), config, encoder=encoder) as col:
        want = [h.chunk_id for h in col.search(QUERY, k=5).hits]
    keys.store.save(tmp_path / "keys.json")
    fleet_settings = FleetSettings("local", replicas=2)
    spec = spec_json([root], tmp_path / "keys.json", ServeSettings(), fleet_settings)
    monkeypatch.setenv(ENV, spec)
    svc = from_env().state.service
    fleet = svc.collections["c"]
    try:
        assert isinstance(fleet, Fleet) and not fleet.read_only
        assert [len(s.replicas) for s in fleet.shards] == [2, 2]
        assert [h.chunk_id for h in fleet.search(QUERY, k=5).hits] == want
    finally:
        svc.close()
        fleet.close()
