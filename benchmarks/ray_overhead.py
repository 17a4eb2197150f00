"""What the Ray backend costs per query, and its throughput on 1 vs 2 nodes.

A 2-shard collection of demo paragraphs, served three ways side by side: local
in-process shards, Ray actors reached over their direct channel (``transport="direct"``,
the default: :mod:`ragfleet.cluster.direct`) and Ray actors reached by actor calls
(``transport="ray"``). Scatter-gather overhead: the shard tier alone (one pre-embedded
dense query, k=10, scattered to every shard and gathered), R=1, calls interleaved one by
one; and the full query (embed + scatter + merge + fetch). Throughput: ``--clients``
threads send shard-tier queries closed-loop for ``--seconds`` to R=2 replicas per shard,
first on a 1-node cluster (both replicas on the head), then after a second node joins
(replicas spread one per node). All nodes run on this one machine, so the second node
adds processes, not hardware. A profile splits one shard call into its layers (the bare
actor round trip, the shard client, the replica set, the scatter over both shards), each
against the same layer over local shards. Writes
``benchmarks/results/ray_overhead.{json,png}``.

    .venv/bin/python -m benchmarks.ray_overhead [--queries 200] [--seconds 10] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import RESULTS, write_json
from ragfleet.cluster.ray_backend import Transport
from ragfleet.fleet import Fleet
from ragfleet.index.shard import ShardQuery

TRANSPORTS: tuple[Transport, ...] = ("direct", "ray")
QUERIES = [
    "Which NFL team won Super Bowl 50?",
    "Who sang at the halftime show?",
    "Where is Warsaw located?",
    "What stadium hosted the game?",
    "Who designed the Palace of Culture?",
    "How many tackles did the defense make?",
]


def scatter_once(fleet: Fleet, q: ShardQuery) -> float:
    t0 = time.perf_counter()
    fleet.searcher.scatter.gather([(s.shard_id, s) for s in fleet.shards], lambda s: s.search(q))
    return time.perf_counter() - t0


def overhead(fleets: dict[str, Fleet], shard_qs: list[ShardQuery], n: int) -> dict[str, Any]:
    tier: dict[str, list[float]] = {name: [] for name in fleets}
    full: dict[str, list[float]] = {name: [] for name in fleets}
    for i in range(n):
        q = shard_qs[i % len(shard_qs)]
        for name, fleet in fleets.items():
            tier[name].append(scatter_once(fleet, q))
            t0 = time.perf_counter()
            fleet.search(QUERIES[i % len(QUERIES)], k=10, mode="dense")
            full[name].append(time.perf_counter() - t0)

    def ms(x: list[float], p: float) -> float:
        return round(float(np.percentile(x, p)) * 1e3, 3)

    out = {
        f"{w}_{k}_{p}": ms(d[k], q)
        for w, d in (("tier", tier), ("full", full))
        for k in d
        for p, q in (("p50_ms", 50), ("p99_ms", 99))
    }
    for name in fleets:
        if name != "local":
            out[f"tier_overhead_{name}_p50_ms"] = round(
                out[f"tier_{name}_p50_ms"] - out["tier_local_p50_ms"], 3
            )
    return out


def profile(local: Fleet, ray: Fleet, shard_qs: list[ShardQuery], n: int) -> dict[str, Any]:
    """Where a Ray shard call's time goes, layer by layer on shard 0, calls interleaved:
    the bare actor round trip (``where()``: no work, a tiny reply, always through Ray), an
    empty ``fetch`` (the transport's own round trip), the shard search through the shard
    client alone, the same through the replica set (ReplicatedShard: replica
    choice, hedging timer, a pool hop), and both shards through the scatter; each against
    the same layer over local shards."""
    import ray as ray_mod

    actor = ray.shards[0].replicas[0].actor  # type: ignore[attr-defined]
    layers: dict[str, Callable[[Fleet, ShardQuery], Any]] = {
        "empty_fetch": lambda f, q: f.shards[0].replicas[0].fetch([]),  # the transport alone
        "client": lambda f, q: f.shards[0].replicas[0].search(q),
        "replica_set": lambda f, q: f.shards[0].search(q),
        "scatter_2_shards": lambda f, q: scatter_once(f, q),
    }
    times: dict[str, list[float]] = {"ray_round_trip": []}
    for i in range(n):
        q = shard_qs[i % len(shard_qs)]
        t0 = time.perf_counter()
        ray_mod.get(actor.where.remote())
        times["ray_round_trip"].append(time.perf_counter() - t0)
        for name, call in layers.items():
            for side, fleet in (("local", local), ("ray", ray)):
                t0 = time.perf_counter()
                call(fleet, q)
                times.setdefault(f"{name}_{side}", []).append(time.perf_counter() - t0)
    p50 = {k: round(float(np.percentile(v, 50)) * 1e3, 3) for k, v in times.items()}
    return {
        "p50_ms": p50,
        "ray_cost_p50_ms": {
            name: round(p50[f"{name}_ray"] - p50[f"{name}_local"], 3) for name in layers
        },
    }


def throughput(fleet: Fleet, shard_qs: list[ShardQuery], clients: int, seconds: float) -> float:
    stop = time.monotonic() + seconds
    counts = [0] * clients

    def client(c: int) -> None:
        while time.monotonic() < stop:
            scatter_once(fleet, shard_qs[(c + counts[c]) % len(shard_qs)])
            counts[c] += 1

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return round(sum(counts) / seconds, 1)


def plot(report: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    o = report["overhead"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    labels = ["shard tier", "full query"]
    x = np.arange(2)
    sides = ["local", *(f"ray_{t}" for t in TRANSPORTS)]
    for j, side in enumerate(sides):
        vals = [o[f"tier_{side}_p50_ms"], o[f"full_{side}_p50_ms"]]
        a.bar(x + (j - 1) * 0.27, vals, 0.27, label=side)
    a.set_xticks(x, labels)
    a.set_ylabel("p50 latency (ms)")
    a.legend()
    t = report["throughput_qps"]
    b.barh(list(t), list(t.values()))
    b.set_xlabel("shard-tier queries / s")
    fig.suptitle("Ray backend: scatter-gather overhead and throughput (one machine)")
    fig.tight_layout()
    fig.savefig(RESULTS / "ray_overhead.png", dpi=120)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    nq, secs = (30, 3.0) if args.quick else (args.queries, args.seconds)
    import ray
    from tests.conftest import demo_docs

    from ragfleet.cluster.local_ray import LocalRayCluster
    from ragfleet.collection import Collection
    from ragfleet.config import CollectionConfig, ShardingConfig

    load0 = list(os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c"
        cfg = CollectionConfig(sharding=ShardingConfig(n_shards=2))
        Collection.build(path, demo_docs(60), cfg).close()
        cluster = LocalRayCluster.start(workers=0, log_dir=Path(tmp) / "logs")
        fleets: list[Fleet] = []
        try:
            ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
            local = Fleet.open(path, backend="local")
            fleets.append(local)

            def ray_fleet(transport: Transport, replicas: int) -> Fleet:
                f = Fleet.open(
                    path, backend="ray", replicas=replicas, encoder=local.encoder,
                    transport=transport,
                )  # fmt: skip
                fleets.append(f)
                return f

            def release(f: Fleet) -> None:
                f.close()
                fleets.remove(f)

            ray1 = {t: ray_fleet(t, 1) for t in TRANSPORTS}
            vecs = local.encoder.encode(QUERIES, kind="query")
            shard_qs = [ShardQuery(k=10, vectors=vecs[i : i + 1]) for i in range(len(QUERIES))]
            sides = {"local": local} | {f"ray_{t}": f for t, f in ray1.items()}
            report: dict[str, Any] = {"overhead": overhead(sides, shard_qs, nq)}
            report["profile"] = {t: profile(local, f, shard_qs, nq) for t, f in ray1.items()}
            print(report, flush=True)
            for f in ray1.values():
                release(f)
            qps = {"local R=1": throughput(local, shard_qs, args.clients, secs)}
            for t, r in (("direct", 1), *((t, 2) for t in TRANSPORTS)):
                one = ray_fleet(t, r)
                qps[f"ray {t} 1 node R={r}"] = throughput(one, shard_qs, args.clients, secs)
                release(one)
            cluster = cluster.add_worker()
            for t in TRANSPORTS:
                two = ray_fleet(t, 2)
                qps[f"ray {t} 2 nodes R=2"] = throughput(two, shard_qs, args.clients, secs)
                release(two)
            report["throughput_qps"] = qps
            report["throughput_vs_local"] = {
                k: round(v / qps["local R=1"], 3) for k, v in qps.items() if k != "local R=1"
            }
        finally:
            for f in fleets:
                f.close()
            ray.shutdown()
            cluster.stop()
    report["setup"] = {
        "docs": 60,
        "shards": 2,
        "queries": nq,
        "clients": args.clients,
        "seconds": secs,
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
    }
    report["loadavg_before_after"] = [load0, list(os.getloadavg())]
    print(write_json("ray_overhead", report))
    plot(report)


if __name__ == "__main__":
    main()
