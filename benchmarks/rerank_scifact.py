"""Does reranking help on SciFact? hybrid vs hybrid + MaxSim vs hybrid + a trained cross-encoder.

All three rerank nothing / the same hybrid top ``--candidates`` documents of the 300 test
queries; nDCG@10 (trec_eval) and the rerank latency per query are measured in one run.
The cross-encoder must be trained on the *train* split only:

    ragfleet reranker train --data ../shared/data/scifact --split train --out /tmp/ce-scifact
    python -m benchmarks.rerank_scifact --cross-encoder /tmp/ce-scifact

Writes benchmarks/results/rerank_scifact.json and .png.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, RESULTS, write_json


def run_method(
    col: Any, queries: dict[str, str], reranker: Any, candidates: int
) -> tuple[dict[str, dict[str, float]], list[float]]:
    """``{qid: {doc_id: score}}`` with rank-preserving scores, and rerank ms per query."""
    from ragfleet.search.request import SearchRequest

    run: dict[str, dict[str, float]] = {}
    ms: list[float] = []
    qids = sorted(queries)
    req = SearchRequest(k=100, mode="hybrid", unique_docs=True)
    results = col.search_batch([queries[q] for q in qids], req)
    for qid, res in zip(qids, results, strict=True):
        hits = list(res.hits)
        if reranker is not None:
            t = time.perf_counter()
            head = reranker.rerank(queries[qid], hits[:candidates], candidates)
            ms.append((time.perf_counter() - t) * 1e3)
            hits = head + hits[candidates:]
        run[qid] = {h.doc_id: float(len(hits) - i) for i, h in enumerate(hits)}
    return run, ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA / "scifact")
    ap.add_argument("--collection", type=Path, default=Path("/tmp/ragfleet-bench/scifact"))
    ap.add_argument("--cross-encoder", type=Path, default=None, help="trained model directory")
    ap.add_argument("--candidates", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="first 60 test queries only")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ragfleet.collection import Collection
    from ragfleet.eval.latency import percentiles
    from ragfleet.eval.metrics import evaluate
    from ragfleet.ingest import load_beir_corpus, load_beir_queries, load_qrels
    from ragfleet.rerank import RerankConfig
    from ragfleet.rerank.maxsim import MaxSimReranker

    if not args.data.is_dir():
        sys.exit(f"SciFact not found at {args.data}")
    qrels = load_qrels(args.data, "test")
    queries = {q: t for q, t in load_beir_queries(args.data).items() if q in qrels}
    if args.quick:
        queries = dict(sorted(queries.items())[:60])
        qrels = {q: qrels[q] for q in queries}
    if not args.collection.exists():
        Collection.build(args.collection, load_beir_corpus(args.data)).close()
    config = RerankConfig(candidates=args.candidates, batch_size=16)
    methods: dict[str, Any] = {"hybrid": None, "hybrid+maxsim": MaxSimReranker(config=config)}
    if args.cross_encoder is not None:
        from ragfleet.rerank.cross_encoder import CrossEncoderReranker

        methods["hybrid+cross-encoder"] = CrossEncoderReranker(args.cross_encoder, config)
    report: dict[str, Any] = {
        "queries": len(queries),
        "candidates": args.candidates,
        "host": {"cpu_count": os.cpu_count(), "loadavg_start": os.getloadavg()},
        "methods": {},
    }
    with Collection.open(args.collection) as col:
        for name, rr in methods.items():
            run, ms = run_method(col, queries, rr, args.candidates)
            ev = evaluate(run, qrels, ["ndcg@10", "recall@10", "mrr@10"])
            report["methods"][name] = {
                "metrics": dict(ev.means),
                "rerank_ms": percentiles(ms) if ms else None,
            }
            print(
                f"{name:22} nDCG@10 {ev.means['ndcg@10']:.4f}"
                + (f"  rerank p50 {percentiles(ms)['p50']:.0f} ms" if ms else ""),
                flush=True,
            )
    report["host"]["loadavg_end"] = os.getloadavg()
    base = report["methods"]["hybrid"]["metrics"]["ndcg@10"]
    for m in report["methods"].values():
        m["delta_ndcg@10_vs_hybrid"] = m["metrics"]["ndcg@10"] - base
    write_json("rerank_scifact", report)
    plot(report, RESULTS / "rerank_scifact.png")


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["methods"])
    ndcg = [report["methods"][n]["metrics"]["ndcg@10"] for n in names]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(names, ndcg, color=["grey", "tab:blue", "tab:orange"][: len(names)])
    ax.axhline(0.72, ls="--", color="red", label="target 0.72")
    for i, v in enumerate(ndcg):
        ax.text(i, v + 0.005, f"{v:.3f}", ha="center")
    ax.set_ylabel("nDCG@10 (SciFact test)")
    ax.set_ylim(0, max(0.8, max(ndcg) + 0.05))
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
