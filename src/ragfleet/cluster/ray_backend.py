"""The Ray backend: each shard replica is a Ray actor; the coordinator stays in the driver.

* :class:`ShardActor` opens one shard from the collection path (a path every node sees:
  shared storage, or the same disk for a cluster on one machine) and serves the
  :class:`~ragfleet.cluster.client.ShardClient` calls. Replica 0 of a shard is its owner
  when the fleet was opened for writing: the one process that writes that shard's log;
  the others open it read-only and ``refresh`` after each write.
* :class:`RayShardClient` is the ShardClient that calls one actor.
* :func:`deploy` starts ``R`` actors per shard. The replicas of a shard are the bundles of
  one placement group with strategy ``STRICT_SPREAD`` (one replica per node) when the
  cluster has at least ``R`` nodes, ``SPREAD`` (best effort) otherwise. Each actor serves
  up to ``ACTOR_CONCURRENCY`` calls at once on its threads. Actors restart
  forever (``max_restarts=-1``). With ``R > 1`` a call to a dead actor fails at once
  (``max_task_retries=0``) and :class:`~ragfleet.cluster.replicated.ReplicatedShard`
  retries it on another replica — faster than waiting for the restart; with ``R = 1``
  Ray retries it on the restarted actor (``max_task_retries=-1``).

Ray is imported lazily (``pip install 'ragfleet[ray]'``); nothing here runs at import.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ragfleet._optional import require
from ragfleet.cluster.direct import (
    TOKEN_BYTES,
    ChannelError,
    ChannelTimeout,
    DirectClient,
    DirectServer,
)
from ragfleet.cluster.local_ray import cluster_address
from ragfleet.config import CollectionConfig
from ragfleet.errors import ConfigError
from ragfleet.index.docstore import StoredChunk
from ragfleet.index.shard import Shard, ShardQuery, ShardResult
from ragfleet.index.shard_tokens import TokenBlocks
from ragfleet.index.sparse.bm25 import ShardTermStats
from ragfleet.index.writebatch import ChunkRecord

Scores = npt.NDArray[np.float32]

log = logging.getLogger(__name__)

ACTOR_CPUS = 0.01  # actors are I/O- and FAISS-bound; a token share lets many fit a node
# Calls one replica serves at once (a threaded actor): FAISS, BM25 and SQLite release the
# GIL and the shard's read-write lock orders writes, so concurrent searches overlap as they
# do on local shards; one call at a time would queue every client behind the slowest.
ACTOR_CONCURRENCY = 8
READY_TIMEOUT_S = 120.0
# The read calls of a query, sent over the direct channel when the transport is "direct".
DIRECT_METHODS = ("search", "term_stats", "fetch", "token_blocks", "late_scores")
Transport = Literal["direct", "ray"]


class ShardActor:
    """One shard replica inside a Ray worker process (wrapped by ``ray.remote`` in deploy);
    ``path`` is the shard's directory, ``<collection>/shard-NNN``."""

    def __init__(
        self,
        path: str,
        shard_id: int,
        config: dict[str, Any],
        dim: int,
        fingerprint: str,
        owner: bool = False,
        token: bytes | None = None,
    ) -> None:
        cfg = CollectionConfig.from_dict(config)
        self.shard = Shard(Path(path), shard_id, cfg, dim, fingerprint, read_only=not owner)
        self._direct: DirectServer | None = None
        if token is not None:  # the query path's own socket (ragfleet.cluster.direct)
            host = require("ray", "ray").util.get_node_ip_address()
            self._direct = DirectServer(self.shard, DIRECT_METHODS, token, host)

    def endpoint(self) -> tuple[str, int] | None:
        """Where this replica's direct channel listens (None: the Ray transport only)."""
        return None if self._direct is None else self._direct.address

    def search(self, q: ShardQuery) -> ShardResult:
        return self.shard.search(q)

    def apply(self, upserts: Sequence[ChunkRecord], deletes: Sequence[str]) -> int:
        return self.shard.apply(upserts, deletes)

    def doc_hashes(self) -> Mapping[str, str]:
        return dict(self.shard.doc_hashes())

    def live_docs(self, doc_ids: Sequence[str]) -> list[str]:
        return self.shard.live_docs(doc_ids)

    def refresh(self) -> bool:
        return self.shard.refresh()

    def close(self) -> None:
        if self._direct is not None:
            self._direct.close()
        self.shard.close()

    def term_stats(self, terms: Sequence[str]) -> ShardTermStats:
        return self.shard.term_stats(terms)

    def fetch(self, rows: Sequence[int]) -> dict[int, StoredChunk]:
        return self.shard.fetch(rows)

    def stats(self) -> dict[str, object]:
        return self.shard.stats()

    def token_blocks(self, chunk_ids: Sequence[str]) -> TokenBlocks:
        return self.shard.token_blocks(chunk_ids)

    def late_scores(self, q: npt.NDArray[np.float32], chunk_ids: Sequence[str]) -> Scores:
        return self.shard.late_scores(q, chunk_ids)

    def where(self) -> tuple[int, str]:
        """(pid, Ray node id) of this replica: tells a restart and the placement apart."""
        ray = require("ray", "ray")
        return os.getpid(), str(ray.get_runtime_context().get_node_id())


