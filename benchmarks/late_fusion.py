"""Does keeping some of the first-stage rank help the late reranker? Tuned on train, told on test.

A reranker's score alone throws away what the first stage knew. Interpolating the two is
the usual remedy (Wang, Zhuang & Zuccon, ICTIR 2021, "BERT-based dense retrievers require
interpolation with BM25"); over the re-scored head of ``n`` hits this measures

- ``rrf``:  ``s = 1/(60 + r_late) + w / (60 + r_first)`` (Cormack et al., SIGIR 2009), ranks
  1-based within the head;
- ``minmax``: ``s = (1 − w) · mm(late) + w · mm(first)``, ``mm(x) = (x − min) / (max − min)``
  over the head, ``first`` the head order (:func:`ragfleet.rerank.interpolate.interpolate`,
  what :class:`~ragfleet.rerank.late.LateReranker` ships).

``w = 0`` is the late score alone. Per corpus the search and the late scores are collected
once (hybrid top 100, MaxSim over the stored token vectors of the top ``--rerank-n``), then
every weight on the grid is scored offline. **The weight is chosen on a tune split and
reported on a disjoint test split**: SciFact's own train queries (809) for SciFact test
(300); for SQuAD v1.1 dev, the queries not among the 500 that ``late_scifact.py`` evaluates.
The library's default (``joint``) is the ``minmax`` weight of the best mean tune nDCG@10 over
both corpora; its gain over MaxSim alone on each test split comes with a 95% paired-bootstrap
interval over the queries.

Reads the collections ``late_scifact.py`` builds in ``--dir``; writes
``results/late_fusion.json`` and ``.png``.

    .venv/bin/python benchmarks/late_fusion.py
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, RESULTS, write_json

BENCH = Path("/tmp/ragfleet-bench")
GRID = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)
RRF_K = 60.0

Row = dict[str, Any]  # {"docs": [doc ids, first-stage order], "late": [scores of the head]}


def collect(col_dir: Path, queries: Mapping[str, str], rerank_n: int) -> dict[str, Row]:
    """Per query: the hybrid top 100 (unique documents) and the late scores of its head."""
    from ragfleet.collection import Collection

    out: dict[str, Row] = {}
    with Collection.open(col_dir, read_only=True) as col:
        for qid, text in queries.items():
            hits = col.search(text, k=100, mode="hybrid", unique_docs=True).hits
            late = col.late_scores(text, hits[:rerank_n], via="scores")
            out[qid] = {"docs": [h.doc_id for h in hits], "late": [float(x) for x in late]}
    return out


def fused(late: np.ndarray, kind: str, w: float, budget: int) -> np.ndarray:
    """The head's new scores (see the module docstring); ``first`` is the head order, the
    rank term over ``budget`` (the rerank depth) as the library computes it."""
    n = len(late)
    if kind == "rrf":
        r_late = np.empty(n)
        r_late[np.argsort(-late, kind="stable")] = np.arange(1, n + 1)
        return np.asarray(1.0 / (RRF_K + r_late) + w / (RRF_K + np.arange(1, n + 1)))
    from ragfleet.rerank.interpolate import interpolate

    return np.asarray(interpolate(late.astype(np.float32), w, budget), dtype=np.float64)


def ndcg(rows: Mapping[str, Row], qrels: Mapping[str, Mapping[str, int]], kind: str,
         w: float, budget: int) -> float:  # fmt: skip
    """Mean nDCG@10 of the rows reranked with ``kind`` at weight ``w``."""
    return float(np.mean(list(per_query(rows, qrels, kind, w, budget).values())))


def per_query(rows: Mapping[str, Row], qrels: Mapping[str, Mapping[str, int]], kind: str,
              w: float, budget: int) -> dict[str, float]:  # fmt: skip
    """nDCG@10 per query of the rows reranked with ``kind`` at weight ``w``."""
    from ragfleet.eval.metrics import evaluate

    run: dict[str, dict[str, float]] = {}
    for qid, row in rows.items():
        docs, late = row["docs"], np.asarray(row["late"], dtype=np.float64)
        head = len(late)
        order = np.argsort(-fused(late, kind, w, budget), kind="stable") if head else []
        ranked = [docs[int(i)] for i in order] + docs[head:]
        run[qid] = {d: float(len(ranked) - i) for i, d in enumerate(ranked)}
    ev = evaluate(run, {q: dict(qrels[q]) for q in rows}, ("ndcg@10",))
    return {q: float(v["ndcg@10"]) for q, v in ev.per_query.items()}


def gain_ci(a: Mapping[str, float], b: Mapping[str, float], n: int = 10_000) -> list[float]:
    """95% paired-bootstrap interval of ``mean(a − b)`` over the queries (Efron & Tibshirani
    1993; the resampling unit is the query, as in Sakai, SIGIR 2006)."""
    d = np.array([a[q] - b[q] for q in a])
    idx = np.random.default_rng(0).integers(0, len(d), size=(n, len(d)))
    means = d[idx].mean(axis=1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def sweep(
    tune: Mapping[str, Row], test: Mapping[str, Row], qrels: Any, budget: int
) -> dict[str, Any]:
    """nDCG@10 over the grid on both splits; the weight picked on ``tune`` per kind."""
    out: dict[str, Any] = {"tune_queries": len(tune), "test_queries": len(test)}
    for kind in ("rrf", "minmax"):
        grid = [{"w": w, "tune": ndcg(tune, qrels, kind, w, budget),
                 "test": ndcg(test, qrels, kind, w, budget)} for w in GRID]  # fmt: skip
        best = max(grid, key=lambda g: (g["tune"], -g["w"]))
        out[kind] = {"grid": grid, "chosen_w": best["w"], "test_at_chosen": best["test"],
                     "test_late_only": grid[0]["test"]}  # fmt: skip
        print(f"  {kind:6} w*={best['w']:.2f} (tune {best['tune']:.4f})  test "
              f"{best['test']:.4f}  late only {grid[0]['test']:.4f}", flush=True)  # fmt: skip
    return out


def joint(report: dict[str, Any], tests: Mapping[str, tuple[Any, Any]], budget: int
          ) -> dict[str, Any]:  # fmt: skip
    """The ``minmax`` weight of the best mean tune nDCG@10 over both corpora, and the test
    nDCG@10 it gives on each against MaxSim alone (``w = 0``), with the 95% interval of the
    gain (``tests``: corpus → (test rows, qrels))."""
    grids = {c: report[c]["minmax"]["grid"] for c in ("scifact", "squad")}
    mean = [float(np.mean([grids[c][i]["tune"] for c in grids])) for i in range(len(GRID))]
    best = max(range(len(GRID)), key=lambda i: (mean[i], -GRID[i]))
    out: dict[str, Any] = {"w": GRID[best], "mean_tune": mean[best]}
    for c, grid in grids.items():
        rows, qrels = tests[c]
        ci = gain_ci(per_query(rows, qrels, "minmax", GRID[best], budget),
                     per_query(rows, qrels, "minmax", 0.0, budget))  # fmt: skip
        out[c] = {"test": grid[best]["test"], "test_late_only": grid[0]["test"],
                  "gain_ci95": ci}  # fmt: skip
    print(f"joint minmax w*={GRID[best]:.2f}: " + ", ".join(
        f"{c} test {v['test']:.4f} (late only {v['test_late_only']:.4f}, gain 95% "
        f"[{v['gain_ci95'][0]:+.4f}, {v['gain_ci95'][1]:+.4f}])"
        for c, v in out.items() if isinstance(v, dict)), flush=True)  # fmt: skip
    return out


def split_heldout(ids: Sequence[str], n_eval: int) -> tuple[list[str], list[str]]:
    """``(the rest, late_scifact.py's evaluation queries)``: it evaluates every
    ``len/n_eval``-th id in sorted order."""
    ids = sorted(ids)
    step = len(ids) / n_eval
    chosen = {ids[int(i * step)] for i in range(n_eval)}
    return [q for q in ids if q not in chosen], sorted(chosen)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=BENCH, help="where the collections live")
    ap.add_argument("--pool", type=int, default=2)
    ap.add_argument("--rerank-n", type=int, default=50)
    ap.add_argument("--heldout-queries", type=int, default=500)
    ap.add_argument("--tune-max", type=int, default=1000, help="SQuAD tune queries at most")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ragfleet.ingest import load_beir_queries, load_qrels

    tag = "" if args.pool == 1 else f"-pool{args.pool}"
    report: dict[str, Any] = {"rerank_n": args.rerank_n, "pool": args.pool, "grid": list(GRID)}
    sf = DATA / "scifact"
    texts = load_beir_queries(sf)
    train, test = load_qrels(sf, "train"), load_qrels(sf, "test")
    col = args.dir / f"scifact-late-int8{tag}"
    print("scifact: train → test", flush=True)
    tune_rows = collect(col, {q: texts[q] for q in train if q in texts}, args.rerank_n)
    test_rows = collect(col, {q: texts[q] for q in test if q in texts}, args.rerank_n)
    report["scifact"] = sweep(tune_rows, test_rows, {**train, **test}, args.rerank_n)
    tests = {"scifact": (test_rows, test)}
    sq = DATA / "squad-v1.1-dev" / "beir"
    texts, qrels = load_beir_queries(sq), load_qrels(sq, "test")
    rest, evald = split_heldout([q for q in texts if q in qrels], args.heldout_queries)
    rest = rest[:: max(1, len(rest) // args.tune_max)][: args.tune_max]
    col = args.dir / f"squad-late-int8{tag}"
    print("squad: the rest → late_scifact's 500", flush=True)
    tune_rows = collect(col, {q: texts[q] for q in rest}, args.rerank_n)
    test_rows = collect(col, {q: texts[q] for q in evald}, args.rerank_n)
    report["squad"] = sweep(tune_rows, test_rows, qrels, args.rerank_n)
    tests["squad"] = (test_rows, qrels)
    report["joint"] = joint(report, tests, args.rerank_n)
    write_json("late_fusion", report, args.out)
    plot(report, args.out / "late_fusion.png")


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, name in zip(axes, ("scifact", "squad"), strict=True):
        for kind, style in (("rrf", "-"), ("minmax", "--")):
            grid = report[name][kind]["grid"]
            for split in ("tune", "test"):
                ax.plot([g["w"] for g in grid], [g[split] for g in grid], style,
                        marker="o", ms=3, label=f"{kind} {split}")  # fmt: skip
        ax.axvline(report["joint"]["w"], color="grey", ls=":", lw=1, label="default w")
        ax.set_title(f"{name}: late + w · first stage (rerank top {report['rerank_n']})")
        ax.set_xlabel("w (0: late score alone)")
        ax.set_ylabel("nDCG@10")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
