"""A collection served by replicated shards, in this process or on a Ray cluster.

``Fleet.open(path, backend="ray", replicas=2)`` starts two :class:`ShardActor` replicas of
every shard on the cluster; ``backend="local"`` opens the replicas in this process. Each
shard's replicas sit behind one :class:`ReplicatedShard` (least-loaded choice, hedging
after the shard's p95, failover), and the same :class:`Searcher` as the embedded
:class:`~ragfleet.collection.Collection` runs the read path over them — so a fleet answers
exactly what the collection answers. ``timeout_ms`` bounds the scatter: a shard that has
not answered by then is left out and named in ``Results.missing_shards`` (coverage < 1).
A collection resharded by centroids (``centroids.npy`` beside it) may be searched on its
``probe_shards`` nearest shards only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from ragfleet.cluster.client import ShardClient
from ragfleet.cluster.kmeans import Centroids
from ragfleet.cluster.replicated import HedgeConfig, ReplicatedShard
from ragfleet.cluster.scatter import Scatter, omp_threads_per_shard
from ragfleet.collection import CollectionInfo
from ragfleet.config import CollectionConfig
from ragfleet.embed.base import Encoder
from ragfleet.embed.registry import load_encoder
from ragfleet.errors import CollectionError, ConfigError
from ragfleet.index.dense import set_omp_threads
from ragfleet.index.shard import Shard, resolve_shard_dir
from ragfleet.index.sparse.analyzer import Analyzer
from ragfleet.search.searcher import Router, Searcher, SearchRequest
from ragfleet.types import Mode, Results

Backend = Literal["local", "ray"]


class Fleet:
    """Search over replicated shards; build with :meth:`open` (or from your own clients)."""

    def __init__(
        self,
        shards: Sequence[ReplicatedShard],
        encoder: Encoder,
        config: CollectionConfig,
        *,
        router: Router | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.shards = list(shards)
        if [s.shard_id for s in self.shards] != list(range(len(self.shards))):
            raise ConfigError("fleet shards must be given in shard-id order 0..N-1")
        self.encoder = encoder
        self.config = config
        self._on_close = on_close
        # threads: every shard may hold a hedge and a stalled call past the deadline
        self._scatter = Scatter(4 * len(self.shards))
        analyzer = Analyzer(config.sparse.analyzer) if config.sparse.enabled else None
        self.searcher = Searcher(
            self.shards, encoder, analyzer, config.search, self._scatter, router=router
        )

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
    ) -> Fleet:
        """Serve the collection at ``path`` with ``replicas`` replicas per shard."""
        path = Path(path)
        if replicas < 1:
            raise ConfigError(f"replicas must be >= 1, got {replicas}")
        info = CollectionInfo.read(path)
        encoder = encoder or load_encoder(info.config.encoder.name)
        info.contract.verify(encoder)
        fingerprint = info.contract.fingerprint()
        n = info.config.sharding.n_shards
        router = _router(path, n, probe_shards)
        if backend == "local":
            set_omp_threads(omp_threads_per_shard(n))
            groups: list[list[ShardClient]] = [
                [
                    _local_shard(path, s, info.config, encoder.dim, fingerprint)
                    for _ in range(replicas)
                ]
                for s in range(n)
            ]
            close = _closer([r for g in groups for r in g])
        elif backend == "ray":
            from ragfleet.cluster.ray_backend import deploy

            dep = deploy(
                path, info.config, encoder.dim, fingerprint, replicas=replicas, address=address
            )
            groups, close = [list[ShardClient](g) for g in dep.clients], dep.close
        else:
            raise ConfigError(f"backend must be 'local' or 'ray', got {backend!r}")
        shards = [ReplicatedShard(g, hedge) for g in groups]
        return cls(shards, encoder, info.config, router=router, on_close=close)

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
        """Search one query (same parameters as :meth:`Collection.search`)."""
        req = SearchRequest(k, mode, depth, filter, ef_search, nprobe, unique_docs, timeout_ms)
        return self.searcher.search([query], req)[0]

    def search_batch(
        self, queries: Sequence[str], req: SearchRequest | None = None
    ) -> list[Results]:
        """Search many queries at once (one encoder call, one scatter)."""
        return self.searcher.search(queries, req or SearchRequest())

    def stats(self) -> dict[str, Any]:
        return {"shards": [s.stats() for s in self.shards]}

    def close(self) -> None:
        self._scatter.close()
        for s in self.shards:
            s.close()
        if self._on_close is not None:
            self._on_close()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _local_shard(
    path: Path, shard_id: int, config: CollectionConfig, dim: int, fingerprint: str
) -> ShardClient:
    d = resolve_shard_dir(path / f"shard-{shard_id:03d}")
    return Shard(d, shard_id, config, dim, fingerprint, read_only=True)


def _closer(clients: Sequence[ShardClient]) -> Callable[[], None]:
    def close() -> None:
        for c in clients:
            if isinstance(c, Shard):
                c.close()

    return close


def _router(path: Path, n_shards: int, probe_shards: int | None) -> Router | None:
    """Centroid routing to ``probe_shards`` shards, or ``None`` (every shard)."""
    if probe_shards is None or probe_shards >= n_shards:
        return None
    if not Centroids.exists(path):
        raise CollectionError(
            f"{path} has no centroids, so probe_shards cannot route; reshard it with "
            "ragfleet.cluster.reshard.reshard_by_centroids or drop probe_shards"
        )
    centroids = Centroids.load(path)
    if centroids.n_shards != n_shards:
        raise CollectionError(
            f"{path}: {centroids.n_shards} centroids for {n_shards} shards; reshard it again"
        )
    return lambda vectors: centroids.shards_for(vectors, probe_shards)
