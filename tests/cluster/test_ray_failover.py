"""Kill one replica actor of every shard under a steady query load (R=2): no query fails,
Ray restarts the actors and they rejoin the rotation."""

from __future__ import annotations

import threading
import time

QUERIES = ["Which NFL team won Super Bowl 50?", "Where is Warsaw located?", "Who sang?"]


def _pid_once_restarted(client, old_pid: int, timeout_s: float = 60.0) -> int:  # type: ignore[no-untyped-def]
    """The actor's pid once a new process answers (``ray.kill`` is asynchronous, and calls
    fail while Ray restarts the actor)."""
    from ray.exceptions import RayActorError

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            pid = int(client.where()[0])
            if pid != old_pid:
                return pid
        except RayActorError:  # ActorUnavailableError and ActorDiedError while restarting
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"actor was not restarted within {timeout_s}s")
        time.sleep(0.2)


def test_killing_one_replica_per_shard_fails_no_query(ray_cluster, ray_collection) -> None:  # type: ignore[no-untyped-def]
    import ray

    from ragfleet.cluster.replicated import HedgeConfig
    from ragfleet.fleet import Fleet

    hedge = HedgeConfig(down_s=1.0)
    fleet = Fleet.open(
        ray_collection.path, backend="ray", replicas=2, hedge=hedge, encoder=ray_collection.encoder
    )
    want = {q: [h.chunk_id for h in ray_collection.search(q, k=5).hits] for q in QUERIES}
    done, errors, answers = threading.Event(), [], []

    def load() -> None:
        i = 0
        while not done.is_set():
            q = QUERIES[i % len(QUERIES)]
            try:
                res = fleet.search(q, k=5, timeout_ms=30_000)
                answers.append([h.chunk_id for h in res.hits] == want[q] and res.coverage == 1)
            except Exception as e:
                errors.append(repr(e))
            i += 1

    try:
        victims = [shard.replicas[0] for shard in fleet.shards]
        before = [v.where()[0] for v in victims]
        worker = threading.Thread(target=load)
        worker.start()
        time.sleep(1.0)
        for v in victims:
            ray.kill(v.actor, no_restart=False)
        killed_at = [s.served[0] for s in fleet.shards]
        restarted = [_pid_once_restarted(v, pid) for v, pid in zip(victims, before, strict=True)]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(s.served[0] > n for s, n in zip(fleet.shards, killed_at, strict=True)):
                break
            time.sleep(0.2)
        done.set()
        worker.join(30)
        assert errors == [] and len(answers) > 10 and all(answers)
        assert len(restarted) == len(victims)  # each one answered from a new process
        rejoined = [s.served[0] - n for s, n in zip(fleet.shards, killed_at, strict=True)]
        assert all(r > 0 for r in rejoined), f"restarted replicas served {rejoined}"
    finally:
        done.set()
        fleet.close()
