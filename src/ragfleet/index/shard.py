"""One shard: a dense FAISS index, a BM25 index and a docstore, kept durable by a WAL.

Write path (DESIGN.md §5): a :class:`WriteBatch` is appended to the shard's write-ahead
log and fsynced — only then is it acknowledged — and then applied: the docstore
tombstones the old chunks of every document in the batch and inserts the new ones in one
SQLite transaction, then the dense and sparse indexes add the new rows. A checkpoint
writes both indexes under new file names, atomically swaps ``manifest.json`` to them and
truncates the log. On open the shard loads its last checkpoint and replays the log:
batches the docstore already committed (``applied_seq``) are re-applied to the indexes
only, so the three stores always agree on every row.

Rows are append-only and equal the FAISS internal id and the BM25 document number;
deletes are tombstones (a :class:`RowFilter` of live rows handed to both searches).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ragfleet.config import CollectionConfig
from ragfleet.errors import CollectionError, ConfigError
from ragfleet.index.atomic import fsync_dir
from ragfleet.index.dense import DenseIndex
from ragfleet.index.docstore import DocStore, NewChunk, StoredChunk
from ragfleet.index.hits import ShardHits
from ragfleet.index.manifest import (
    ShardManifest,
    checkpoint_name,
    commit_checkpoint,
    gc_unreferenced,
)
from ragfleet.index.rowfilter import RowFilter
from ragfleet.index.rwlock import RWLock
from ragfleet.index.sparse.bm25 import BM25Index, ShardTermStats
from ragfleet.index.wal import WriteAheadLog
from ragfleet.index.writebatch import ChunkRecord, WriteBatch


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
    analysed) with collection-wide ``idf``/``avgdl`` drive BM25; ``allow_rows`` restricts both
    (a metadata filter resolved by the shard's docstore: SQL ``where`` + params)."""

    k: int
    vectors: npt.NDArray[np.float32] | None = None
    terms: Sequence[Sequence[str]] | None = None
    idf: dict[str, float] = field(default_factory=dict)
    avgdl: float = 0.0
    where: tuple[str, tuple[object, ...]] | None = None
    ef_search: int | None = None
    nprobe: int | None = None


@dataclass(frozen=True, slots=True)
class ShardResult:
    """Per-query dense and sparse hits of one shard (empty lists for a signal not asked)."""

    shard: int
    dense: list[ShardHits]
    sparse: list[ShardHits]


