"""The writes of a :class:`~ragfleet.collection.Collection`: upsert, delete, checkpoint,
compact, reindex — each under the collection's write mutex and its writer lock, with
embedding done outside the mutex (:class:`~ragfleet.collection.writer.DocumentWriter`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

from ragfleet.collection.writer import CancelCheck, DocumentWriter, Embedder, IngestReport
from ragfleet.errors import ReadOnlyError
from ragfleet.index.lock import WriterLock
from ragfleet.index.rwlock import RWLock
from ragfleet.types import Document

if TYPE_CHECKING:
    import threading

    from ragfleet.collection.generations import ReindexReport
    from ragfleet.config import CollectionConfig
    from ragfleet.embed.base import Encoder
    from ragfleet.index.shard import Shard

Progress = Callable[[int, int], None]


class CollectionWrites:
    """Writes over the state :class:`~ragfleet.collection.Collection` holds."""

    path: Path
    config: CollectionConfig
    encoder: Encoder
    shards: list[Shard]
    _lock: WriterLock | None
    _write_mutex: threading.Lock
    _swap: RWLock
    _writer: DocumentWriter

    def reload(self) -> bool:
        raise NotImplementedError

    def _check_writable(self) -> None:
        if self._lock is None:
            raise ReadOnlyError(
                f"{self.path} is open read-only; open it for writing (one writer at a time)"
            )
        if not self._lock.held():
            raise ReadOnlyError(
                f"{self.path}: this process did not open the collection (a forked child?); "
                "open it again here"
            )

    def upsert(
        self,
        docs: Iterable[Document],
        *,
        progress: Progress | None = None,
        embedder: Embedder | None = None,
        cancel: CancelCheck | None = None,
        skip_invalid: bool = False,
        max_chunks: int | None = None,
    ) -> IngestReport:
        """Insert or replace documents; unchanged ones (same content hash) are skipped.

        Each document is written to its shard's log in one batch with the removal of its
        old chunks, so after any crash it is wholly old or wholly new. On return the write
        is durable (logged and fsynced) and visible to the next query; index files are
        rewritten only when a shard's :class:`CheckpointPolicy` says so, and on close.
        ``embedder`` embeds elsewhere (e.g. ``ragfleet.cluster.ray_ingest``) under the same
        encoder name; the vectors are checked for shape like any others. Embedding runs
        outside the write mutex, so other writes proceed meanwhile; ``cancel()`` is called
        between embedding batches and may raise to stop before anything is written.
        Documents with no text are skipped and reported (``IngestReport.skipped``).
        """
        self._check_writable()
        return self._writer.upsert(
            docs, progress=progress, embedder=embedder, locked=self._locked_write,
            cancel=cancel, skip_invalid=skip_invalid, max_chunks=max_chunks,
        )  # fmt: skip

    @contextlib.contextmanager
    def _locked_write(self) -> Iterator[None]:
        with self._write_mutex:
            self._check_writable()
            yield

    def delete(self, doc_ids: Sequence[str]) -> int:
        """Tombstone every chunk of ``doc_ids``; returns how many documents existed."""
        with self._locked_write():
            return self._writer.delete(doc_ids)

    def checkpoint(self) -> None:
        """Write every shard's indexes now and truncate its log."""
        with self._locked_write():
            for s in self.shards:
                s.checkpoint()

    def compact(self, threshold: float = 0.2) -> list[int]:
        """Rebuild, online, every shard whose tombstone ratio is at least ``threshold``
        (see ``compact.py``); returns the shards rebuilt."""
        from ragfleet.collection.compact import compact_collection

        with self._locked_write():
            return compact_collection(self, threshold)

    def reindex(self, encoder_name: str, *, batch_docs: int = 64) -> ReindexReport:
        """Re-embed this collection under ``encoder_name`` into a new generation (see
        :func:`ragfleet.collection.generations.reindex`) under this writer's lock, and
        switch to it."""
        from ragfleet.collection.generations import reindex

        with self._locked_write():
            lock = cast(WriterLock, self._lock)  # _locked_write checked that it is held
            report = reindex(self.path, encoder_name, batch_docs=batch_docs, lock=lock)
        self.reload()
        return report

    def swap_shard(self, shard: int, staged: Path) -> None:
        """Swap a rebuilt shard directory in, between queries (used by compaction)."""
        with self._swap.write():
            self.shards[shard].swap_in(staged)
