"""The checkpoint of a shard (DESIGN.md §5) — the half of :class:`~ragfleet.index.shard.Shard`
that writes its files.

Protocol (a crash at any point leaves the old checkpoint or the new one, and a log that
replays from it): commit the docstore overlay (one fsynced SQLite transaction), write the
dense and sparse indexes under new names (``<role>.<NNNNNN>``) and the full-precision
vectors of a ``+refine`` spec as new segments (``ragfleet.index.vectors``: the rows added
since the last checkpoint, merged with older segments by its policy), rename ``manifest.json``
naming them and ``checkpoint_seq`` (the commit point), then delete the old files and
truncate the log. A failure before the rename deletes what it wrote; the acknowledged
writes stay in the log. An automatic checkpoint that fails (disk full) is logged, never
raised into the write that triggered it, and retried no sooner than
:data:`CHECKPOINT_RETRY_S` later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ragfleet.errors import CollectionError, StorageError
from ragfleet.index import faults
from ragfleet.index.manifest import (
    FileEntry,
    ShardManifest,
    checkpoint_name,
    commit_checkpoint,
    gc_unreferenced,
)

if TYPE_CHECKING:
    from ragfleet.index.dense import DenseIndex
    from ragfleet.index.docstore import DocStore
    from ragfleet.index.rowtable import RowTable
    from ragfleet.index.rwlock import RWLock
    from ragfleet.index.shard_query import CheckpointPolicy
    from ragfleet.index.sparse.bm25 import BM25Index
    from ragfleet.index.tokens import TokenStore
    from ragfleet.index.wal import WriteAheadLog

log = logging.getLogger("ragfleet.index.shard")

#: After a failed automatic checkpoint (disk full), writes retry it no sooner than this.
CHECKPOINT_RETRY_S = 10.0


class ShardCheckpoints:
    """Checkpointing over the state :class:`~ragfleet.index.shard.Shard` maintains."""

    path: Path
    shard_id: int
    fingerprint: str
    policy: CheckpointPolicy
    dense: DenseIndex
    sparse: BM25Index
    docstore: DocStore
    rows: RowTable
    wal: WriteAheadLog
    tokens: TokenStore | None
    _lock: RWLock
    _seq: int
    _checkpoint_no: int
    _checkpoint_seq: int
    _pending_bytes: int
    _pending_batches: int
    _retry_checkpoint_at: float
    _files: Mapping[str, FileEntry]

    def _check_writable(self) -> None:
        raise NotImplementedError

    def _read_manifest(self) -> ShardManifest | None:
        raise NotImplementedError

    def _maybe_checkpoint(self) -> None:
        """Checkpoint when the policy says so. A failure (disk full) is logged, not raised:
        the batch that triggered it is already durable in the log and acknowledged."""
        if not self.policy.due(self._pending_bytes, self._pending_batches):
            return
        if time.monotonic() < self._retry_checkpoint_at:
            return
        try:
            self._checkpoint_locked()
        except (OSError, StorageError) as e:
            self._retry_checkpoint_at = time.monotonic() + CHECKPOINT_RETRY_S
            log.warning(
                "shard %d at %s: automatic checkpoint failed (%s); every acknowledged write "
                "is in the log, the checkpoint is retried later",
                self.shard_id, self.path, e,
            )  # fmt: skip

    def _train(self, vectors: npt.NDArray[np.float32]) -> None:
        """Train an IVF/PQ index on the first batch and checkpoint it at once, so that a
        replay after a crash finds a trained index."""
        self.dense.train(vectors)
        try:
            self._checkpoint_locked()
        except (OSError, StorageError) as e:
            raise StorageError(
                f"shard {self.shard_id}: cannot save the trained index ({e}); nothing of "
                "the batch was applied",
                applied=False,
            ) from e

    def checkpoint(self) -> None:
        """Write the indexes and the manifest atomically, then truncate the log.

        Raises:
            StorageError: the disk refused (``applied=True``: every acknowledged write is
                still in the log and is replayed on the next open).
        """
        with self._lock.write():
            self._check_writable()
            self._checkpoint_or_raise("checkpoint")

    def _checkpoint_or_raise(self, what: str) -> None:
        """Checkpoint; a disk error becomes a StorageError that says the writes are safe."""
        try:
            self._checkpoint_locked()
        except (OSError, StorageError) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise StorageError(
                f"{what} of shard {self.shard_id} at {self.path} failed ({why}); every "
                "acknowledged write is safe in the log and is replayed on the next open: "
                "free space and retry",
                applied=True,
            ) from e

    def _checkpoint_locked(self) -> None:
        no = self._checkpoint_no + 1
        files = {"sparse": self.path / checkpoint_name("sparse", no)}
        # an index that learns from data and has seen none (a shard that got only deletes)
        # has nothing to write: the manifest names no dense file, and opening it starts
        # untrained again
        trained = self.dense.is_trained
        if trained:
            files["dense"] = self.path / checkpoint_name("dense", no, ".faiss")
        n_rows = self.rows.n_rows
        try:
            faults.point("checkpoint.docstore")
            self.docstore.commit(n_rows)
            faults.point("checkpoint.dense")
            if trained:
                self.dense.save(files["dense"])
            faults.point("checkpoint.sparse")
            self.sparse.save(files["sparse"])
            # files carried over from the last checkpoint: vector segments the store keeps,
            # token segments of the rows before it (each checkpoint writes the new rows only)
            carried: dict[str, FileEntry] = {}
            store, plan = self.dense.vectors, None
            if store is not None:
                faults.point("checkpoint.vectors")
                plan = store.write(self.path, no)
                files.update(plan.new)
                carried.update({role: self._files[role] for role in plan.kept})
            if self.tokens is not None:
                faults.point("checkpoint.tokens")
                carried.update(self.tokens.entries)
                segment = self.tokens.write_segment(self.path, no)
                if segment is not None:
                    files[segment[0]] = segment[1]
            manifest = ShardManifest(
                shard_id=self.shard_id,
                generation=no,
                n_rows=n_rows,
                n_live=self.rows.n_live,
                contract_fingerprint=self.fingerprint,
                checkpoint_seq=self._seq,
                files=carried,
            )
            manifest = commit_checkpoint(self.path, files, manifest)
        except BaseException as e:
            if not isinstance(e, faults.SimulatedCrash):  # a dead process cleans nothing
                self._discard_partial_checkpoint()
            raise
        # committed: the state must say so before anything else can fail
        self._files = dict(manifest.files)
        if store is not None and plan is not None:
            store.adopt(plan)
        self._checkpoint_no = no
        self._checkpoint_seq = self._seq
        self._pending_bytes = self._pending_batches = 0
        self.docstore.committed(n_rows)
        if self.tokens is not None:
            self.tokens.committed(self.path, manifest.files)
        faults.point("checkpoint.committed")
        gc_unreferenced(self.path, manifest)
        self.wal.truncate_through(self._seq)

    def _discard_partial_checkpoint(self) -> None:
        """Best effort after a failed checkpoint: delete the files it wrote (the committed
        manifest still names the old ones)."""
        try:
            gc_unreferenced(self.path, self._read_manifest())
        except (OSError, CollectionError) as e:
            log.warning("shard %d: could not clean up a failed checkpoint: %s", self.shard_id, e)
