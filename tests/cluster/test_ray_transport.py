"""The two ways a query reaches a shard actor on the real loopback cluster: the direct
channel (the default) and Ray actor calls answer alike; a lone replica killed under the
direct channel is waited for and answers from its new process; bad values are refused."""

from __future__ import annotations

import pytest
from tests.cluster.test_ray_failover import _pid_once_restarted

from ragfleet.errors import ConfigError

QUERIES = ["Which NFL team won Super Bowl 50?", "Where is Warsaw located?", "Who sang?"]


def _answers(fleet, mode: str) -> list[list[tuple[str, float]]]:  # type: ignore[no-untyped-def]
    return [[(h.chunk_id, h.score) for h in fleet.search(q, k=5, mode=mode).hits] for q in QUERIES]


def test_direct_and_ray_transports_answer_alike(ray_cluster, ray_collection) -> None:  # type: ignore[no-untyped-def]
    from ragfleet.fleet import Fleet

    got = {}
    for transport in ("direct", "ray"):
        with Fleet.open(
            ray_collection.path, backend="ray", transport=transport, encoder=ray_collection.encoder
        ) as fleet:
            got[transport] = {m: _answers(fleet, m) for m in ("dense", "sparse", "hybrid")}
            endpoint = fleet.shards[0].replicas[0].actor.endpoint.remote()
            import ray

            where = ray.get(endpoint)
            assert (where is None) == (transport == "ray")
            if where is not None:
                assert where[0] == ray.util.get_node_ip_address()  # not every interface
    want = {m: _answers(ray_collection, m) for m in ("dense", "sparse", "hybrid")}
    for transport, answers in got.items():
        for mode, rows in answers.items():
            for g, w in zip(rows, want[mode], strict=True):
                assert [c for c, _ in g] == [c for c, _ in w], (transport, mode)
                assert [s for _, s in g] == pytest.approx([s for _, s in w], abs=1e-5)


def test_a_lone_replica_killed_is_waited_for_over_the_direct_channel(
    ray_cluster, ray_collection
) -> None:  # type: ignore[no-untyped-def]
    import ray

    from ragfleet.fleet import Fleet

    with Fleet.open(ray_collection.path, backend="ray", encoder=ray_collection.encoder) as fleet:
        want = _answers(fleet, "hybrid")
        victim = fleet.shards[0].replicas[0]
        pid = victim.where()[0]
        ray.kill(victim.actor, no_restart=False)
        assert _answers(fleet, "hybrid") == want  # waited for the restart, no error
        assert _pid_once_restarted(victim, pid) != pid


def test_an_unknown_transport_is_refused(ray_cluster, ray_collection) -> None:  # type: ignore[no-untyped-def]
    from ragfleet.fleet import Fleet

    with pytest.raises(ConfigError, match="transport must be 'direct' or 'ray'"):
        Fleet.open(
            ray_collection.path, backend="ray", transport="grpc", encoder=ray_collection.encoder
        )  # type: ignore[arg-type]
