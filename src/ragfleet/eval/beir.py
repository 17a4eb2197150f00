"""Run a collection over a BEIR test split: quality (trec_eval metrics) next to latency.

Queries run one at a time, as users send them, so the latency percentiles are those of
single queries; ranking is per document (each document's best chunk), as BEIR's qrels
judge documents.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ragfleet.eval.latency import LatencySummary, StageLatencies
from ragfleet.eval.metrics import evaluate

if TYPE_CHECKING:
    from ragfleet.collection import Collection
    from ragfleet.rerank.base import Reranker
    from ragfleet.types import Hit, Mode

Run = dict[str, dict[str, float]]


@dataclass(frozen=True)
class BeirReport:
    """The JSON of ``ragfleet eval beir``."""

    metrics: Mapping[str, float]
    latency_ms: LatencySummary
    per_stage_ms: Mapping[str, LatencySummary]
    n_queries: int
    config: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": dict(self.metrics),
            "latency_ms": dict(self.latency_ms),
            "per_stage_ms": {k: dict(v) for k, v in self.per_stage_ms.items()},
            "n_queries": self.n_queries,
            "config": dict(self.config),
        }


def run_queries(
    col: Collection,
    queries: Mapping[str, str],
    *,
    mode: Mode,
    k: int,
    warmup: int = 5,
    reranker: Reranker | None = None,
) -> tuple[Run, StageLatencies]:
    """Search every query alone (and rerank its first ``reranker.config.candidates`` hits,
    timed as the ``rerank`` stage, inside ``total``); the run scores are ``k - rank`` so
    that trec_eval keeps exactly our order (it re-sorts by score and breaks ties by doc id)."""
    for text in list(queries.values())[:warmup]:
        _ask(col, text, mode, k, reranker)
    run: Run = {}
    lat = StageLatencies()
    for qid, text in queries.items():
        hits, timings = _ask(col, text, mode, k, reranker)
        run[qid] = {h.doc_id: float(k - i) for i, h in enumerate(hits)}
        lat.add(timings)
    return run, lat


def _ask(
    col: Collection, text: str, mode: Mode, k: int, reranker: Reranker | None
) -> tuple[list[Hit], dict[str, float]]:
    res = col.search(text, k=k, mode=mode, unique_docs=True)
    timings = dict(res.timings_ms)
    if reranker is None or not res.hits:
        return list(res.hits), timings
    t = time.perf_counter()
    hits = reranker.rerank(text, res.hits, len(res.hits))
    timings["rerank"] = (time.perf_counter() - t) * 1e3
    timings["total"] = timings.get("total", 0.0) + timings["rerank"]
    return hits, timings


def evaluate_beir(
    col: Collection,
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    mode: Mode,
    k: int = 100,
    reranker: Reranker | None = None,
) -> BeirReport:
    """nDCG@10, Recall@100, MRR@10 (trec_eval semantics) and latency percentiles (per
    stage, ``rerank`` included when a reranker is given)."""
    judged = {q: t for q, t in queries.items() if q in qrels}
    run, lat = run_queries(col, judged, mode=mode, k=k, reranker=reranker)
    metrics = evaluate(run, {q: dict(qrels[q]) for q in judged})
    per_stage = lat.summary()
    return BeirReport(
        metrics=dict(metrics.means),
        latency_ms=per_stage["total"],
        per_stage_ms=per_stage,
        n_queries=len(judged),
        config={
            "mode": mode,
            "k": k,
            "encoder": col.encoder.name,
            "index": col.config.index.spec,
            "shards": len(col.shards),
            "chunker": col.config.chunker.spec,
            "fusion": col.config.search.fusion,
            "depth": col.config.search.depth,
            "reranker": reranker.name if reranker is not None else None,
            "rerank_n": reranker.config.candidates if reranker is not None else None,
        },
    )
