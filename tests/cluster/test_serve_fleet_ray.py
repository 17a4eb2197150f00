"""A Fleet on the real Ray cluster (head + a second node, 2 replicas per shard: one per
node) served over real HTTP the way ``ragfleet serve --backend ray --replicas 2`` opens
it: kill one replica actor under steady search load from several clients and no request
fails, every answer equals the collection's, and /readyz and /metrics show the dead
replica while its shard is still served; once a shard has lost both replicas /readyz
says 503."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")

from tests.e2e._server import running

QUERIES = ["Which NFL team won Super Bowl 50?", "Where is Warsaw located?", "Who sang?"]
CLIENTS = 3


class Load:
    """``CLIENTS`` threads POSTing searches until :meth:`stop`; every non-200 is kept."""

    def __init__(self, url: str, key: str, collection: str, want: dict[str, list[str]]) -> None:
        self.url, self.key, self.collection, self.want = url, key, collection, want
        self.done = threading.Event()
        self.failed: list[str] = []
        self.answers: list[bool] = []
        self.threads = [threading.Thread(target=self._client, args=(i,)) for i in range(CLIENTS)]

    def _client(self, i: int) -> None:
        import httpx

        path = f"/v1/collections/{self.collection}/search"
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=60.0) as http:
            while not self.done.is_set():
                q = QUERIES[i % len(QUERIES)]
                i += 1
                try:
                    r = http.post(path, json={"query": q, "k": 5})
                except httpx.HTTPError as e:
                    self.failed.append(repr(e))
                    continue
                if r.status_code != 200:
                    self.failed.append(f"{r.status_code} {r.text[:200]}")
                    continue
                body = r.json()
                same = [h["chunk_id"] for h in body["hits"]] == self.want[q]
                self.answers.append(same and body["coverage"] == 1.0)

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        for t in self.threads:
            t.join(60)


def _gauge(metrics: str, name: str, collection: str, shard: int, replica: int) -> float:
    labels = f'collection="{collection}",replica="{replica}",shard="{shard}"'
    found = re.search(rf"^{name}\{{{labels}\}} (\S+)$", metrics, re.M)
    assert found, f"no {name} for shard {shard} replica {replica}"
    return float(found.group(1))


def _wait(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout_s:g} s")
        time.sleep(0.1)


def test_killing_a_replica_under_http_load_fails_no_request(ray_cluster, ray_collection) -> None:  # type: ignore[no-untyped-def]
    import httpx
    import ray

    from ragfleet.serve.app import create_app
    from ragfleet.serve.auth import KeyStore, new_key
    from ragfleet.serve.factory import open_collections
    from ragfleet.serve.settings import FleetSettings, ServeSettings

    name = ray_collection.path.name
    fleets = open_collections(
        [ray_collection.path], read_only=True, fleet=FleetSettings("ray", replicas=2)
    )
    fleet = fleets[name]
    want = {q: [h.chunk_id for h in ray_collection.search(q, k=5).hits] for q in QUERIES}
    key, record = new_key("ops", ("read", "admin"), iterations=1000)
    settings = ServeSettings(rate_per_s=0, max_inflight=4 * CLIENTS)
    app = create_app(fleets, settings, KeyStore([record]), owns_collections=True)
    admin = {"Authorization": f"Bearer {key}"}
    with running(app, startup_s=120) as url:  # its shutdown closes the fleet
        nodes = {c.where()[1] for c in fleet.shards[0].replicas}
        assert len(nodes) == 2, "the two replicas of a shard run on the two nodes"
        assert httpx.get(f"{url}/readyz").json()["status"] == "ready"
        shard = fleet.shards[0]
        with Load(url, key, name, want) as load:
            time.sleep(1.5)
            ray.kill(shard.replicas[0].actor, no_restart=True)
            _wait(lambda: shard.replica_states()[0].failures > 0, 30, "no call hit the dead one")
            served = shard.replica_states()[1].calls
            _wait(lambda: shard.replica_states()[1].calls > served + 10, 30, "shard 0 not served")
            ready = httpx.get(f"{url}/readyz")
            metrics = httpx.get(f"{url}/metrics", headers=admin).text
            stats = httpx.get(f"{url}/v1/collections/{name}/stats", headers=admin).json()
        assert load.failed == [] and len(load.answers) > 20 and all(load.answers)
        counts = {"shards": 2, "shards_down": 0, "replicas": 4, "replicas_healthy": 3}
        assert ready.status_code == 200
        assert ready.json() == {"status": "degraded", "replicas": counts}
        healthy = "ragfleet_replica_healthy"
        assert _gauge(metrics, healthy, name, 0, 0) == 0
        assert all(_gauge(metrics, healthy, name, s, r) == 1 for s, r in [(0, 1), (1, 0), (1, 1)])
        assert _gauge(metrics, "ragfleet_replica_failures_total", name, 0, 0) >= 1
        assert _gauge(metrics, "ragfleet_replica_calls_total", name, 0, 1) > 10
        assert [r["healthy"] for r in stats["shards"][0]["replica_states"]] == [False, True]

        for replica in fleet.shards[1].replicas:  # shard 1 loses both: not ready any more
            ray.kill(replica.actor, no_restart=True)

        def unready() -> bool:  # a search finds both dead, then /readyz says so
            search = f"{url}/v1/collections/{name}/search"
            httpx.post(search, json={"query": QUERIES[0]}, headers=admin, timeout=60)
            return httpx.get(f"{url}/readyz").status_code == 503

        _wait(unready, 30, "/readyz did not turn 503")
        down = httpx.get(f"{url}/readyz").json()
        assert down == {
            "status": "unavailable",
            "replicas": {**counts, "shards_down": 1, "replicas_healthy": 1},
        }