class RayShardClient:
    """A ShardClient that forwards every call to one :class:`ShardActor`: the read calls
    of a query over the actor's direct channel when it has one, the rest through Ray.

    A broken channel is a failed call (:class:`~ragfleet.cluster.direct.ChannelError`):
    the replica set fails over, and the next call asks Ray where the actor listens now
    (a restarted actor has a new port). With ``wait_restart`` (one replica, nothing to
    fail over to) the call is retried once on the restarted actor instead, as Ray's own
    ``max_task_retries=-1`` does for the Ray transport.
    """

    def __init__(
        self, actor: Any, shard_id: int, *, token: bytes | None = None, wait_restart: bool = False
    ) -> None:
        self.actor = actor
        self._shard_id = shard_id
        self._ray = require("ray", "ray")
        self._token = token  # the deployment's direct-channel token; None: Ray calls only
        self._wait_restart = wait_restart
        self._channel: DirectClient | None = None
        self._lock = threading.Lock()

    @property
    def shard_id(self) -> int:
        return self._shard_id

    def _direct(self) -> DirectClient | None:
        with self._lock:
            if self._channel is None and self._token is not None:
                where = self._ray.get(self.actor.endpoint.remote(), timeout=READY_TIMEOUT_S)
                if where is not None:
                    self._channel = DirectClient((str(where[0]), int(where[1])), self._token)
            return self._channel

    def _drop(self, channel: DirectClient) -> None:
        with self._lock:
            if self._channel is channel:
                self._channel = None
        channel.close()

    def _read(self, method: str, *args: object) -> Any:
        attempts = 2 if self._wait_restart else 1  # the second reaches the restarted actor
        for attempt in range(attempts):
            channel = self._direct()
            if channel is None:
                return self._ray.get(getattr(self.actor, method).remote(*args))
            try:
                return channel.call(method, *args)
            except ChannelTimeout:
                raise  # the actor is busy, not gone: resending would run the call twice
            except ChannelError:
                self._drop(channel)
                if attempt + 1 == attempts:
                    raise
        raise AssertionError("unreachable")

    def search(self, q: ShardQuery) -> ShardResult:
        out: ShardResult = self._read("search", q)
        return out

    def term_stats(self, terms: Sequence[str]) -> ShardTermStats:
        out: ShardTermStats = self._read("term_stats", list(terms))
        return out

    def fetch(self, rows: Sequence[int]) -> dict[int, StoredChunk]:
        out: dict[int, StoredChunk] = self._read("fetch", list(rows))
        return out

    def stats(self) -> dict[str, object]:
        out: dict[str, object] = self._ray.get(self.actor.stats.remote())
        return out

    def token_blocks(self, chunk_ids: Sequence[str]) -> TokenBlocks:
        out: TokenBlocks = self._read("token_blocks", list(chunk_ids))
        return out

    def late_scores(self, q: npt.NDArray[np.float32], chunk_ids: Sequence[str]) -> Scores:
        out: Scores = self._read("late_scores", q, list(chunk_ids))
        return out

    def apply(self, upserts: Sequence[ChunkRecord], deletes: Sequence[str] = ()) -> int:
        seq: int = self._ray.get(self.actor.apply.remote(list(upserts), list(deletes)))
        return seq

    def doc_hashes(self) -> Mapping[str, str]:
        out: Mapping[str, str] = self._ray.get(self.actor.doc_hashes.remote())
        return out

    def live_docs(self, doc_ids: Sequence[str]) -> list[str]:
        out: list[str] = self._ray.get(self.actor.live_docs.remote(list(doc_ids)))
        return out

    def refresh(self) -> bool:
        changed: bool = self._ray.get(self.actor.refresh.remote())
        return changed

    def close(self) -> None:
        """Close the actor's shard (a writer checkpoints) before the actor is killed."""
        with self._lock:
            channel, self._channel, self._token = self._channel, None, None
        if channel is not None:
            channel.close()
        self._ray.get(self.actor.close.remote())

    def where(self) -> tuple[int, str]:
        out: tuple[int, str] = self._ray.get(self.actor.where.remote())
        return out


