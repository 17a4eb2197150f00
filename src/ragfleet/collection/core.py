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
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragfleet.cluster.kmeans import Centroids
from ragfleet.cluster.placement import Placement, load_placement
from ragfleet.cluster.scatter import Scatter, omp_threads_per_shard
from ragfleet.collection.build import build
from ragfleet.collection.info import CollectionInfo
from ragfleet.collection.late import query_encoder
from ragfleet.collection.layout import Layout
from ragfleet.collection.sharded import ShardedRetriever
from ragfleet.collection.writer import DocumentWriter, IngestReport
from ragfleet.collection.writes import CollectionWrites
from ragfleet.config import CollectionConfig
from ragfleet.embed.base import Encoder
from ragfleet.embed.registry import encoder_for
from ragfleet.errors import CollectionError, ConfigError, StorageError
from ragfleet.index.dense import set_omp_threads
from ragfleet.index.fdlimit import ensure_open_files
from ragfleet.index.lock import WriterLock
from ragfleet.index.rwlock import RWLock
from ragfleet.index.shard import CheckpointPolicy, Shard, recover_swap, resolve_shard_dir
from ragfleet.index.sparse.analyzer import Analyzer
from ragfleet.index.specs import DenseSpec
from ragfleet.search.searcher import Searcher

if TYPE_CHECKING:
    pass

FORMAT = 1
Progress = Callable[[int, int], None]


class Collection(CollectionWrites, ShardedRetriever):
    """Ingest, search and maintain one collection in this process (a
    :class:`~ragfleet.search.retriever.Retriever`)."""

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
        ensure_open_files(n)
        fingerprint = info.contract.fingerprint()
        dirs = Layout.of(path).shards(n, path)
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
        searcher_encoder = query_encoder(encoder, self.config)  # shares query token vectors
        self.searcher = Searcher(
            self.shards, searcher_encoder, analyzer, self.config.search, self._scatter
        )
        self.placement: Placement = load_placement(self.config.sharding, path)
        self._writer = DocumentWriter(self.shards, encoder, self.config, self.placement)

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
        centroids: Centroids | None = None,
        _held_lock: WriterLock | None = None,
    ) -> Collection:
        """Create an empty collection at ``path`` (which must not exist or be empty), open
        for writing. A collection placed by centroids needs them (``ragfleet reshard``
        fits them on an existing collection's vectors)."""
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise CollectionError(f"{path} already exists; open it, or choose another path")
        config = config or CollectionConfig()
        if (config.sharding.placement == "centroids") != (centroids is not None):
            raise ConfigError(
                "centroid placement needs its centroids (and only it takes them): build the "
                "collection placed by hash, then `ragfleet reshard DIR --placement centroids`"
            )
        encoder = encoder or encoder_for(config.encoder)
        contract = dataclasses.replace(
            encoder.contract,
            chunker=config.chunker.spec,
            precision=vector_precision(config),
            token_vectors=config.tokens.spec,
        )
        contract = contract.with_probes(encoder)
        info = CollectionInfo(config, contract, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        path.mkdir(parents=True, exist_ok=True)
        lock = _held_lock or WriterLock.acquire(path)
        try:
            if centroids is not None:
                centroids.save(path)
            info.write(path)
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
            data = Layout.of(root).current()
            info = CollectionInfo.read(data)
            encoder = encoder or encoder_for(info.config.encoder)
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
        data = Layout.of(self.path).current()
        if data.resolve() == self.data_path.resolve():
            return False
        info = CollectionInfo.read(data)
        encoder = encoder or encoder_for(info.config.encoder)
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

    #: Create and fill a collection all-or-nothing: :func:`ragfleet.collection.build.build`.
    build = classmethod(build)

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

    # -- reads ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.path.name

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        with self._swap.read():
            yield

    def stats(self) -> dict[str, Any]:
        return {"path": str(self.path), **super().stats()}


def vector_precision(config: CollectionConfig) -> str:
    """The precision the collection keeps its vectors at (recorded in its contract):
    ``fp16`` for ``+refine16`` specs, else ``fp32`` (what went into the index)."""
    return "fp16" if DenseSpec.parse(config.index.spec).refine == "fp16" else "fp32"
