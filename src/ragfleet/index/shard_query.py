"""What a shard is asked and answers (:class:`ShardQuery`, :class:`ShardResult`), its
checkpoint policy, and the read half of :class:`~ragfleet.index.shard.Shard`.

Reads run under the shard's read lock against the in-memory state: dense and sparse
search restricted to live rows (and a metadata filter resolved by the docstore), fetch of
live rows' stored content, term statistics and counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ragfleet.config import CollectionConfig
from ragfleet.errors import ConfigError
from ragfleet.index.docstore import StoredChunk
from ragfleet.index.hits import ShardHits
from ragfleet.index.rowfilter import RowFilter
from ragfleet.index.sparse.bm25 import ShardTermStats

if TYPE_CHECKING:
    from ragfleet.index.dense import DenseIndex
    from ragfleet.index.docstore import DocStore
    from ragfleet.index.manifest import FileEntry
    from ragfleet.index.rowtable import RowTable
    from ragfleet.index.rwlock import RWLock
    from ragfleet.index.sparse.bm25 import BM25Index


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """When a shard checkpoints on its own: once the log holds ``max_wal_bytes`` or
    ``max_batches`` batches beyond the last checkpoint (and always on close).

    Between checkpoints a write costs one log append + fsync; a checkpoint rewrites the
    shard's index files, so checkpointing after every write makes each write O(shard).
    Replay on open is bounded by the same limits.
    """

    max_wal_bytes: int = 64 * 2**20
    max_batches: int = 1000

    def __post_init__(self) -> None:
        for name in ("max_wal_bytes", "max_batches"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"CheckpointPolicy.{name} must be an int >= 1, got {value!r}")

    def due(self, wal_bytes: int, batches: int) -> bool:
        return wal_bytes >= self.max_wal_bytes or batches >= self.max_batches


@dataclass(frozen=True, slots=True)
class ShardQuery:
    """A batch of queries for one shard. ``vectors`` drive dense search, ``terms`` (already
    analysed) with collection-wide ``idf``/``avgdl`` drive BM25; ``where`` restricts both
    (a metadata filter resolved by the shard's docstore: SQL ``where`` + params).
    ``ef_search``, ``nprobe``, ``oversample`` and ``rescore`` left ``None`` take the
    collection's :class:`~ragfleet.config.IndexConfig` defaults."""

    k: int
    vectors: npt.NDArray[np.float32] | None = None
    terms: Sequence[Sequence[str]] | None = None
    idf: dict[str, float] = field(default_factory=dict)
    avgdl: float = 0.0
    where: tuple[str, tuple[object, ...]] | None = None
    ef_search: int | None = None
    nprobe: int | None = None
    oversample: float | None = None
    rescore: bool | None = None


@dataclass(frozen=True, slots=True)
class ShardResult:
    """Per-query dense and sparse hits of one shard (empty lists for a signal not asked)."""

    shard: int
    dense: list[ShardHits]
    sparse: list[ShardHits]


class ShardReads:
    """The read operations of a shard, over the state :class:`Shard` maintains."""

    shard_id: int
    path: Path
    config: CollectionConfig
    dim: int
    read_only: bool
    dense: DenseIndex
    sparse: BM25Index
    docstore: DocStore
    rows: RowTable
    _lock: RWLock
    _allow: RowFilter | None
    _seq: int
    _checkpoint_seq: int
    _files: Mapping[str, FileEntry]

    def search(self, q: ShardQuery) -> ShardResult:
        """Dense and/or sparse top-``k`` of every query in the batch, tombstones excluded."""
        with self._lock.read():
            allow = self._filter(q.where)
            dense = self._search_dense(q, allow) if q.vectors is not None else []
            sparse = self._search_sparse(q, allow) if q.terms is not None else []
        return ShardResult(self.shard_id, dense, sparse)

    def _filter(self, where: tuple[str, tuple[object, ...]] | None) -> RowFilter | None:
        if where is None:
            return self._allow
        rows = self.docstore.filter_rows(where[0], where[1])
        n = self.rows.n_rows
        mask = np.zeros(n, dtype=bool)
        mask[rows[rows < n]] = True
        return RowFilter(mask & self.rows.live)

    def _hits(self, scores: npt.NDArray[np.float32], rows: npt.NDArray[np.int64]) -> ShardHits:
        keep = rows >= 0  # FAISS pads with -1
        scores, rows = scores[keep], rows[keep]
        ids = np.asarray(self.rows.chunk_ids(rows.tolist()), dtype=np.str_)
        return ShardHits(self.shard_id, scores, rows, ids)

    def _search_dense(self, q: ShardQuery, allow: RowFilter | None) -> list[ShardHits]:
        vectors = q.vectors if q.vectors is not None else np.empty((0, self.dim), np.float32)
        if self.dense.ntotal == 0 or (allow is not None and allow.n_allowed == 0):
            return [ShardHits.empty(self.shard_id) for _ in range(len(vectors))]
        k = min(q.k, self.dense.ntotal)  # memory follows the shard's size, not the request
        cfg = self.config.index
        # the configured default applies where there is something to rescore from; a query
        # asking to rescore an index that keeps no vectors is told so
        default = cfg.rescore if self.dense.vectors is not None else None
        scores, rows = self.dense.search(
            vectors,
            k,
            allow=allow,
            ef_search=cfg.ef_search if q.ef_search is None else q.ef_search,
            nprobe=cfg.nprobe if q.nprobe is None else q.nprobe,
            oversample=cfg.oversample if q.oversample is None else q.oversample,
            rescore=default if q.rescore is None else q.rescore,
        )
        return [self._hits(s, r) for s, r in zip(scores, rows, strict=True)]

    def _search_sparse(self, q: ShardQuery, allow: RowFilter | None) -> list[ShardHits]:
        out = []
        k = max(1, min(q.k, self.sparse.n_rows))
        for terms in q.terms or ():
            scores, rows = self.sparse.search(terms, k, q.idf, q.avgdl, allow=allow)
            out.append(self._hits(scores, rows))
        return out

    def term_stats(self, terms: Sequence[str]) -> ShardTermStats:
        with self._lock.read():
            return self.sparse.stats_for(terms)

    def fetch(self, rows: Sequence[int]) -> dict[int, StoredChunk]:
        """The live chunks of ``rows``. A row tombstoned by a write that landed between a
        query's search and its fetch is dropped (the query returns fewer hits rather than
        a deleted chunk)."""
        with self._lock.read():
            live = self.rows.live
            wanted = [int(r) for r in rows if 0 <= r < len(live) and live[r]]
            return self.docstore.fetch(wanted)

    def live_chunks(self, limit: int | None = None) -> list[StoredChunk]:
        """Live rows, whole, in row order (compaction, reindex, reshard): all of them, or
        the first ``limit``."""
        with self._lock.read():
            rows = self.rows.live_rows().tolist()
            return self.docstore.chunks(rows if limit is None else rows[:limit])

    def chunks_of(self, doc_ids: Sequence[str]) -> list[StoredChunk]:
        """Every live chunk of ``doc_ids``, grouped by document in chunk order."""
        with self._lock.read():
            rows = self.rows.live_rows_of(doc_ids)
            return self.docstore.chunks(rows)

    def live_docs(self, doc_ids: Sequence[str]) -> list[str]:
        """Those of ``doc_ids`` with a live version here, in the order given."""
        with self._lock.read():
            return [d for d in doc_ids if d in self.rows.doc_rows]

    def doc_hashes(self) -> Mapping[str, str]:
        with self._lock.read():
            return self.rows.doc_hashes()

    def stats(self) -> dict[str, object]:
        with self._lock.read():
            n_rows, n_live, n_docs = self.rows.n_rows, self.rows.n_live, self.rows.n_docs
            dense = self.dense_memory()
        return {
            "shard": self.shard_id,
            "rows": n_rows,
            "live_chunks": n_live,
            "documents": n_docs,
            "tombstones": n_rows - n_live,
            "index": self.config.index.spec,
            "wal_seq": self._seq,
            "checkpoint_seq": self._checkpoint_seq,
            "read_only": self.read_only,
            "needs_training": self.dense.needs_training and not self.dense.is_trained,
            "dense": dense,
            **self.token_stats(),
        }

    def dense_memory(self) -> dict[str, object]:
        """Where the dense index's bytes live: RAM (the FAISS index: codes, ids, graph,
        centroids; plus vectors not yet checkpointed) and disk (the index file and the
        memory-mapped vectors of ``+refine`` specs), in total and per row."""
        n = self.dense.ntotal
        ram = self.dense.ram_bytes()
        disk = sum(
            entry.size
            for role, entry in self._files.items()
            if role == "dense" or role.startswith("vectors-")
        )
        store = self.dense.vectors
        return {
            "spec": self.dense.spec,
            "rows": n,
            "ram_bytes": ram,
            "disk_bytes": disk,
            "ram_bytes_per_vector": round(ram / n, 2) if n else 0.0,
            "disk_bytes_per_vector": round(disk / n, 2) if n else 0.0,
            "float32_bytes_per_vector": 4 * self.dim,
            "vectors_on_disk": None if store is None else store.precision,
            "vector_segments": 0 if store is None else store.n_segments,
            "oversample": self.config.index.oversample or self.dense.default_oversample,
        }

    def token_stats(self) -> dict[str, object]:
        """Token-vector counts (:class:`~ragfleet.index.shard_tokens.ShardTokens`)."""
        return {}