@dataclass
class RayDeployment:
    """The actors of one collection: ``clients[shard][replica]``; :meth:`close` removes them."""

    clients: list[list[RayShardClient]]
    groups: list[Any] = field(default_factory=list)
    owns_connection: bool = False

    def close(self) -> None:
        ray = require("ray", "ray")
        if ray.is_initialized():
            for replicas in self.clients:
                for c in replicas:
                    try:
                        c.close()  # the owner checkpoints its shard
                    except Exception as e:  # a dead actor has nothing to close
                        log.warning("closing shard %d's replica failed: %s", c.shard_id, e)
                    ray.kill(c.actor, no_restart=True)
            for pg in self.groups:
                ray.util.remove_placement_group(pg)
        self.clients, self.groups = [], []
        if self.owns_connection:  # once: a second close releases nothing
            self.owns_connection = False
            _CONNECTION.release()


class _Connection:
    """The Ray connection deployments made: shut down when the last of them closes, so
    that closing one served collection does not disconnect the others before their owners
    checkpoint."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0

    def acquire(self) -> None:
        with self._lock:
            self._users += 1

    def in_use(self) -> bool:
        """Whether a deployment holds the connection this module made."""
        with self._lock:
            return self._users > 0

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            last = self._users == 0
        if last:
            require("ray", "ray").shutdown()


_CONNECTION = _Connection()


def connect(address: str | None) -> bool:
    """Connect this process to a Ray cluster (``address``, else the one ``ragfleet cluster
    up`` recorded); returns whether this call made the connection."""
    ray = require("ray", "ray")
    if ray.is_initialized():
        return False
    ray.init(
        address=cluster_address(address), namespace="ragfleet", logging_level=logging.ERROR,
        log_to_driver=False,
    )  # fmt: skip
    return True


def deploy(
    shard_dirs: Sequence[Path],
    config: CollectionConfig,
    dim: int,
    fingerprint: str,
    *,
    replicas: int,
    address: str | None = None,
    writable: bool = False,
    transport: Transport = "direct",
) -> RayDeployment:
    """Start ``replicas`` :class:`ShardActor` per shard (``shard_dirs``, in shard order);
    with ``writable``, replica 0 of each shard is its owner (it opens the shard for
    writing), the others read. ``transport``: how a query's read calls reach an actor —
    ``"direct"`` (its own socket, :mod:`ragfleet.cluster.direct`) or ``"ray"`` (actor
    calls, for a cluster whose nodes accept only Ray's ports)."""
    if replicas < 1:
        raise ConfigError(f"replicas must be >= 1, got {replicas}")
    if transport not in ("direct", "ray"):
        raise ConfigError(f"transport must be 'direct' or 'ray', got {transport!r}")
    token = secrets.token_bytes(TOKEN_BYTES) if transport == "direct" else None
    ray = require("ray", "ray")
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    owns = connect(address) or _CONNECTION.in_use()
    if owns:
        _CONNECTION.acquire()
    n_nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    strategy = "STRICT_SPREAD" if n_nodes >= replicas else "SPREAD"
    remote = ray.remote(ShardActor)
    restarts = {
        "num_cpus": ACTOR_CPUS,
        "max_concurrency": ACTOR_CONCURRENCY,
        "max_restarts": -1,
        "max_task_retries": 0 if replicas > 1 else -1,
    }
    out = RayDeployment([], [], owns)
    cfg = config.to_dict()
    for s, shard_dir in enumerate(shard_dirs):
        pg = placement_group([{"CPU": ACTOR_CPUS}] * replicas, strategy=strategy)
        out.groups.append(pg)
        actors = [
            remote.options(
                **restarts,
                scheduling_strategy=PlacementGroupSchedulingStrategy(
                    pg, placement_group_bundle_index=r
                ),
            ).remote(str(shard_dir.resolve()), s, cfg, dim, fingerprint, writable and r == 0, token)
            for r in range(replicas)
        ]
        out.clients.append(
            [RayShardClient(a, s, token=token, wait_restart=replicas == 1) for a in actors]
        )
    try:
        ray.get([c.actor.where.remote() for cs in out.clients for c in cs], timeout=READY_TIMEOUT_S)
    except BaseException:
        out.close()
        raise
    return out
