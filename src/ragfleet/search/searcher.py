"""The read path over a set of shards: embed → term statistics → scatter → merge → fuse → fetch.

Dense: each shard returns its top ``depth`` by inner product; the global top ``depth`` is
the exact merge (``cluster/merge.py``). Sparse: query-then-fetch with collection-wide
statistics (Elasticsearch's ``dfs_query_then_fetch``): the coordinator asks every shard for
the document frequency of the query terms, merges them into one IDF and average length,
and every shard scores with those, so a document's BM25 score does not depend on which
shard holds it. Hybrid: the two ranked lists are fused (RRF by default). Only the final
``k`` hits are fetched from the docstores.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ragfleet.cluster.client import ShardClient
from ragfleet.cluster.merge import Merged, merge_topk
from ragfleet.cluster.scatter import Gathered, Scatter
from ragfleet.config import SearchConfig
from ragfleet.embed.base import Encoder
from ragfleet.errors import InputError
from ragfleet.index.shard import ShardQuery, ShardResult
from ragfleet.index.sparse.analyzer import Analyzer
from ragfleet.search.fusion import fuse
from ragfleet.search.request import SearchRequest
from ragfleet.search.stats import CollectionStats
from ragfleet.types import Hit, Mode, Results, StageTimings

Key = tuple[int, int]  # (shard, row)
Signals = dict[str, dict[Key, tuple[float, int, str]]]  # signal → key → (score, rank, id)
Router = Callable[[npt.NDArray[np.float32]], Sequence[int]]  # query vectors → shard ids


class Searcher:
    """Searches a list of shards with one encoder and one analyzer."""

    def __init__(
        self,
        shards: Sequence[ShardClient],
        encoder: Encoder,
        analyzer: Analyzer | None,
        defaults: SearchConfig,
        scatter: Scatter,
        router: Router | None = None,
    ) -> None:
        """``router`` (optional): the shards a batch of query vectors is sent to (centroid
        routing); without it, or in sparse mode, every shard is searched."""
        self.shards = list(shards)
        self.router = router
        self.encoder = encoder
        self.analyzer = analyzer
        self.defaults = defaults
        self.scatter = scatter

    def search(self, queries: Sequence[str], req: SearchRequest) -> list[Results]:
        """Search a batch of queries; one :class:`Results` per query, in order."""
        k, mode, depth = self._resolve(queries, req)
        timings = StageTimings()
        deadline = None if req.timeout_ms is None else time.monotonic() + req.timeout_ms / 1e3
        vectors = terms = None
        idf: dict[str, float] = {}
        avgdl = 0.0
        if mode != "sparse":
            with timings.stage("embed"):
                vectors = self.encoder.encode(list(queries), kind="query")
        if mode != "dense":
            with timings.stage("analyze"):
                sparse = self._sparse_stats(queries, deadline)
            if sparse is None:  # no shard answered in time: an empty, flagged result
                missing = tuple(sh.shard_id for sh in self.shards)
                frozen = timings.freeze()
                return [Results((), frozen, 0.0, missing, mode=mode) for _ in queries]
            terms, idf, avgdl = sparse
        where = req.where
        query = ShardQuery(
            k=depth,
            vectors=vectors,
            terms=terms,
            idf=idf,
            avgdl=avgdl,
            where=where,
            ef_search=req.ef_search,
            nprobe=req.nprobe,
            oversample=req.oversample,
            rescore=req.rescore,
        )
        targets = self._targets(vectors)
        with timings.stage("search"):
            gathered = self.scatter.gather(
                [(s.shard_id, s) for s in targets], lambda s: s.search(query), deadline
            )
        out = []
        shared = dict(timings.freeze())
        for i in range(len(queries)):
            t = StageTimings()
            ranked, signals = self._rank(gathered, i, mode, depth, t)
            with t.stage("fetch"):
                hits = self._fetch(ranked, signals, k, req.unique_docs)
            times = {**shared, **t.freeze()}
            times["total"] = round(shared["total"] + t.elapsed_ms(), 3)
            out.append(Results(tuple(hits), times, gathered.coverage, gathered.missing, mode=mode))
        return out

    def _resolve(self, queries: Sequence[str], req: SearchRequest) -> tuple[int, Mode, int]:
        check_queries(queries)
        resolved = req.resolve(self.defaults)
        k, mode, depth = resolved.k, resolved.mode, resolved.depth
        if k is None or mode is None or depth is None:  # resolve() fills all three
            raise InputError("the request did not resolve; this is a bug, please report it")
        if mode != "dense" and self.analyzer is None:
            raise InputError(f"mode {mode!r} needs the sparse index; this collection has none")
        return k, mode, depth

    def _targets(self, vectors: npt.NDArray[np.float32] | None) -> list[ShardClient]:
        if self.router is None or vectors is None:
            return self.shards
        return [self.shards[i] for i in self.router(vectors)]

    def _sparse_stats(
        self, queries: Sequence[str], deadline: float | None
    ) -> tuple[list[list[str]], dict[str, float], float] | None:
        """Analysed queries and the collection-wide IDF and average length of their terms,
        gathered from every shard in parallel (a shard late for the deadline is left out of
        the statistics; its search will be missing too and the result flagged). ``None``
        when no shard answered before the deadline."""
        assert self.analyzer is not None  # checked in _resolve
        terms = self.analyzer.analyze_batch(queries)
        vocab = sorted({t for ts in terms for t in ts})
        gathered = self.scatter.gather(
            [(s.shard_id, s) for s in self.shards], lambda s: s.term_stats(vocab), deadline
        )
        if not gathered.results:
            return None
        stats = CollectionStats.merge(list(gathered.results.values()))
        return terms, {t: stats.idf(t) for t in vocab}, stats.avgdl

    def _rank(
        self, gathered: Gathered[ShardResult], i: int, mode: Mode, depth: int, t: StageTimings
    ) -> tuple[list[tuple[Key, float]], Signals]:
        """The fused top list of query ``i`` and, per signal, key → (score, 1-based rank)."""
        with t.stage("merge"):
            lists: dict[str, Merged] = {}
            results = gathered.results.values()
            if mode != "sparse":
                lists["dense"] = merge_topk([r.dense[i] for r in results], depth)
            if mode != "dense":
                lists["sparse"] = merge_topk([r.sparse[i] for r in results], depth)
        signals = {
            name: {
                key: (float(sc), n + 1, cid)
                for n, (key, sc, cid) in enumerate(zip(m.keys(), m.scores, m.ids, strict=True))
            }
            for name, m in lists.items()
        }
        with t.stage("fuse"):
            if mode == "hybrid":
                ranked = self._fuse(signals)
            else:
                ranked = [(key, sc) for key, (sc, _, _) in signals[mode].items()]
        return ranked, signals

    def _fuse(self, signals: Signals) -> list[tuple[Key, float]]:
        """Fuse by chunk id (ties break by id, so the order does not depend on placement)."""
        d = self.defaults
        key_of = {cid: key for sig in signals.values() for key, (_, _, cid) in sig.items()}
        by_id = {name: {cid: sc for (sc, _, cid) in sig.values()} for name, sig in signals.items()}
        weights = {"dense": d.alpha, "sparse": 1 - d.alpha}
        fused = fuse(d.fusion, by_id, rrf_k=d.rrf_k, weights=weights)
        return [(key_of[cid], sc) for cid, sc in fused]

    def _fetch(
        self,
        ranked: list[tuple[Key, float]],
        signals: Signals,
        k: int,
        unique_docs: bool,
    ) -> list[Hit]:
        """Hits for the best ``k`` keys; only those ``k`` rows are read from the docstores.

        With ``unique_docs`` only each document's best chunk counts; the document of a chunk
        is its id's prefix (``f"{doc_id}#{n}"``), so candidates are de-duplicated before
        anything is fetched. A row tombstoned between search and fetch is dropped.
        """
        chosen = _best_per_doc(ranked, signals, k) if unique_docs else ranked[:k]
        by_shard: dict[int, list[int]] = {}
        for (shard, row), _ in chosen:
            by_shard.setdefault(shard, []).append(row)
        stored = {s: self.shards[s].fetch(rows) for s, rows in by_shard.items()}
        hits: list[Hit] = []
        for key, score in chosen:
            chunk = stored[key[0]].get(key[1])
            if chunk is not None:
                hits.append(_hit(len(hits) + 1, key, score, chunk, signals))
        return hits


def check_queries(queries: Sequence[str]) -> None:
    """At least one query, each a non-empty string (InputError otherwise)."""
    if not queries:
        raise InputError("no queries given")
    for q in queries:
        if not isinstance(q, str) or not q.strip():
            raise InputError(f"a query must be a non-empty string, got {q!r:.200}")


def _best_per_doc(
    ranked: list[tuple[Key, float]], signals: Signals, k: int
) -> list[tuple[Key, float]]:
    """The first ``k`` entries of ``ranked`` whose documents have not appeared before."""
    chunk_id = {key: cid for sig in signals.values() for key, (_, _, cid) in sig.items()}
    seen: set[str] = set()
    out = []
    for key, score in ranked:
        doc = chunk_id[key].rpartition("#")[0]
        if doc not in seen:
            seen.add(doc)
            out.append((key, score))
            if len(out) == k:
                break
    return out


def _hit(rank: int, key: Key, score: float, chunk: Any, signals: Signals) -> Hit:
    scores = {name: sig[key][0] for name, sig in signals.items() if key in sig}
    ranks = {name: sig[key][1] for name, sig in signals.items() if key in sig}
    if len(signals) > 1:
        scores["fused"] = score
    return Hit(
        rank=rank,
        doc_id=chunk.doc_id,
        chunk_id=chunk.chunk_id,
        score=score,
        text=chunk.text,
        shard=key[0],
        title=chunk.title,
        scores=scores,
        ranks=ranks,
        metadata=chunk.metadata,
    )
