"""Tail latency of a replicated shard with one replica made 10x slow, with and without hedging.

One real shard (synthetic unit vectors, flat inner-product index) opened twice in process
as two replicas. Each replica's service time is its real FAISS search plus a sleep of
``base_ms`` (healthy) or ``10 * base_ms`` (the slow replica) — a sleep, so the 10x holds on
a loaded machine. ``clients`` threads send ``queries`` single-query searches each, closed
loop, through :class:`ReplicatedShard`. Scenarios: both healthy (the baseline), and one
slow replica (10x on every call, or on 1 call in 5) with hedging on/off, and with
latency-aware choice on/off (off: least outstanding requests, ties at random). Goal: p99
with hedging (default choice) <= 1.5x the healthy p99, for both kinds of slowness.
Writes ``benchmarks/results/hedging.{json,png}``.

    .venv/bin/python -m benchmarks.hedging [--queries 300] [--clients 2] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import RESULTS, write_json
from ragfleet.cluster.replicated import HedgeConfig, ReplicatedShard
from ragfleet.config import CollectionConfig
from ragfleet.index.docstore import StoredChunk
from ragfleet.index.shard import Shard, ShardQuery, ShardResult
from ragfleet.index.sparse.bm25 import ShardTermStats
from ragfleet.index.writebatch import ChunkRecord

GOAL = 1.5
DIM = 64


class Delayed:
    """A real shard replica whose search also sleeps: ``slow_s`` with probability ``p_slow``,
    else ``delay_s`` (its service time)."""

    def __init__(self, inner: Shard, delay_s: float, slow_s: float = 0.0, p_slow: float = 0.0):
        self.inner, self.delay_s, self.slow_s, self.p_slow = inner, delay_s, slow_s, p_slow
        self._rng = np.random.default_rng(7)

    @property
    def shard_id(self) -> int:
        return self.inner.shard_id

    def search(self, q: ShardQuery) -> ShardResult:
        slow = self.p_slow > 0 and self._rng.random() < self.p_slow
        time.sleep(self.slow_s if slow else self.delay_s)
        return self.inner.search(q)

    def term_stats(self, terms: Sequence[str]) -> ShardTermStats:
        return self.inner.term_stats(terms)

    def fetch(self, rows: Sequence[int]) -> dict[int, StoredChunk]:
        return self.inner.fetch(rows)

    def stats(self) -> dict[str, object]:
        return self.inner.stats()


def build_shard(path: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    shard = Shard(path, 0, CollectionConfig(), DIM, "bench", durable=False)
    records = [
        ChunkRecord(f"d{i}#0", f"d{i}", 0, f"text {i}", "", {}, "h", "h", x[i]) for i in range(n)
    ]
    shard.apply(records)
    shard.checkpoint()
    shard.close()


Replica = tuple[float, float, float]  # (delay_s, slow_s, p_slow)


def run(
    path: Path, spec: tuple[Replica, Replica], cfg: HedgeConfig, queries: int, clients: int
) -> dict[str, Any]:
    replicas = [Delayed(Shard(path, 0, CollectionConfig(), DIM, "bench"), *r) for r in spec]
    shard = ReplicatedShard(replicas, cfg)
    rng = np.random.default_rng(1)
    qv = rng.standard_normal((queries * clients, 1, DIM)).astype(np.float32)
    lat: list[float] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        for j in range(queries):
            t0 = time.perf_counter()
            shard.search(ShardQuery(k=10, vectors=qv[c * queries + j]))
            with lock:
                lat.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    shard.close()
    for r in replicas:
        r.inner.close()
    ms = np.asarray(lat) * 1e3
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "hedges": shard.hedges,
        "served": list(shard.served),
    }


def scenarios(base_s: float) -> list[tuple[str, tuple[Replica, Replica], HedgeConfig]]:
    """Replica 0 is healthy, 10x slow on every call, or 10x slow on 1 call in 5."""
    ok: Replica = (base_s, 0.0, 0.0)
    always: Replica = (base_s, 10 * base_s, 1.0)
    sometimes: Replica = (base_s, 10 * base_s, 0.2)
    random_ties = HedgeConfig(latency_aware=False)
    return [
        ("healthy, hedging", (ok, ok), HedgeConfig()),
        ("slow, hedging", (always, ok), HedgeConfig()),
        ("slow, no hedging", (always, ok), HedgeConfig(hedge=False)),
        ("slow, hedging, random ties", (always, ok), random_ties),
        (
            "slow, no hedging, random ties",
            (always, ok),
            HedgeConfig(hedge=False, latency_aware=False),
        ),
        ("1-in-5 slow, hedging", (sometimes, ok), HedgeConfig()),
        ("1-in-5 slow, no hedging", (sometimes, ok), HedgeConfig(hedge=False)),
    ]


def plot(rows: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 4))
    x = np.arange(len(rows))
    for off, key in ((-0.25, "p50_ms"), (0.0, "p95_ms"), (0.25, "p99_ms")):
        ax.bar(x + off, [r[key] for r in rows], width=0.25, label=key)
    ax.axhline(GOAL * rows[0]["p99_ms"], color="k", ls="--", label=f"{GOAL}x healthy p99")
    ax.set_xticks(x, [r["scenario"].replace(", ", "\n") for r in rows], fontsize=8)
    ax.set_ylabel("latency per shard call (ms)")
    ax.set_title("replicated shard, one replica 10x slow")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=300, help="queries per client")
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--chunks", type=int, default=5000)
    ap.add_argument("--base-ms", type=float, default=3.0)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    queries = 60 if args.quick else args.queries
    load0 = list(os.getloadavg())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "shard-000"
        build_shard(path, args.chunks)
        for name, spec, cfg in scenarios(args.base_ms / 1e3):
            row = {"scenario": name, **run(path, spec, cfg, queries, args.clients)}
            print(row, flush=True)
            rows.append(row)
    healthy, hedged = rows[0]["p99_ms"], max(rows[1]["p99_ms"], rows[5]["p99_ms"])
    report = {
        "setup": {
            "chunks": args.chunks,
            "dim": DIM,
            "base_ms": args.base_ms,
            "slow_factor": 10,
            "clients": args.clients,
            "queries_per_client": queries,
            "machine": platform.platform(),
        },
        "rows": rows,
        "p99_hedged_over_healthy": round(hedged / healthy, 3),
        "goal": f"<= {GOAL}",
        "goal_met": hedged <= GOAL * healthy,
    }
    report["loadavg_before_after"] = [load0, list(os.getloadavg())]
    print(write_json("hedging", report))
    RESULTS.mkdir(parents=True, exist_ok=True)
    plot(rows, RESULTS / "hedging.png")


if __name__ == "__main__":
    main()
