"""Model upgrade under a query load: ``reindex`` to a new encoder, then swap, while a
thread hammers ``search`` (issue 5).

A collection of SciFact documents is built with ``minilm-int8`` (ONNX). A query thread
searches it without pause (SciFact queries, k=10, hybrid) through one open
``Collection``. Phases: ``before`` (plain load), ``during`` (``reindex`` to ``minilm``,
the torch model, builds the new generation beside the live one), ``after`` (the open
collection ``reload()``-s to the new generation between two queries, then keeps
serving). Reported: failed queries (goal 0) and p50/p99 latency per phase; the baseline
is the ``before`` phase of the same run. (That no query mixes the two generations is
checked by ``tests/unit/test_generations.py``.)

    python -m benchmarks.model_upgrade [--n 300] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import DATA, RESULTS, load_beir_texts, write_json


def _queries(n: int) -> list[str]:
    with (DATA / "scifact" / "queries.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line, _ in zip(f, range(n), strict=False)]


class Load:
    """A thread searching without pause; records (phase, seconds, ok) per query."""

    def __init__(self, col: Any, queries: list[str]) -> None:
        self.col, self.queries = col, queries
        self.phase = "before"
        self.records: list[tuple[str, float, bool]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        i = 0
        while not self.stop.is_set():
            q = self.queries[i % len(self.queries)]
            t = time.perf_counter()
            try:
                ok = bool(self.col.search(q, k=10).hits)
            except Exception:  # counted as a failed query, never raised
                ok = False
            self.records.append((self.phase, time.perf_counter() - t, ok))
            i += 1


def _phase_stats(records: list[tuple[str, float, bool]], phase: str) -> dict[str, float]:
    lat = np.array([s for p, s, _ in records if p == phase]) * 1e3
    failed = sum(1 for p, _, ok in records if p == phase and not ok)
    if not len(lat):
        return {"queries": 0, "failed": failed}
    return {
        "queries": len(lat),
        "failed": failed,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
    }


def run(n: int, settle_s: float) -> dict[str, Any]:
    from ragfleet.collection import Collection
    from ragfleet.collection.generations import reindex
    from ragfleet.embed.registry import load_encoder
    from ragfleet.types import Document

    rows = load_beir_texts(DATA / "scifact", n)
    docs = [Document(r["_id"], r["text"], r["title"]) for r in rows]
    root = Path(tempfile.mkdtemp()) / "c"
    Collection.build(root, docs, encoder=load_encoder("minilm-int8")).close()
    load_encoder("minilm").encode(["warm up"])  # model load is not part of the swap
    col = Collection.open(root)
    load = Load(col, _queries(50))
    try:
        load.thread.start()
        time.sleep(settle_s)
        load.phase = "during"
        t0 = time.perf_counter()
        report = reindex(root, "minilm")
        reindex_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        col.reload()
        swap_s = time.perf_counter() - t1
        load.phase = "after"
        time.sleep(settle_s)
    finally:
        load.stop.set()
        load.thread.join()
        col.close()
        shutil.rmtree(root.parent, ignore_errors=True)
    phases = {p: _phase_stats(load.records, p) for p in ("before", "during", "after")}
    return {
        "n_docs": n,
        "chunks": report.chunks,
        "reindex_s": reindex_s,
        "reload_s": swap_s,
        "failed_queries": sum(1 for _, _, ok in load.records if not ok),
        "phases": phases,
        "loadavg": os.getloadavg(),
    }


def plot(r: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phases = r["phases"]
    names = [p for p in ("before", "during", "after") if phases[p]["queries"]]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    x = np.arange(len(names))
    ax.bar(x - 0.2, [phases[p]["p50_ms"] for p in names], 0.4, label="p50")
    ax.bar(x + 0.2, [phases[p]["p99_ms"] for p in names], 0.4, label="p99")
    ax.set_xticks(x, names)
    ax.set_ylabel("query latency (ms)")
    ax.set_title(f"reindex minilm-int8 → minilm: {r['failed_queries']} failed queries")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--settle", type=float, default=5.0, help="seconds before and after")
    ap.add_argument("--quick", action="store_true", help="80 documents, 3 s phases")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    r = run(80, 3.0) if args.quick else run(args.n, args.settle)
    write_json("model_upgrade", r)
    plot(r, RESULTS / "model_upgrade.png")
    print(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
