"""What ragfleet's DenseIndex wrapper costs over raw FAISS on the very same index.

flat and hnsw32 (efSearch 64) over a fashion-mnist subset, l2, k=10, one FAISS thread;
queries sent one per call and in batches of 64. Both sides search the same FAISS index
object with the same parameters; calls alternate one by one between the two sides; QPS
is 1 / median seconds per query (robust to preemption on a busy machine). Goal: ragfleet QPS / raw
FAISS QPS >= 0.90. Writes ``benchmarks/results/shard_overhead.{json,png}``.

    .venv/bin/python -m benchmarks.shard_overhead [--n 20000] [--queries 1000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragfleet._optional import require
from ragfleet.eval.ann import SweepConfig, build_index, compare_qps
from ragfleet.eval.vecio import load_ann_dataset
from ragfleet.index.dense import set_omp_threads

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "fashion-mnist-784-euclidean"
RESULTS = REPO / "benchmarks" / "results"
CASES: list[tuple[str, dict[str, int]]] = [("flat", {}), ("hnsw32", {"ef_search": 64})]
BATCHES = (1, 64)
GOAL_RATIO = 0.90


def measure(n: int, nq: int, min_time: float, pairs: int) -> list[dict[str, Any]]:
    base, queries, _ = load_ann_dataset(DATA)
    base = np.ascontiguousarray(base[:n])
    queries = np.ascontiguousarray(queries[:nq])
    rows = []
    for spec, params in CASES:
        index, build_s = build_index(spec, base, "l2")
        for batch in BATCHES:
            calls = max(30, pairs // batch)  # a batch of 64 counts as 64 queries
            cfg = SweepConfig(k=10, batch=batch, min_time_s=min_time, min_pairs=calls)
            qps, raw, _ = compare_qps(index, params, queries, cfg)
            row = {
                "spec": spec,
                "params": params,
                "batch": batch,
                "qps": round(qps, 1),
                "raw_faiss_qps": round(raw, 1),
                "ratio": round(qps / raw, 4),
                "build_s": round(build_s, 2),
            }
            print(row)
            rows.append(row)
    return rows


def plot(rows: Sequence[dict[str, Any]], path: Path) -> None:
    matplotlib = require("matplotlib", "eval")
    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot", "eval")
    fig, ax = plt.subplots(figsize=(6, 4))
    labels = [f"{r['spec']}\nbatch {r['batch']}" for r in rows]
    ax.bar(labels, [r["ratio"] for r in rows], color="tab:blue")
    ax.axhline(GOAL_RATIO, color="tab:red", ls="--", label=f"goal {GOAL_RATIO}")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_ylabel("ragfleet QPS / raw FAISS QPS")
    ax.set_ylim(0.0, 1.2)
    ax.set_title("DenseIndex.search overhead (fashion-mnist subset, l2, k=10)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20000, help="base vectors")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--min-time", type=float, default=2.0, help="seconds of timing per case")
    p.add_argument("--pairs", type=int, default=500, help="paired calls per case, at least")
    p.add_argument("--quick", action="store_true", help="5000 vectors, short timings")
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args(argv)
    set_omp_threads(1)
    n, min_time, pairs = (5000, 0.3, 100) if a.quick else (a.n, a.min_time, a.pairs)
    rows = measure(n, a.queries, min_time, pairs)
    report = {
        "dataset": DATA.name,
        "n": n,
        "queries": a.queries,
        "k": 10,
        "threads": 1,
        "machine": platform.processor() or platform.machine(),
        "goal": {"ratio": GOAL_RATIO, "met": all(r["ratio"] >= GOAL_RATIO for r in rows)},
        "runs": rows,
    }
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "shard_overhead.json").write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    plot(rows, a.out / "shard_overhead.png")
    print(json.dumps(report["goal"]))


if __name__ == "__main__":
    main()
