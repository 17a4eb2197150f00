"""Late rerank over Ray: shards return scores, or compact token blocks? (and vs in-process)

The SciFact collection with int8 token vectors (``late_scifact.py`` builds it) served by
a local Fleet (in-process shards) and by a Fleet of Ray actors (one node, R=1). For the
first ``--queries`` SciFact test queries, interleaved: hybrid top 100, then the top 50
re-scored by MaxSim (a) on the shard, which returns one float32 per candidate, and (b) at
the coordinator from the packed int8 blocks the shard returns. Reported per backend and
route: rerank ms p50/p99 and the bytes a shard returns per query; the reranked orders must
agree. Writes benchmarks/results/late_ray.json and .png.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, RESULTS, write_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--collection", type=Path, default=Path("/tmp/ragfleet-bench/scifact-late-int8")
    )
    ap.add_argument("--data", type=Path, default=DATA / "scifact")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--rerank-n", type=int, default=50)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import ray

    from ragfleet.cluster.local_ray import LocalRayCluster
    from ragfleet.fleet import Fleet
    from ragfleet.ingest import load_beir_queries, load_qrels
    from ragfleet.rerank import RerankConfig
    from ragfleet.rerank.late import LateReranker

    if not args.collection.exists():
        sys.exit(f"{args.collection} is missing: run benchmarks/late_scifact.py first")
    qrels = load_qrels(args.data, "test")
    texts = [t for q, t in sorted(load_beir_queries(args.data).items()) if q in qrels]
    texts = texts[: args.queries]
    config = RerankConfig(candidates=args.rerank_n, batch_size=64)
    ms: dict[str, list[float]] = {}
    nbytes: dict[str, list[int]] = {}
    agree = 0
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = LocalRayCluster.start(workers=0, log_dir=Path(tmp) / "logs")
        try:
            ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
            local = Fleet.open(args.collection, backend="local")
            remote = Fleet.open(args.collection, backend="ray", replicas=1, encoder=local.encoder)
            fleets = {"local": local, "ray": remote}
            for q in texts[:3]:  # warm-up
                for f in fleets.values():
                    LateReranker(f, config).rerank(q, f.search(q, k=100).hits, 100)
            for q in texts:
                orders = []
                for backend, fleet in fleets.items():
                    hits = fleet.search(q, k=100, timeout_ms=60_000).hits
                    head = hits[: args.rerank_n]
                    for via in ("scores", "blocks"):
                        rr = LateReranker(fleet, config, via=via)  # type: ignore[arg-type]
                        t = time.perf_counter()
                        out = rr.rerank(q, hits, len(hits))
                        key = f"{backend}/{via}"
                        ms.setdefault(key, []).append((time.perf_counter() - t) * 1e3)
                        orders.append([h.chunk_id for h in out[: args.rerank_n]])
                        nbytes.setdefault(key, []).append(_returned(fleet, q, head, via))
                agree += all(o == orders[0] for o in orders)
            for f in fleets.values():
                f.close()
        finally:
            ray.shutdown()
            cluster.stop()
    report: dict[str, Any] = {
        "queries": len(texts),
        "rerank_n": args.rerank_n,
        "orders_agree": agree,
        "routes": {
            k: {
                "p50_ms": float(np.percentile(v, 50)),
                "p99_ms": float(np.percentile(v, 99)),
                "bytes_per_query": float(np.mean(nbytes[k])),
            }
            for k, v in ms.items()
        },
        "host": {
            "cpu_count": os.cpu_count(),
            "loadavg_start": load0,
            "loadavg_end": os.getloadavg(),
        },
    }
    for k, r in report["routes"].items():
        print(
            f"{k:14} p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  "
            f"{r['bytes_per_query']:10.0f} B"
        )
    write_json("late_ray", report)
    plot(report, RESULTS / "late_ray.png")


def _returned(fleet: Any, q: str, head: list[Any], via: str) -> int:
    """Bytes the shards return for ``head`` (payload only: scores or codes + offsets)."""
    if via == "scores":
        return 4 * len(head)
    total = 0
    by_shard: dict[int, list[str]] = {}
    for h in head:
        by_shard.setdefault(h.shard, []).append(h.chunk_id)
    for shard, ids in by_shard.items():
        b = fleet.shards[shard].token_blocks(ids)
        total += b.codes.nbytes + b.offsets.nbytes + b.found.nbytes
    return total


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["routes"])
    fig, ax = plt.subplots(figsize=(7, 3.5))
    p50 = [report["routes"][n]["p50_ms"] for n in names]
    p99 = [report["routes"][n]["p99_ms"] for n in names]
    x = np.arange(len(names))
    ax.bar(x - 0.2, p50, 0.4, label="p50")
    ax.bar(x + 0.2, p99, 0.4, label="p99")
    ax.set_xticks(x, [f"{n}\n{report['routes'][n]['bytes_per_query'] / 1e3:.0f} kB" for n in names])
    ax.set_ylabel("late rerank of the top 50 (ms)")
    ax.set_title("shard returns scores vs packed token blocks; local vs Ray")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