class Shard:
    """One shard directory (DESIGN.md §4): manifest, index files, docstore and WAL."""

    def __init__(
        self,
        path: Path,
        shard_id: int,
        config: CollectionConfig,
        dim: int,
        fingerprint: str,
        *,
        durable: bool = True,
        policy: CheckpointPolicy | None = None,
    ) -> None:
        self.path = path
        self.shard_id = shard_id
        self.config = config
        self.dim = dim
        self.fingerprint = fingerprint
        self.durable = durable
        self.policy = policy or CheckpointPolicy()
        self._lock = RWLock()
        self._open()

    def _open(self) -> None:
        """Load the last checkpoint, replay the log and check that the stores agree."""
        path, config = self.path, self.config
        path.mkdir(parents=True, exist_ok=True)
        self.docstore = DocStore(path / "docs.sqlite")
        self.wal = WriteAheadLog(path / "wal")
        manifest = ShardManifest.load(path) if (path / "manifest.json").exists() else None
        gc_unreferenced(path, manifest)  # orphans of a checkpoint that crashed before its commit
        self._checkpoint_no = 0
        if manifest is None:
            self.dense = DenseIndex(config.index.spec, self.dim, config.index.metric)
            self.sparse = BM25Index(config.sparse)
            self._seq = 0
        else:
            self._check_manifest(manifest)
            self.dense = DenseIndex.load(manifest.path(path, "dense"))
            self.sparse = BM25Index.load(manifest.path(path, "sparse"), config.sparse)
            self._seq = manifest.checkpoint_seq
            self._checkpoint_no = manifest.generation
        self._checkpoint_seq = self._seq
        self._pending_bytes = self._pending_batches = 0
        self._closed = False
        self._allow: RowFilter | None = None
        self._ids: list[str] = []  # row → chunk id, rebuilt from the docstore after replay
        self._replay()
        self._ids = self.docstore.chunk_ids()
        if len(self._ids) != self.dense.ntotal:
            raise CollectionError(
                f"shard {self.shard_id} at {path} is inconsistent: docstore has "
                f"{len(self._ids)} rows, dense index {self.dense.ntotal}; restore it from a "
                "backup or rebuild"
            )

    # -- lifecycle ------------------------------------------------------------------------
    def _check_manifest(self, m: ShardManifest) -> None:
        if m.contract_fingerprint != self.fingerprint:
            raise CollectionError(
                f"shard {self.shard_id} at {self.path} was built under contract "
                f"{m.contract_fingerprint}, the collection pins {self.fingerprint}"
            )

    def _replay(self) -> None:
        done_in_docstore = self.docstore.applied_seq
        for seq, payload in self.wal.replay(after_seq=self._seq):
            batch = WriteBatch.decode(payload)
            self._apply(batch, docstore_done=seq <= done_in_docstore)
            self._seq = seq
            self._pending_bytes += len(payload)
            self._pending_batches += 1
        self._sync_tombstones()

    @property
    def seq(self) -> int:
        """The sequence number of the last acknowledged write batch."""
        return self._seq

    def close(self) -> None:
        """Checkpoint what the log holds beyond the last checkpoint, then close the files."""
        with self._lock.write():
            if self._closed:
                return
            if self._seq > self._checkpoint_seq:
                self._checkpoint_locked()
            self._close_files()

    def _close_files(self) -> None:
        self.docstore.close()
        self.wal.close()
        self._closed = True

    def swap_in(self, staged: Path) -> None:
        """Replace this shard's directory by ``staged`` (a complete shard directory built
        beside it, e.g. by compaction) and reload from it, under the write lock.

        Two renames: ``path → path.old``, ``staged → path``; :func:`recover_swap` finishes
        the job after a crash between them.
        """
        old = self.path.with_name(self.path.name + ".old")
        with self._lock.write():
            self._close_files()
            shutil.rmtree(old, ignore_errors=True)
            os.rename(self.path, old)
            os.rename(staged, self.path)
            fsync_dir(self.path.parent)
            self._open()
        shutil.rmtree(old, ignore_errors=True)

    # -- writes ---------------------------------------------------------------------------
    def write(self, upserts: Sequence[ChunkRecord], deletes: Sequence[str] = ()) -> int:
        """Durably apply one batch: every upserted document replaces all its old chunks,
        every deleted doc_id is tombstoned. Returns the batch's sequence number."""
        with self._lock.write():
            if upserts and self.dense.needs_training and not self.dense.is_trained:
                self._train([r.vector for r in upserts])
            seq = self._seq + 1
            batch = WriteBatch(seq=seq, upserts=tuple(upserts), deletes=tuple(deletes))
            payload = batch.encode()
            self.wal.append(seq, payload, fsync=self.durable)
            self._apply(batch, docstore_done=False)
            self._seq = seq
            self._pending_bytes += len(payload)
            self._pending_batches += 1
            if self.policy.due(self._pending_bytes, self._pending_batches):
                self._checkpoint_locked()
            return seq

    def _train(self, vectors: Sequence[npt.NDArray[np.float32]]) -> None:
        """Train an IVF/PQ index on the first batch and checkpoint it at once, so that a
        replay after a crash finds a trained index."""
        self.dense.train(np.stack(vectors).astype(np.float32))
        self._checkpoint_locked()

    def _apply(self, batch: WriteBatch, *, docstore_done: bool) -> None:
        first = self.dense.ntotal
        rows = np.arange(first, first + len(batch.upserts), dtype=np.int64)
        if not docstore_done:
            replaced = {r.doc_id for r in batch.upserts} | set(batch.deletes)
            new = [_new_chunk(int(row), r) for row, r in zip(rows, batch.upserts, strict=True)]
            removed = self.docstore.apply(batch.seq, sorted(replaced), new)
        else:
            removed = []
        if len(rows):
            if not docstore_done:
                self._ids.extend(r.chunk_id for r in batch.upserts)
            self.dense.add(rows, np.stack([r.vector for r in batch.upserts]))
            self.sparse.add(rows, [_sparse_text(r.title, r.text) for r in batch.upserts])
        if removed:
            self.sparse.remove(np.asarray(removed, dtype=np.int64))
        self._refresh_allow()

    def _sync_tombstones(self) -> None:
        """After replay: make BM25 statistics forget every row the docstore tombstoned."""
        deleted = self.docstore.deleted_rows()
        pending = deleted[~self.sparse.is_removed(deleted)] if len(deleted) else deleted
        if len(pending):
            self.sparse.remove(pending)
        self._refresh_allow()

    def _refresh_allow(self) -> None:
        deleted = self.docstore.deleted_rows()
        self._allow = RowFilter.all_but(self.dense.ntotal, deleted) if len(deleted) else None

    def checkpoint(self) -> None:
        """Write both indexes and the manifest atomically, then truncate the log."""
        with self._lock.write():
            self._checkpoint_locked()

    def _checkpoint_locked(self) -> None:
        no = self._checkpoint_no + 1
        files = {
            "dense": self.path / checkpoint_name("dense", no, ".faiss"),
            "sparse": self.path / checkpoint_name("sparse", no),
        }
        self.dense.save(files["dense"])
        self.sparse.save(files["sparse"])
        n_rows, n_live, _ = self.docstore.counts()
        manifest = ShardManifest(
            shard_id=self.shard_id,
            generation=no,
            n_rows=n_rows,
            n_live=n_live,
            contract_fingerprint=self.fingerprint,
            checkpoint_seq=self._seq,
        )
        self.docstore.sync()  # durable through _seq before the manifest says it is
        manifest = commit_checkpoint(self.path, files, manifest)
        gc_unreferenced(self.path, manifest)
        self.wal.truncate_through(self._seq)
        self._checkpoint_no = no
        self._checkpoint_seq = self._seq
        self._pending_bytes = self._pending_batches = 0

    # -- reads ----------------------------------------------------------------------------
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
        mask = np.zeros(self.dense.ntotal, dtype=bool)
        mask[rows[rows < self.dense.ntotal]] = True
        return RowFilter(mask)

    def _hits(self, scores: npt.NDArray[np.float32], rows: npt.NDArray[np.int64]) -> ShardHits:
        keep = rows >= 0  # FAISS pads with -1
        scores, rows = scores[keep], rows[keep]
        ids = np.asarray([self._ids[r] for r in rows.tolist()], dtype=np.str_)
        return ShardHits(self.shard_id, scores, rows, ids)

    def _search_dense(self, q: ShardQuery, allow: RowFilter | None) -> list[ShardHits]:
        vectors = q.vectors if q.vectors is not None else np.empty((0, self.dim), np.float32)
        if self.dense.ntotal == 0 or (allow is not None and allow.n_allowed == 0):
            return [ShardHits.empty(self.shard_id) for _ in range(len(vectors))]
        scores, rows = self.dense.search(
            vectors, q.k, allow=allow, ef_search=q.ef_search, nprobe=q.nprobe
        )
        return [self._hits(s, r) for s, r in zip(scores, rows, strict=True)]

    def _search_sparse(self, q: ShardQuery, allow: RowFilter | None) -> list[ShardHits]:
        out = []
        for terms in q.terms or ():
            scores, rows = self.sparse.search(terms, q.k, q.idf, q.avgdl, allow=allow)
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
            return self.docstore.fetch(rows, live_only=True)

    def doc_hashes(self) -> dict[str, str]:
        return self.docstore.doc_hashes()

    def stats(self) -> dict[str, object]:
        n_rows, n_live, n_docs = self.docstore.counts()
        return {
            "shard": self.shard_id,
            "rows": n_rows,
            "live_chunks": n_live,
            "documents": n_docs,
            "tombstones": n_rows - n_live,
            "index": self.config.index.spec,
            "wal_seq": self._seq,
            "checkpoint_seq": self._checkpoint_seq,
        }


