"""A collection: the embedded ragfleet engine over one directory (DESIGN.md §4).

    <collection>/collection.json   config, EmbeddingContract, generation
    <collection>/shard-NNN/        one :class:`Shard` each

or, once a collection has been reindexed (``generations.py``), ``<collection>/CURRENT``
naming the live ``gen-NNNNNN/`` directory, each laid out as above.

``Collection.build`` ingests into a temporary sibling directory and renames it into place
only when everything is written, so a failed build leaves nothing half-written (and the
next build removes the directories of builds whose process died).
``Collection.open`` refuses an encoder that does not reproduce the pinned contract.

One writer per collection across processes: opening for writing (the default) takes the
collection's ``LOCK`` (:mod:`ragfleet.index.lock`), and a second writer is refused with
the holder's pid. ``Collection.open(path, read_only=True)`` takes no lock and writes
nothing — it replays each shard's log in memory — so it works beside a writer and on
read-only media; its writes raise :class:`ReadOnlyError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ragfleet.cluster.placement import hash_shard
from ragfleet.cluster.scatter import Scatter, omp_threads_per_shard
from ragfleet.config import CollectionConfig
from ragfleet.embed.base import Encoder
from ragfleet.embed.contract import EmbeddingContract
from ragfleet.embed.registry import load_encoder
from ragfleet.errors import CollectionError, InputError, ReadOnlyError, StorageError
from ragfleet.generations import current_generation
from ragfleet.index.atomic import atomic_write_bytes
from ragfleet.index.dense import set_omp_threads
from ragfleet.index.lock import WriterLock, is_locked
from ragfleet.index.rwlock import RWLock
from ragfleet.index.shard import CheckpointPolicy, Shard, recover_swap, resolve_shard_dir
from ragfleet.index.sparse.analyzer import Analyzer
from ragfleet.search.searcher import Searcher, SearchRequest
from ragfleet.types import Document, Mode, Results
from ragfleet.writer import CancelCheck, DocumentWriter, Embedder, IngestReport

if TYPE_CHECKING:
    from ragfleet.generations import ReindexReport

FORMAT = 1
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class CollectionInfo:
    """What ``collection.json`` holds."""

    config: CollectionConfig
    contract: EmbeddingContract
    created: str

    def to_json(self) -> bytes:
        doc = {
            "format": FORMAT,
            "config": self.config.to_dict(),
            "contract": self.contract.to_dict(),
            "fingerprint": self.contract.fingerprint(),
            "created": self.created,
        }
        return json.dumps(doc, indent=2, ensure_ascii=False).encode("utf-8")

    @classmethod
    def read(cls, path: Path) -> CollectionInfo:
        file = path / "collection.json"
        if not file.is_file():
            raise CollectionError(f"{path} is not a ragfleet collection (no collection.json)")
        try:
            doc = json.loads(file.read_text("utf-8"))
            if doc.get("format") != FORMAT:
                raise CollectionError(f"{file}: unsupported format {doc.get('format')!r}")
            return cls(
                CollectionConfig.from_dict(doc["config"]),
                EmbeddingContract.from_dict(doc["contract"]),
                doc.get("created", ""),
            )
        except (KeyError, ValueError) as e:
            raise CollectionError(f"{file} is corrupt: {e}") from e


class Collection:
    """Ingest, search and maintain one collection in this process."""

    def __init__(
        self,
        path: Path,
        info: CollectionInfo,
        encoder: Encoder,
        durable: bool,
        *,
        root: Path | None = None,
        policy: CheckpointPolicy | None = None,
        lock: WriterLock | None = None,
        owns_lock: bool = True,
    ) -> None:
        self.path = root or path  # what to reopen: the root resolves to its current generation
        self.data_path = path
        self.durable = durable
        self.policy = policy
        self.read_only = lock is None
        self._lock = lock
        self._owns_lock = owns_lock
        self.last_report: IngestReport | None = None  # of the build that made it, if any
        self._swap = RWLock()  # searches read; compaction and reload swap state under write
        self._write_mutex = threading.Lock()  # one writer (upsert, delete, compact) at a time
        self.shards: list[Shard] = []
        self._attach(path, info, encoder)

    def _attach(self, path: Path, info: CollectionInfo, encoder: Encoder) -> None:
        self.info = info
        self.config = info.config
        self.encoder = encoder
        n = self.config.sharding.n_shards
        fingerprint = info.contract.fingerprint()
        dirs = [path / f"shard-{i:03d}" for i in range(n)]
        shards: list[Shard] = []
        try:
            for i, d in enumerate(dirs):
                if self.read_only:
                    d = resolve_shard_dir(d)
                else:
                    recover_swap(d)
                shards.append(
                    Shard(
                        d,
                        i,
                        self.config,
                        encoder.dim,
                        fingerprint,
                        durable=self.durable,
                        policy=self.policy,
                        read_only=self.read_only,
                    )
                )
        except BaseException:
            for shard in shards:
                shard.abandon()
            raise
        self.shards = shards
        set_omp_threads(omp_threads_per_shard(n))
        self._scatter = Scatter(n)
        analyzer = Analyzer(self.config.sparse.analyzer) if self.config.sparse.enabled else None
        self.searcher = Searcher(self.shards, encoder, analyzer, self.config.search, self._scatter)
        self._writer = DocumentWriter(self.shards, encoder, self.config, lambda d: hash_shard(d, n))

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        config: CollectionConfig | None = None,
        *,
        encoder: Encoder | None = None,
        durable: bool = True,
        policy: CheckpointPolicy | None = None,
        _held_lock: WriterLock | None = None,
    ) -> Collection:
        """Create an empty collection at ``path`` (which must not exist or be empty), open
        for writing."""
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise CollectionError(f"{path} already exists; open it, or choose another path")
        config = config or CollectionConfig()
        encoder = encoder or load_encoder(config.encoder.name)
        contract = dataclasses.replace(encoder.contract, chunker=config.chunker.spec)
        contract = contract.with_probes(encoder)
        info = CollectionInfo(config, contract, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        path.mkdir(parents=True, exist_ok=True)
        lock = _held_lock or WriterLock.acquire(path)
        try:
            atomic_write_bytes(path / "collection.json", info.to_json())
            return cls(
                path, info, encoder, durable, policy=policy, lock=lock,
                owns_lock=_held_lock is None,
            )  # fmt: skip
        except BaseException:
            if _held_lock is None:
                lock.release()
            raise

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        encoder: Encoder | None = None,
        durable: bool = True,
        policy: CheckpointPolicy | None = None,
        read_only: bool = False,
        _held_lock: WriterLock | None = None,
    ) -> Collection:
        """Open an existing collection (its current generation); the encoder must reproduce
        its embedding contract.

        Args:
            read_only: take no lock and write nothing (see the module docstring).

        Raises:
            CollectionLockedError: opening for writing while another process writes.
        """
        root = Path(path)
        if not root.is_dir():
            raise CollectionError(f"collection {root} does not exist")
        lock = None if read_only else _held_lock or WriterLock.acquire(root)
        try:
            data = current_generation(root)
            info = CollectionInfo.read(data)
            encoder = encoder or load_encoder(info.config.encoder.name)
            info.contract.verify(encoder)
            return cls(
                data, info, encoder, durable, root=root, policy=policy, lock=lock,
                owns_lock=_held_lock is None,
            )  # fmt: skip
        except BaseException:
            if lock is not None and _held_lock is None:
                lock.release()
            raise

    def reload(self, *, encoder: Encoder | None = None) -> bool:
        """Switch to the collection's current generation if it changed (after a
        ``reindex``): the new generation is opened beside the old one, then swapped in
        between queries — a query runs wholly on the old encoder and index or wholly on the
        new. Returns whether it switched."""
        data = current_generation(self.path)
        if data.resolve() == self.data_path.resolve():
            return False
        info = CollectionInfo.read(data)
        encoder = encoder or load_encoder(info.config.encoder.name)
        info.contract.verify(encoder)
        fresh = Collection(
            data, info, encoder, self.durable, root=self.path, policy=self.policy,
            lock=self._lock, owns_lock=False,
        )  # fmt: skip
        with self._write_mutex, self._swap.write():
            old_shards, old_scatter = self.shards, self._scatter
            self.data_path = data
            self.info, self.config, self.encoder = info, info.config, encoder
            self.shards, self._scatter = fresh.shards, fresh._scatter
            self.searcher, self._writer = fresh.searcher, fresh._writer
        old_scatter.close()
        for s in old_shards:
            s.close()
        return True

    @classmethod
    def build(
        cls,
        path: str | Path,
        docs: Iterable[Document],
        config: CollectionConfig | None = None,
        *,
        encoder: Encoder | None = None,
        progress: Progress | None = None,
        embedder: Embedder | None = None,
        skip_invalid: bool = False,
    ) -> Collection:
        """Create and fill a collection all-or-nothing: built in a temporary sibling
        directory, renamed into place only when complete. The report of the build
        (skipped documents included) is ``last_report`` of the collection returned."""
        path = Path(path)
        if path.exists():
            raise CollectionError(f"{path} already exists; choose another path or delete it")
        remove_dead_builds(path)
        tmp = path.with_name(f".{path.name}.building-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        col: Collection | None = None
        try:
            col = cls.create(tmp, config, encoder=encoder)
            report = col.upsert(
                docs, progress=progress, embedder=embedder, skip_invalid=skip_invalid
            )
            if report.chunks_written == 0:
                raise InputError(
                    "the corpus yielded no chunks: every document was empty "
                    f"({report.skipped_summary() or 'no documents'})"
                )
            col.close()
            os.rename(tmp, path)
        except BaseException:
            if col is not None:
                col.abandon()
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        built = cls.open(path, encoder=col.encoder)
        built.last_report = report
        return built

    def close(self) -> None:
        """Checkpoint every shard whose log holds unflushed batches, close, and release the
        writer lock — all of it even when a checkpoint fails (the StorageError raised then
        says the writes are safe in the log)."""
        with self._write_mutex:
            self._scatter.close()
            errors: list[StorageError] = []
            try:
                for s in self.shards:
                    try:
                        s.close()
                    except StorageError as e:
                        errors.append(e)
            finally:
                self._release_lock()
            if errors:
                raise errors[0]

    def _release_lock(self) -> None:
        if self._lock is not None and self._owns_lock:
            self._lock.release()

    def abandon(self) -> None:
        """Drop the collection as a process killed here would: close the files, write
        nothing, release the lock (crash tests)."""
        self._scatter.close()
        for s in self.shards:
            s.abandon()
        self._release_lock()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            self.close()
        except StorageError:
            if exc is None:
                raise  # else the error that ended the block is the one to report

    # -- writes ---------------------------------------------------------------------------
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
        from ragfleet.compact import compact_collection

        with self._locked_write():
            return compact_collection(self, threshold)

    def reindex(self, encoder_name: str, *, batch_docs: int = 64) -> ReindexReport:
        """Re-embed this collection under ``encoder_name`` into a new generation (see
        :func:`ragfleet.generations.reindex`), under this writer's lock, and switch to it."""
        from ragfleet.generations import reindex

        with self._locked_write():
            lock = cast(WriterLock, self._lock)  # _locked_write checked that it is held
            report = reindex(self.path, encoder_name, batch_docs=batch_docs, lock=lock)
        self.reload()
        return report

    def swap_shard(self, shard: int, staged: Path) -> None:
        """Swap a rebuilt shard directory in, between queries (used by compaction)."""
        with self._swap.write():
            self.shards[shard].swap_in(staged)

    # -- reads ----------------------------------------------------------------------------
    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        mode: Mode | None = None,
        filter: Mapping[str, Any] | str | None = None,
        depth: int | None = None,
        ef_search: int | None = None,
        nprobe: int | None = None,
        unique_docs: bool = False,
        timeout_ms: float | None = None,
    ) -> Results:
        """Search one query. ``mode``: dense, sparse or hybrid (default from the config)."""
        req = SearchRequest(k, mode, depth, filter, ef_search, nprobe, unique_docs, timeout_ms)
        with self._swap.read():
            return self.searcher.search([query], req)[0]

    def search_batch(
        self, queries: Sequence[str], req: SearchRequest | None = None
    ) -> list[Results]:
        """Search many queries at once (one encoder call, one scatter)."""
        with self._swap.read():
            return self.searcher.search(queries, req or SearchRequest())

    def doc_ids(self) -> list[str]:
        """The ids of every live document, sorted."""
        return sorted(d for s in self.shards for d in s.doc_hashes())

    @property
    def generation(self) -> str:
        """Changes on every acknowledged write: ``<contract fingerprint>:<sum of shard seqs>``."""
        return f"{self.info.contract.fingerprint()}:{sum(s.seq for s in self.shards)}"

    def stats(self) -> dict[str, Any]:
        shards = [s.stats() for s in self.shards]
        return {
            "path": str(self.path),
            "encoder": self.encoder.name,
            "fingerprint": self.info.contract.fingerprint(),
            "dim": self.encoder.dim,
            "index": self.config.index.spec,
            "chunker": self.config.chunker.spec,
            "shards": shards,
            "documents": sum(int(str(s["documents"])) for s in shards),
            "chunks": sum(int(str(s["live_chunks"])) for s in shards),
            "created": self.info.created,
            "read_only": self.read_only,
        }


def remove_dead_builds(path: Path) -> list[Path]:
    """Remove the ``.NAME.building-PID`` directories beside ``path`` left by builds whose
    process died (its pid is gone and nothing holds the build's lock)."""
    removed = []
    for tmp in path.parent.glob(f".{path.name}.building-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and (int(pid) == os.getpid() or _pid_alive(int(pid))):
            continue
        if is_locked(tmp):
            continue
        shutil.rmtree(tmp, ignore_errors=True)
        removed.append(tmp)
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
