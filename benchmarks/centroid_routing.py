"""Centroid routing: recall@10 and latency against the number of shards probed.

A fashion-mnist subset (l2) is placed on ``--shards`` shards two ways: by k-means
centroids (:mod:`ragfleet.cluster.kmeans`, fitted on a ``--sample`` of the vectors) and by
hash (the baseline: a random, balanced split). Each shard is an exact FAISS flat index.
A query goes to its ``p`` nearest shards (centroid) or to ``p`` shards at random (hash),
the per-shard top-10 are merged exactly, and recall@10 is measured against the exact
top-10 over the whole subset; latency is route + per-shard search + merge, one FAISS
thread, shards searched one after another (the work a coordinator pays). ``p = shards`` is
the all-shards baseline: recall 1.0 by construction. Writes
``benchmarks/results/centroid_routing.{json,png}``.

    .venv/bin/python -m benchmarks.centroid_routing [--n 20000] [--shards 8] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks._common import DATA, RESULTS, write_json
from ragfleet._optional import require
from ragfleet.cluster.kmeans import fit_centroids, sample_rows
from ragfleet.eval.vecio import load_ann_dataset

K = 10


def shard_indexes(
    base: npt.NDArray[np.float32], assign: npt.NDArray[np.int64], n: int
) -> list[Any]:
    faiss = require("faiss", "index")
    out = []
    for s in range(n):
        rows = np.flatnonzero(assign == s)
        index = faiss.IndexIDMap(faiss.IndexFlatL2(base.shape[1]))
        index.add_with_ids(base[rows], rows.astype(np.int64))
        out.append(index)
    return out


def search_routed(
    indexes: list[Any], q: npt.NDArray[np.float32], shards: Sequence[int]
) -> npt.NDArray[np.int64]:
    """Exact merge of the probed shards' top-K (smallest l2 distance first)."""
    dists, ids = [], []
    for s in shards:
        d, i = indexes[s].search(q, K)
        dists.append(d[0])
        ids.append(i[0])
    d_all, i_all = np.concatenate(dists), np.concatenate(ids)
    keep = i_all >= 0
    order = np.lexsort((i_all[keep], d_all[keep]))[:K]
    return i_all[keep][order]


def sweep(
    indexes: list[Any],
    queries: npt.NDArray[np.float32],
    truth: npt.NDArray[np.int64],
    route: Any,
    probes: Sequence[int],
) -> list[dict[str, Any]]:
    rows = []
    for p in probes:
        recalls, lat = [], []
        for qi in range(len(queries)):
            q = queries[qi : qi + 1]
            t0 = time.perf_counter()
            got = search_routed(indexes, q, route(q, p))
            lat.append(time.perf_counter() - t0)
            recalls.append(len(set(got.tolist()) & set(truth[qi].tolist())) / K)
        rows.append(
            {
                "probe_shards": p,
                "recall_at_10": round(float(np.mean(recalls)), 4),
                "p50_ms": round(float(np.median(lat)) * 1e3, 3),
                "p99_ms": round(float(np.percentile(lat, 99)) * 1e3, 3),
            }
        )
        print(rows[-1], flush=True)
    return rows


def exact_truth(base: npt.NDArray[np.float32], queries: npt.NDArray[np.float32]) -> Any:
    faiss = require("faiss", "index")
    index = faiss.IndexFlatL2(base.shape[1])
    index.add(base)
    return index.search(queries, K)[1].astype(np.int64)


def plot(report: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for name in ("centroid", "hash"):
        rows = report[name]
        ps = [r["probe_shards"] for r in rows]
        a.plot(ps, [r["recall_at_10"] for r in rows], "o-", label=name)
        b.plot(ps, [r["p50_ms"] for r in rows], "o-", label=name)
    a.set_xlabel("shards probed")
    a.set_ylabel("recall@10")
    b.set_xlabel("shards probed")
    b.set_ylabel("p50 latency per query (ms)")
    a.legend()
    b.legend()
    s = report["setup"]
    fig.suptitle(f"fashion-mnist {s['n']} vectors on {s['shards']} shards")
    fig.tight_layout()
    fig.savefig(RESULTS / "centroid_routing.png", dpi=120)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--sample", type=int, default=5_000)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    n, nq = (5_000, 100) if args.quick else (args.n, args.queries)
    require("faiss", "index").omp_set_num_threads(1)
    load0 = list(os.getloadavg())
    base, queries, _ = load_ann_dataset(DATA / "fashion-mnist-784-euclidean")
    base, queries = np.ascontiguousarray(base[:n]), np.ascontiguousarray(queries[:nq])
    truth = exact_truth(base, queries)
    centroids = fit_centroids(base[sample_rows(n, args.sample)], args.shards, metric="l2")
    by_centroid = np.argmax(centroids.scores(base), axis=1)
    by_hash = np.random.default_rng(0).integers(0, args.shards, n)
    rng = np.random.default_rng(1)
    probes = list(range(1, args.shards + 1))
    report: dict[str, Any] = {
        "setup": {"n": n, "queries": nq, "shards": args.shards, "sample": args.sample, "k": K},
        "shard_sizes_centroid": np.bincount(by_centroid, minlength=args.shards).tolist(),
        "centroid": sweep(
            shard_indexes(base, by_centroid, args.shards),
            queries,
            truth,
            lambda q, p: centroids.route(q, p)[0].tolist(),
            probes,
        ),
        "hash": sweep(
            shard_indexes(base, by_hash, args.shards),
            queries,
            truth,
            lambda q, p: rng.choice(args.shards, p, replace=False).tolist(),
            probes,
        ),
    }
    report["loadavg_before_after"] = [load0, list(os.getloadavg())]
    report["machine"] = platform.platform()
    print(write_json("centroid_routing", report))
    plot(report)


if __name__ == "__main__":
    main()