def recover_swap(path: Path) -> None:
    """Finish or undo a :meth:`Shard.swap_in` (or a compaction) a crash interrupted:
    ``path.compacting`` (incomplete) is removed; if ``path`` is missing, ``path.ready``
    (complete) or else ``path.old`` takes its place; leftovers are removed (a ``.ready``
    beside a live ``path`` holds the same acknowledged state, built while writes waited)."""
    old = path.with_name(path.name + ".old")
    ready = path.with_name(path.name + ".ready")
    shutil.rmtree(path.with_name(path.name + ".compacting"), ignore_errors=True)
    if not path.exists():
        for candidate in (ready, old):
            if candidate.exists():
                os.rename(candidate, path)
                fsync_dir(path.parent)
                break
    shutil.rmtree(ready, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


def _new_chunk(row: int, r: ChunkRecord) -> NewChunk:
    return NewChunk(
        row=row,
        chunk_id=r.chunk_id,
        doc_id=r.doc_id,
        n=r.n,
        title=r.title,
        text=r.text,
        metadata=r.metadata,
        content_hash=r.content_hash,
        doc_hash=r.doc_hash,
    )


def _sparse_text(title: str, text: str) -> str:
    """BM25 indexes the title with the text (BEIR's multifield setup, flattened)."""
    return f"{title} {text}" if title else text


def validate_dim(dim: int) -> int:
    if dim < 1:
        raise ConfigError(f"embedding dimension must be >= 1, got {dim}")
    return dim
