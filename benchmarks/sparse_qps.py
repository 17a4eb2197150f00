"""Per-shard sparse search speed: ragfleet's BM25Index against bm25s and tantivy.

We are the BM25 engine (see ``ragfleet.index.sparse.bm25``), so the baselines are the two
engines we did not choose, measured in the same run on the same corpus and the same
analysed terms (our analyzer's tokens, joined by spaces for tantivy's whitespace
tokenizer), one thread, top-k per query:

- ``ragfleet``: ``BM25Index.search`` with collection statistics already merged (what a
  shard does per query), and ``ragfleet e2e`` adding analysis + ``stats_for`` + merge;
- ``bm25s``: ``BM25.retrieve`` (numpy backend, ``n_threads=1``) on token lists;
- ``tantivy``: a boolean SHOULD query of term queries, ``Searcher.search`` (its own BM25,
  k1=1.2, b=0.75, not configurable).

Timings alternate between engines per repeat and keep each engine's best, which
damps the noise of a shared machine. Writes ``benchmarks/results/sparse_qps.{json,png}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bm25_scifact import DATA, RESULTS, load_scifact, timed  # the sibling script (run from here)
from ragfleet.config import SparseConfig
from ragfleet.index.sparse import BM25Index
from ragfleet.search.stats import CollectionStats


def ragfleet_engine(texts: Sequence[str], queries: Sequence[str], k: int) -> dict[str, Any]:
    """Build; return the timed callables (search only, and the full per-query path)."""
    t = time.perf_counter()
    index = BM25Index(SparseConfig(k1=0.9, b=0.4))
    index.add(np.arange(len(texts)), list(texts))
    build_s = time.perf_counter() - t
    terms = index.analyzer.analyze_batch(queries)
    stats = CollectionStats.merge([index.stats_for([t for q in terms for t in q])])
    idf = stats.idf_map(t for q in terms for t in q)

    def search_only() -> None:
        for q in terms:
            index.search(q, k, idf, stats.avgdl)

    def end_to_end() -> None:
        for text in queries:
            q = index.analyzer(text)
            s = CollectionStats.merge([index.stats_for(q)])
            index.search(q, k, s.idf_map(q), s.avgdl)

    return {"build_s": build_s, "ragfleet": search_only, "ragfleet e2e": end_to_end}


def bm25s_engine(corpus: list[list[str]], queries: list[list[str]], k: int) -> dict[str, Any]:
    import bm25s

    t = time.perf_counter()
    retriever = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
    retriever.index(corpus, show_progress=False)
    build_s = time.perf_counter() - t

    def search() -> None:
        for q in queries:  # one query per call, as a shard answers them
            retriever.retrieve([q], k=k, show_progress=False, n_threads=1)

    return {"build_s": build_s, "bm25s": search}


def tantivy_engine(corpus: list[list[str]], queries: list[list[str]], k: int) -> dict[str, Any]:
    import tantivy

    t = time.perf_counter()
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("body", tokenizer_name="whitespace", index_option="freq")
    schema = builder.build()
    index = tantivy.Index(schema)
    writer = index.writer(heap_size=200_000_000, num_threads=1)
    for doc in corpus:
        writer.add_document(tantivy.Document(body=" ".join(doc)))
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    build_s = time.perf_counter() - t
    searcher = index.searcher()
    should = tantivy.Occur.Should

    def search() -> None:
        for q in queries:
            clauses = [(should, tantivy.Query.term_query(schema, "body", t)) for t in q]
            searcher.search(tantivy.Query.boolean_query(clauses), k, count=False)

    return {"build_s": build_s, "tantivy": search}


def plot(qps: dict[str, float], qps_cpu: dict[str, float], k: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(qps))
    ax.bar(x - 0.2, list(qps.values()), 0.4, label="wall clock")
    ax.bar(x + 0.2, list(qps_cpu.values()), 0.4, label="CPU time")
    ax.set_xticks(x, list(qps))
    ax.set_ylabel("queries / s (one thread)")
    ax.set_title(f"BM25 on one SciFact shard (5,183 docs), top-{k}")
    for i, v in enumerate(qps_cpu.values()):
        ax.text(i + 0.2, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=8)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="2 repeats over 300 queries")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    _, texts, queries, _ = load_scifact(args.data.resolve())
    qtexts = list(queries.values())[: 300 if args.quick else None]
    repeats = 2 if args.quick else args.repeats

    ours = ragfleet_engine(texts, qtexts, args.k)
    analyzer = BM25Index(SparseConfig()).analyzer
    corpus, qterms = analyzer.analyze_batch(texts), analyzer.analyze_batch(qtexts)
    others = [bm25s_engine(corpus, qterms, args.k), tantivy_engine(corpus, qterms, args.k)]
    engines = {n: f for e in (ours, *others) for n, f in e.items() if n != "build_s"}
    wall, cpu, _ = timed(engines, repeats)
    qps = {name: round(len(qtexts) / s, 1) for name, s in wall.items()}
    qps_cpu = {name: round(len(qtexts) / s, 1) for name, s in cpu.items()}
    result = {
        "benchmark": "sparse_qps",
        "config": {"k": args.k, "queries": len(qtexts), "docs": len(texts), "repeats": repeats},
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}",
        "qps": qps,
        "qps_cpu_time": qps_cpu,
        "build_note": "ragfleet's build includes analysis; bm25s and tantivy get analysed terms",
        "build_s": {
            "ragfleet": round(ours["build_s"], 3),
            "bm25s": round(others[0]["build_s"], 3),
            "tantivy": round(others[1]["build_s"], 3),
        },
        "ratio_ragfleet_vs_bm25s": round(qps["ragfleet"] / qps["bm25s"], 2),
        "ratio_ragfleet_vs_tantivy": round(qps["ragfleet"] / qps["tantivy"], 2),
        "ratio_cpu_ragfleet_vs_bm25s": round(qps_cpu["ragfleet"] / qps_cpu["bm25s"], 2),
        "ratio_cpu_ragfleet_vs_tantivy": round(qps_cpu["ragfleet"] / qps_cpu["tantivy"], 2),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sparse_qps.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(qps, qps_cpu, args.k, args.out / "sparse_qps.png")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
