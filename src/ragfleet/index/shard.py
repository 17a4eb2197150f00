"""One shard: a dense FAISS index, a BM25 index, a docstore and a row table, kept durable
by a write-ahead log (DESIGN.md §4–5).

State. The shard's state after batch ``seq`` is a pure function of its last checkpoint
and the log records after it, applied in order, each against the state as of that record
(:meth:`RowTable.apply <ragfleet.index.rowtable.RowTable.apply>`). A checkpoint holds
the dense index, the BM25 index (whose live mask is the tombstone set), the docstore rows
``0 .. n_rows - 1`` and ``manifest.json`` naming them with ``checkpoint_seq``; between
checkpoints nothing on disk changes but the log. So every prefix of every operation
sequence reopens: a crash anywhere leaves a checkpoint (old or new — the manifest rename is
the commit point) and a log that replays from it.

Write path: validate → append the batch to the log and fsync (only then is it
acknowledged) → apply it in memory (row table, docstore overlay, dense, sparse). A
checkpoint commits the docstore overlay, writes both indexes under new names, renames the
manifest, then deletes the old files and truncates the log.

Readers (``read_only=True``) open the same files without writing anything: no mkdir, no
garbage collection, no log truncation, no journal-mode change; they replay the log into
memory. A writer may checkpoint while a reader opens; the reader then finds a file gone or
the log cut past its checkpoint and starts again from the new manifest.

This module is longer than most (~370 lines) on purpose: open, replay, apply, write,
refresh and close are one state machine whose invariants (rows, seq, the log position)
are kept together; the checkpoint and the reads live beside it (shard_checkpoint.py,
shard_query.py).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ragfleet.config import CollectionConfig
from ragfleet.errors import (
    CollectionError,
    InputError,
    ReadOnlyError,
    StorageError,
)
from ragfleet.index import faults
from ragfleet.index.atomic import fsync_dir
from ragfleet.index.dense import DenseIndex
from ragfleet.index.docstore import DocStore
from ragfleet.index.manifest import (
    ShardManifest,
    gc_unreferenced,
)
from ragfleet.index.rowfilter import RowFilter
from ragfleet.index.rowtable import RowEntry, RowTable
from ragfleet.index.rwlock import RWLock
from ragfleet.index.shard_checkpoint import ShardCheckpoints
from ragfleet.index.shard_dirs import incarnation, recover_swap, resolve_shard_dir
from ragfleet.index.shard_query import CheckpointPolicy, ShardQuery, ShardReads, ShardResult
from ragfleet.index.shard_tokens import ShardTokens
from ragfleet.index.sparse.bm25 import BM25Index
from ragfleet.index.vectors import segment_roles
from ragfleet.index.wal import WriteAheadLog
from ragfleet.index.writebatch import ChunkRecord, WriteBatch

__all__ = [
    "CheckpointPolicy",
    "Shard",
    "ShardQuery",
    "ShardResult",
    "recover_swap",
    "resolve_shard_dir",
]

log = logging.getLogger(__name__)

#: How often a reader starts over when a writer's checkpoint moves files under it.
READER_ATTEMPTS = 20


class _Moved(Exception):
    """A reader's view of the shard went stale while it opened (a checkpoint ran)."""


