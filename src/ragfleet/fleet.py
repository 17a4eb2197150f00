"""A collection served by replicated shards, in this process or on a Ray cluster.

``Fleet.open(path, backend="ray", replicas=2)`` starts two :class:`ShardActor` replicas of
every shard of the collection's live generation (it follows ``CURRENT``) on the cluster;
``backend="local"`` opens the replicas in this process. Each shard's replicas sit behind
one :class:`ReplicatedShard` (least-loaded choice, hedging after the shard's p95,
failover), and the same :class:`Searcher` as the embedded
:class:`~ragfleet.collection.Collection` runs the read path over them — so a fleet answers
exactly what the collection answers; it is a
:class:`~ragfleet.search.retriever.Retriever` like it.

``writable=True`` makes the fleet the collection's one writer (it takes the writer lock):
replica 0 of each shard is that shard's owner, ``upsert``/``delete`` go through
``ShardClient.apply`` to the owners (the Ray actors on a cluster), placed by the
collection's :class:`~ragfleet.cluster.placement.Placement`, and the other replicas
refresh after each write. ``timeout_ms`` bounds the scatter: a shard that has not answered
by then is left out and named in ``Results.missing_shards`` (coverage < 1). A collection
placed by centroids may be searched on its ``probe_shards`` nearest shards only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from ragfleet.cluster.client import ShardClient
from ragfleet.cluster.placement import Placement, load_placement
from ragfleet.cluster.replicated import HedgeConfig, ReplicatedShard
from ragfleet.cluster.scatter import Scatter, omp_threads_per_shard
from ragfleet.collection.info import CollectionInfo
from ragfleet.collection.late import query_encoder
from ragfleet.collection.layout import Layout
from ragfleet.collection.sharded import ShardedRetriever
from ragfleet.collection.writer import DocumentWriter, IngestReport
from ragfleet.embed.base import Encoder
from ragfleet.embed.registry import encoder_for
from ragfleet.errors import ConfigError, ReadOnlyError
from ragfleet.index.dense import set_omp_threads
from ragfleet.index.fdlimit import ensure_open_files
from ragfleet.index.lock import WriterLock
from ragfleet.index.shard import Shard, recover_swap, resolve_shard_dir
from ragfleet.index.sparse.analyzer import Analyzer
from ragfleet.search.searcher import Searcher
from ragfleet.types import Document

if TYPE_CHECKING:
    from ragfleet.cluster.ray_backend import Transport

Backend = Literal["local", "ray"]


class Fleet(ShardedRetriever):
    """Search (and, opened ``writable``, write) over replicated shards; build with
    :meth:`open`."""

    def __init__(
        self,
        shards: Sequence[ReplicatedShard],
        encoder: Encoder,
        info: CollectionInfo,
        placement: Placement,
        *,
        probe_shards: int | None = None,
        on_close: Callable[[], None] | None = None,
        lock: WriterLock | None = None,
        name: str = "fleet",
    ) -> None:
        self.shards = list(shards)
        if [s.shard_id for s in self.shards] != list(range(len(self.shards))):
            raise ConfigError("fleet shards must be given in shard-id order 0..N-1")
        self.encoder = encoder
        self.info = info
        self.config = info.config
        self.placement = placement
        self.read_only = lock is None
        self._lock = lock
        self._on_close = on_close
        self._name = name
        self._closed = False
        placement.route(np.zeros((1, encoder.dim), np.float32), probe_shards)  # validates it
        # threads: every shard may hold a hedge and a stalled call past the deadline
        self._scatter = Scatter(4 * len(self.shards))
        analyzer = Analyzer(self.config.sparse.analyzer) if self.config.sparse.enabled else None

        def router(vectors: npt.NDArray[np.float32]) -> Sequence[int]:
            shards = placement.route(vectors, probe_shards)
            return range(len(self.shards)) if shards is None else shards

        self.searcher = Searcher(
            self.shards, query_encoder(encoder, self.config), analyzer, self.config.search,
            self._scatter,
            router=router if probe_shards is not None else None,
        )  # fmt: skip
        self._writer = DocumentWriter(self.shards, encoder, self.config, placement)
        for s in self.shards:
            s.seq = int(str(s.stats().get("wal_seq", 0)))

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        backend: Backend = "local",
        replicas: int = 1,
        address: str | None = None,
        probe_shards: int | None = None,
        hedge: HedgeConfig | None = None,
        encoder: Encoder | None = None,
        writable: bool = False,
        transport: Transport = "direct",
    ) -> Fleet:
        """Serve the live generation of the collection at ``path`` with ``replicas``
        replicas per shard; ``writable`` takes the collection's writer lock. ``transport``
        (Ray backend): how a query reaches the shard actors — ``"direct"``, their own
        sockets (:mod:`ragfleet.cluster.direct`), or ``"ray"``, actor calls."""
        if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= 16:
            raise ConfigError(f"replicas must be between 1 and 16, got {replicas!r}")
        if backend not in ("local", "ray"):
            raise ConfigError(f"backend must be 'local' or 'ray', got {backend!r}")
        if probe_shards is not None and probe_shards < 1:
            raise ConfigError(f"probe_shards must be >= 1, got {probe_shards}")
        layout = Layout.of(path)
        lock = WriterLock.acquire(layout.root) if writable else None
        try:
            generation = layout.current()
            info = CollectionInfo.read(generation)
            encoder = encoder or encoder_for(info.config.encoder)
            info.contract.verify(encoder)
            placement = load_placement(info.config.sharding, generation)
            dirs = layout.shards(info.config.sharding.n_shards, generation)
            if backend == "local":
                ensure_open_files(len(dirs), replicas)
            groups, close = _deploy(
                backend, dirs, info, encoder.dim, replicas, address, writable, transport
            )
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        shards = [ReplicatedShard(g, hedge) for g in groups]
        return cls(
            shards, encoder, info, placement, probe_shards=probe_shards, on_close=close,
            lock=lock, name=layout.root.name,
        )  # fmt: skip

    @property
    def name(self) -> str:
        return self._name

    # -- writes ---------------------------------------------------------------------------
    def upsert(self, docs: Iterable[Document], **options: Any) -> IngestReport:
        """Insert or replace documents through the shard owners (as
        :meth:`Collection.upsert <ragfleet.collection.Collection.upsert>`)."""
        self._check_writable()
        return self._writer.upsert(docs, **options)

    def delete(self, doc_ids: Sequence[str]) -> int:
        self._check_writable()
        return self._writer.delete(doc_ids)

    def _check_writable(self) -> None:
        if self._lock is None or not self._lock.held():
            raise ReadOnlyError(
                f"fleet {self._name} is open read-only; Fleet.open(..., writable=True) to write"
            )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._scatter.close()
        for s in self.shards:
            s.close()
        try:
            if self._on_close is not None:
                self._on_close()
        finally:
            if self._lock is not None:
                self._lock.release()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _deploy(
    backend: Backend,
    dirs: Sequence[Path],
    info: CollectionInfo,
    dim: int,
    replicas: int,
    address: str | None,
    writable: bool,
    transport: Transport = "direct",
) -> tuple[list[list[ShardClient]], Callable[[], None]]:
    """The replicas of every shard, and how to stop them."""
    fingerprint = info.contract.fingerprint()
    if backend == "ray":
        from ragfleet.cluster.ray_backend import deploy

        dep = deploy(
            dirs, info.config, dim, fingerprint, replicas=replicas, address=address,
            writable=writable, transport=transport,
        )  # fmt: skip
        return [list[ShardClient](g) for g in dep.clients], dep.close
    set_omp_threads(omp_threads_per_shard(len(dirs)))
    groups: list[list[Shard]] = []
    try:
        for i, d in enumerate(dirs):
            group: list[Shard] = []
            groups.append(group)
            for r in range(replicas):
                owner = writable and r == 0
                if owner:
                    recover_swap(d)
                where = d if owner else resolve_shard_dir(d)
                group.append(Shard(where, i, info.config, dim, fingerprint, read_only=not owner))
    except BaseException:
        for shard in (s for g in groups for s in g):
            shard.abandon()
        raise

    def close() -> None:
        for shard in (s for g in groups for s in g):
            shard.close()

    return [list[ShardClient](g) for g in groups], close
