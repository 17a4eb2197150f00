"""Plain frozen value types that flow between the stages.

Ids: a document has a string ``doc_id``; its n-th chunk is ``f"{doc_id}#{n}"``; inside a
shard each chunk gets an int64 ``row`` (its FAISS id and BM25 document number).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

Mode = Literal["dense", "sparse", "hybrid"]
EncodeKind = Literal["query", "document"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def chunk_id_of(doc_id: str, n: int) -> str:
    """The id of the ``n``-th chunk of ``doc_id``."""
    return f"{doc_id}#{n}"


@dataclass(frozen=True, slots=True)
class Document:
    """One source document, before chunking."""

    doc_id: str
    text: str
    title: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document: the unit that is embedded, indexed and returned.

    ``start``/``end`` are character offsets into the document text; ``content_hash`` is
    the sha256 of what is embedded (title + text), used for incremental ingest.
    """

    chunk_id: str
    doc_id: str
    n: int
    text: str
    title: str
    start: int
    end: int
    content_hash: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Hit:
    """One ranked result. ``scores`` holds the per-signal scores (dense, sparse, fused,
    rerank) that produced the rank; ``ranks`` the 1-based rank in each signal."""

    rank: int
    doc_id: str
    chunk_id: str
    score: float
    text: str
    shard: int
    title: str = ""
    scores: Mapping[str, float] = field(default_factory=dict)
    ranks: Mapping[str, int] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, the ``hits[]`` entries of ``ragfleet search --json``."""
        return {
            "rank": self.rank,
            "doc_id": self.doc_id,
            "chunk_id": self.chunk_id,
            "score": self.score,
            "scores": dict(self.scores),
            "ranks": dict(self.ranks),
            "title": self.title,
            "text": self.text,
            "shard": self.shard,
            "metadata": dict(self.metadata),
        }


@dataclass(frozen=True, slots=True)
class CacheInfo:
    """Whether a response came from a cache: ``kind`` is ``"exact"`` (same normalised query
    and parameters), ``"semantic"`` (a cached query within ``similarity`` ≥ threshold,
    ``matched_query`` names it) or ``None`` on a miss."""

    hit: bool = False
    kind: Literal["exact", "semantic"] | None = None
    matched_query: str | None = None
    similarity: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"hit": self.hit, "kind": self.kind}
        if self.kind == "semantic":
            out["matched_query"] = self.matched_query
            out["similarity"] = self.similarity
        return out


@dataclass(frozen=True, slots=True)
class Results:
    """The answer to one search: hits best first, per-stage timings and shard coverage.

    ``coverage`` is the fraction of shards that answered; ``missing_shards`` names the
    others (a partial result is flagged, never silently short).
    """

    hits: tuple[Hit, ...]
    timings_ms: Mapping[str, float]
    coverage: float = 1.0
    missing_shards: tuple[int, ...] = ()
    mode: str = "dense"
    cache: CacheInfo = field(default_factory=CacheInfo)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the output of ``ragfleet search --json``."""
        return {
            "hits": [h.to_dict() for h in self.hits],
            "timings_ms": dict(self.timings_ms),
            "coverage": self.coverage,
            "missing_shards": list(self.missing_shards),
            "mode": self.mode,
            "cache": self.cache.to_dict(),
        }


class StageTimings:
    """Wall-clock milliseconds per stage, recorded with ``with timings.stage("embed"):``.

    Not frozen: it is filled while a query runs and frozen into ``Results.timings_ms``.
    """

    __slots__ = ("_ms", "_t0")

    def __init__(self) -> None:
        self._ms: dict[str, float] = {}
        self._t0 = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self._ms[name] = self._ms.get(name, 0.0) + (time.perf_counter() - t) * 1e3

    def add(self, name: str, ms: float) -> None:
        self._ms[name] = self._ms.get(name, 0.0) + ms

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self._t0) * 1e3

    def freeze(self) -> Mapping[str, float]:
        """The stage times plus ``total`` (since construction), rounded to µs."""
        out = {k: round(v, 3) for k, v in self._ms.items()}
        out["total"] = round(self.elapsed_ms(), 3)
        return MappingProxyType(out)