class Shard(ShardTokens, ShardReads, ShardCheckpoints):
    """One shard directory (DESIGN.md §4): manifest, index files, docstore and WAL.

    Args:
        read_only: open as a reader (see the module docstring); writes raise
            :class:`ReadOnlyError`.
    """

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
        read_only: bool = False,
    ) -> None:
        self.path = path
        self.shard_id = shard_id
        self.config = config
        self.dim = dim
        self.fingerprint = fingerprint
        self.durable = durable
        self.policy = policy or CheckpointPolicy()
        self.read_only = read_only
        self._lock = RWLock()
        self._closed = True
        self._retry_checkpoint_at = 0.0
        if read_only:
            self._open_reader()
        else:
            self._open_writer()

    # -- opening --------------------------------------------------------------------------
    def _open_writer(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        manifest = self._read_manifest()
        gc_unreferenced(self.path, manifest)  # orphans of a checkpoint that crashed
        self._load(manifest)
        try:
            self.wal = WriteAheadLog(self.path / "wal")
            self._replay()
        except BaseException:
            self.docstore.close()
            raise

    def _open_reader(self) -> None:
        last: Exception | None = None
        for attempt in range(READER_ATTEMPTS):
            manifest = self._read_manifest()
            try:
                self._load(manifest)
            except (FileNotFoundError, CollectionError) as e:
                if self._read_manifest() == manifest:
                    raise
                last = e
                continue
            try:
                self.wal = WriteAheadLog(self.path / "wal", read_only=True)
                self._replay()
                if self._read_manifest() != manifest:
                    raise _Moved
                return
            except (FileNotFoundError, _Moved, CollectionError) as e:
                self.docstore.close()
                if isinstance(e, CollectionError) and self._read_manifest() == manifest:
                    raise
                last = e
                time.sleep(0.005 * (attempt + 1))
        raise CollectionError(
            f"shard {self.shard_id} at {self.path} changed under this reader "
            f"{READER_ATTEMPTS} times in a row ({last}); the writer checkpoints faster than "
            "it can be read: retry, or read it while the writer is idle"
        )

    def _read_manifest(self) -> ShardManifest | None:
        if not (self.path / "manifest.json").exists():
            return None
        return ShardManifest.load(self.path)

    def _load(self, manifest: ShardManifest | None) -> None:
        """The state of the last checkpoint (empty without one)."""
        config = self.config
        if manifest is None:
            self.dense = DenseIndex(config.index.spec, self.dim, config.index.metric)
            self.sparse = BM25Index(config.sparse)
            n_rows, self._seq, self._checkpoint_no = 0, 0, 0
            self._files = {}
        else:
            self._check_manifest(manifest)
            roles = segment_roles(list(manifest.files))
            segments = [(role, manifest.path(self.path, role)) for role in roles]
            if "dense" in manifest.files:
                self.dense = DenseIndex.load(
                    manifest.path(self.path, "dense"), config.index.spec, config.index.metric,
                    vectors=segments,
                )  # fmt: skip
            else:  # checkpointed before its first vectors: an index still to be trained
                self.dense = DenseIndex(config.index.spec, self.dim, config.index.metric)
            self._files = dict(manifest.files)
            self.sparse = BM25Index.load(manifest.path(self.path, "sparse"), config.sparse)
            n_rows, self._seq = manifest.n_rows, manifest.checkpoint_seq
            self._checkpoint_no = manifest.generation
            if not self.dense.ntotal == self.sparse.n_rows == n_rows:
                raise CollectionError(
                    f"shard {self.shard_id} at {self.path}: the manifest names {n_rows} rows, "
                    f"the dense index holds {self.dense.ntotal}, BM25 {self.sparse.n_rows}; "
                    "restore the shard from a replica or rebuild it"
                )
        self._load_tokens(manifest, n_rows)
        self.docstore = DocStore(self.path / "docs.sqlite", n_rows, read_only=self.read_only)
        try:
            self.rows = RowTable.restore(self.docstore.entries(), self.sparse.live)
        except BaseException:
            self.docstore.close()
            raise
        self._checkpoint_seq = self._seq
        self._pending_bytes = self._pending_batches = 0
        self._allow: RowFilter | None = None
        self._closed = False
        self._incarnation = incarnation(self.path)

    def _check_manifest(self, m: ShardManifest) -> None:
        if m.contract_fingerprint != self.fingerprint:
            raise CollectionError(
                f"shard {self.shard_id} at {self.path} was built under contract "
                f"{m.contract_fingerprint}, the collection pins {self.fingerprint}"
            )

    def _replay(self) -> None:
        """Apply every log record after the checkpoint, in order, each to the state as of
        that record; the first must follow the checkpoint directly."""
        expected = self._seq + 1
        for seq, payload in self.wal.replay(after_seq=self._seq):
            if seq != expected:
                if self.read_only:
                    raise _Moved  # the writer truncated past this reader's checkpoint
                raise CollectionError(
                    f"shard {self.shard_id} at {self.path}: the log holds seq {seq} where "
                    f"{expected} was expected (checkpoint {self._checkpoint_seq}); records "
                    "are missing: restore the shard from a replica or rebuild it"
                )
            self._apply(WriteBatch.decode(payload))
            self._seq, expected = seq, seq + 1
            self._pending_bytes += len(payload)
            self._pending_batches += 1
        self._refresh_allow()

    @property
    def seq(self) -> int:
        """The sequence number of the last acknowledged write batch."""
        return self._seq

    def refresh(self) -> bool:
        """A reader catches up with the shard's writer: the records the writer logged since
        are applied; after a checkpoint, or a compaction that swapped the directory, the
        shard is reopened. Returns whether anything changed (a writer: nothing to do)."""
        if not self.read_only:
            return False
        with self._lock.write():
            manifest = self._read_manifest()
            generation = manifest.generation if manifest is not None else 0
            same = generation == self._checkpoint_no and incarnation(self.path) == self._incarnation
            if same:
                before = self._seq
                wal = WriteAheadLog(self.path / "wal", read_only=True)
                try:
                    self.wal.close()
                    self.wal = wal
                    self._replay()
                    return self._seq != before
                except (_Moved, FileNotFoundError, CollectionError):
                    pass  # a checkpoint ran meanwhile: reopen from it
            self._close_files()
            self._open_reader()
            return True

    # -- the state transition -------------------------------------------------------------
    def _apply(self, batch: WriteBatch) -> None:
        """Apply one batch to the in-memory state (the log already holds it)."""
        entries = [RowEntry(r.chunk_id, r.doc_id, r.doc_hash) for r in batch.upserts]
        step = self.rows.apply(entries, batch.deletes)
        rows = np.arange(step.first_row, step.first_row + step.added, dtype=np.int64)
        if step.added:
            self.docstore.add([r.at(int(row)) for row, r in zip(rows, batch.upserts, strict=True)])
            self.dense.add(rows, batch.vectors())
            self._apply_tokens(step.first_row, batch.upserts)
            self.sparse.add(rows, [_sparse_text(r.title, r.text) for r in batch.upserts])
        if len(step.removed):
            self.sparse.remove(step.removed)

    def _refresh_allow(self) -> None:
        live = self.rows.live
        self._allow = None if self.rows.n_live == len(live) else RowFilter(live)

    # -- writes ---------------------------------------------------------------------------
    def apply(self, upserts: Sequence[ChunkRecord], deletes: Sequence[str] = ()) -> int:
        """Durably apply one batch: every upserted document replaces all its old chunks,
        every deleted doc_id is tombstoned. Returns the batch's sequence number.

        Raises:
            InputError: the batch is invalid (nothing is written).
            StorageError: the disk refused the log append (``applied=False``).
        """
        with self._lock.write():
            self._check_writable()
            self._check_vectors(upserts)
            if upserts and self.dense.needs_training and not self.dense.is_trained:
                self._train(np.stack([r.vector for r in upserts]))
            seq = self._seq + 1
            batch = WriteBatch(seq=seq, upserts=tuple(upserts), deletes=tuple(deletes))
            payload = batch.encode()
            try:
                self.wal.append(seq, payload, fsync=self.durable)
            except CollectionError as e:
                cause = e.__cause__
                if isinstance(cause, OSError):
                    raise StorageError(
                        f"shard {self.shard_id} at {self.path}: the write-ahead log refused "
                        f"the batch ({cause.strerror or cause}); nothing of it was applied",
                        applied=False,
                    ) from e
                raise
            self._apply(batch)
            self._seq = seq
            self._pending_bytes += len(payload)
            self._pending_batches += 1
            self._refresh_allow()
            self._maybe_checkpoint()
            return seq

    def _check_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyError(
                f"shard {self.shard_id} at {self.path} is open read-only; open the "
                "collection for writing (one writer at a time) to change it"
            )
        if self._closed:
            raise CollectionError(f"shard {self.shard_id} at {self.path} is closed")

    def _check_vectors(self, upserts: Sequence[ChunkRecord]) -> None:
        """Everything that could make a logged batch fail to apply is checked before the
        log sees it: a record that cannot be replayed would make the shard unopenable."""
        for r in upserts:
            if r.vector.shape != (self.dim,):
                raise InputError(
                    f"vector of {r.chunk_id!r} has shape {r.vector.shape}, the shard holds "
                    f"[{self.dim}]; embed with the collection's encoder"
                )
        self._check_tokens(upserts)

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        """Checkpoint what the log holds beyond the last checkpoint (writers), then close
        the files — always, even when the checkpoint fails (then StorageError says the
        writes are safe in the log)."""
        with self._lock.write():
            if self._closed:
                return
            try:
                if not self.read_only and self._seq > self._checkpoint_seq:
                    self._checkpoint_or_raise("the closing checkpoint")
            finally:
                self._close_files()

    def abandon(self) -> None:
        """Close the files without writing anything, as a process that dies here would
        (crash tests)."""
        if not self._closed:
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
            self._check_writable()
            self._close_files()
            shutil.rmtree(old, ignore_errors=True)
            os.rename(self.path, old)
            faults.point("swap.renamed-old")
            os.rename(staged, self.path)
            fsync_dir(self.path.parent)
            self._open_writer()
        shutil.rmtree(old, ignore_errors=True)


def _sparse_text(title: str, text: str) -> str:
    """BM25 indexes the title with the text (BEIR's multifield setup, flattened)."""
    return f"{title} {text}" if title else text
