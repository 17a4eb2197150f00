"""Quality of the compressed specs on real vectors, beside ``benchmarks/scale.py``'s
sampled ones.

* SciFact (5,183 abstracts, 300 test queries, real all-MiniLM-L6-v2 int8 embeddings from
  ``benchmarks/cache``): nDCG@10, dense and hybrid (RRF with BM25), of a collection built
  with each spec, against ``flat`` built the same way; default search parameters.
* recall@10 on real MiniLM vectors: the 9,085 SciFact chunk vectors as base and the first
  ``--nq`` SQuAD paragraph vectors as queries, exact inner product as truth — the
  oversample sweep of every compressed spec (what the defaults were chosen from).
* fashion-mnist-784-euclidean (60k base, the first ``--nq`` of its 10k queries, its own
  ground truth; L2): the ``ragfleet bench ann`` sweep (recall@10, QPS against raw FAISS,
  bytes per vector in RAM and on disk) over the same spec families. Its pixels are
  non-negative, so sign-bit ``binary`` codes are near-useless there (reported as is).

    .venv/bin/python -m benchmarks.scale_quality   # results/scale_quality.json and .png
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, RESULTS, write_json

SCIFACT_SPECS = (
    "flat", "hnsw32", "ivf,pq48+refine", "sq8+refine", "sq8+refine16", "sq4+refine", "binary",
    "binary+refine16", "rabitq+refine", "ivf,rabitqfs+refine", "ivf,rabitq2fs+refine",
)  # fmt: skip
MINILM_SPECS = (
    "binary", "binary+refine16", "sq8+refine", "sq4+refine", "ivf,pq48+refine", "rabitq+refine",
    "ivf,rabitqfs+refine",
)  # fmt: skip
FMNIST_SPECS = (
    "flat", "hnsw32", "ivf", "ivf,pq98+refine", "sq8+refine", "sq4+refine", "binary",
    "ivf,rabitqfs+refine",
)  # fmt: skip


def scifact(limit: int | None, specs: tuple[str, ...] = SCIFACT_SPECS) -> dict[str, Any]:
    from embcache import cached_embedder
    from ragfleet.collection import Collection
    from ragfleet.config import CollectionConfig, IndexConfig
    from ragfleet.embed.registry import load_encoder
    from ragfleet.eval.metrics import evaluate
    from ragfleet.ingest import load_beir_corpus, load_beir_queries, load_qrels
    from ragfleet.search.request import SearchRequest

    root = DATA / "scifact"
    qrels = load_qrels(root, "test")
    queries = dict(sorted((q, t) for q, t in load_beir_queries(root).items() if q in qrels))
    if limit:
        queries = dict(list(queries.items())[:limit])
    qids = list(queries)
    docs = list(load_beir_corpus(root))
    encoder = load_encoder("minilm-int8")
    embedder = cached_embedder("scifact", encoder)
    out: dict[str, Any] = {"queries": len(qids), "documents": len(docs), "specs": {}}
    tmp = Path(tempfile.mkdtemp(prefix="scale-quality-"))
    try:
        for spec in dict.fromkeys(("flat", *specs)):  # flat: the reference of every delta
            t0 = time.perf_counter()
            config = CollectionConfig(index=IndexConfig(spec=spec))
            col = Collection.build(tmp / spec, docs, config, encoder=encoder, embedder=embedder)
            row: dict[str, Any] = {"build_s": round(time.perf_counter() - t0, 1)}
            with col:
                dense = col.stats()["shards"][0]["dense"]
                row["ram_bytes_per_vector"] = dense["ram_bytes_per_vector"]
                row["disk_bytes_per_vector"] = dense["disk_bytes_per_vector"]
                for mode in ("dense", "hybrid"):
                    req = SearchRequest(k=10, mode=mode, unique_docs=True)
                    res = col.search_batch([queries[q] for q in qids], req)
                    run = {
                        q: {h.doc_id: float(len(r.hits) - i) for i, h in enumerate(r.hits)}
                        for q, r in zip(qids, res, strict=True)
                    }
                    row[f"{mode}_ndcg@10"] = round(
                        evaluate(run, qrels, ["ndcg@10"]).means["ndcg@10"], 5
                    )
            shutil.rmtree(tmp / spec, ignore_errors=True)
            out["specs"][spec] = row
            print(spec, row, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    flat = out["specs"]["flat"]
    for row in out["specs"].values():
        for mode in ("dense", "hybrid"):
            row[f"{mode}_delta_vs_flat"] = round(
                row[f"{mode}_ndcg@10"] - flat[f"{mode}_ndcg@10"], 5
            )
    return out


def fashion_mnist(nq: int) -> list[dict[str, Any]]:
    from ragfleet.eval.ann import SweepConfig, run_sweep
    from ragfleet.eval.vecio import load_ann_dataset

    base, queries, truth = load_ann_dataset(DATA / "fashion-mnist-784-euclidean")
    cfg = SweepConfig(k=10, batch=1, min_time_s=0.2, min_pairs=60)
    runs = run_sweep(
        base, queries[:nq], truth[:nq], list(FMNIST_SPECS), "l2", cfg,
        on_run=lambda r: print(r.to_dict(), flush=True),
    )  # fmt: skip
    return [r.to_dict() for r in runs]


def minilm_recall(nq: int) -> list[dict[str, Any]]:
    """The sweep over real MiniLM vectors: the SciFact chunks as base, SQuAD paragraphs as
    queries (both from ``benchmarks/cache``), truth by exact inner product."""
    import numpy as np

    from ragfleet.eval.ann import SweepConfig, exact_search, run_sweep

    def load(name: str) -> Any:
        with np.load(Path(__file__).parent / "cache" / name, allow_pickle=False) as z:
            return np.ascontiguousarray(z["vectors"], dtype=np.float32)

    base, queries = load("scifact-minilm-int8.npz"), load("squad-minilm-int8.npz")[:nq]
    truth = exact_search(base, queries, 10, "ip")[1]
    cfg = SweepConfig(k=10, batch=1, min_time_s=0.0, min_pairs=40)
    runs = run_sweep(base, queries, truth, list(MINILM_SPECS), "ip", cfg)
    return [r.to_dict() for r in runs]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nq", type=int, default=500, help="fashion-mnist queries")
    p.add_argument("--scifact-queries", type=int, default=None, help="first N (default all)")
    p.add_argument("--part", choices=["scifact", "fmnist", "minilm", "all"], default="all")
    p.add_argument("--scifact-specs", nargs="*", default=list(SCIFACT_SPECS),
                   help="SciFact specs to (re)measure; rows of other specs already in the "
                   "results are kept")  # fmt: skip
    a = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ragfleet.index.dense import set_omp_threads

    set_omp_threads(1)
    if not (DATA / "scifact").is_dir():
        sys.exit(f"data not found under {DATA}")
    path = RESULTS / "scale_quality.json"
    report: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}  # one part
    report[f"host_{a.part}"] = {"cpu_count": os.cpu_count(), "loadavg_start": os.getloadavg()}
    if a.part in ("scifact", "all"):
        old = report.get("scifact", {}).get("specs", {})
        report["scifact"] = scifact(a.scifact_queries, tuple(a.scifact_specs))
        kept = {k: v for k, v in old.items() if k not in report["scifact"]["specs"]}
        report["scifact"]["specs"] = {**kept, **report["scifact"]["specs"]}
        write_json("scale_quality", report)
    if a.part in ("fmnist", "all"):
        report["fashion_mnist"] = fashion_mnist(a.nq)
        write_json("scale_quality", report)
    if a.part in ("minilm", "all"):
        report["minilm_recall"] = minilm_recall(a.nq)
    report[f"host_{a.part}"]["loadavg_end"] = os.getloadavg()
    write_json("scale_quality", report)
    plot(report, RESULTS / "scale_quality.png")


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(14, 5))
    specs = report.get("scifact", {}).get("specs", {})
    names = list(specs)
    for j, mode in enumerate(("dense", "hybrid")):
        xs = [i + 0.4 * j for i in range(len(names))]
        a.bar(xs, [specs[s][f"{mode}_ndcg@10"] for s in names], width=0.4, label=mode)
    a.set_xticks([i + 0.2 for i in range(len(names))], names, rotation=30, ha="right", fontsize=8)
    a.set_ylim(0.5, 0.75)
    a.set_title("SciFact nDCG@10 per spec (real MiniLM vectors)")
    a.legend()
    runs = report.get("fashion_mnist", [])
    for spec in dict.fromkeys(r["spec"] for r in runs):
        pts = sorted((r for r in runs if r["spec"] == spec), key=lambda r: r["recall@10"])
        b.plot([r["recall@10"] for r in pts], [r["qps"] for r in pts], "o-", ms=3,
               label=f"{spec} ({pts[0]['ram_bytes_per_vector']:.0f} B/vec)")  # fmt: skip
    b.set_yscale("log")
    b.set_xlabel("recall@10")
    b.set_ylabel("QPS (1 thread)")
    b.set_title("fashion-mnist-784 (L2)")
    b.legend(fontsize=7)
    b.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
