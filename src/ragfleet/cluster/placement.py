"""Placement of documents on shards, and of queries on the shards to search.

A :class:`Placement` is recorded in ``collection.json`` (``sharding.placement``) and is
the one object writes, reshard, reindex and routing ask:

* :class:`HashPlacement` — ``shard(doc_id) = int(blake2b(doc_id)[:8]) mod N``; stable
  across processes and Python versions (unlike ``hash()``); every query goes to every shard.
* :class:`CentroidPlacement` — k-means centroids of the chunk vectors, one per shard
  (``centroids.npy`` in the generation's directory, see :mod:`ragfleet.cluster.kmeans`):
  a document goes to the shard whose centroid is nearest its chunks' mean vector, and a
  query may be sent to its ``probe`` nearest shards only.

Every chunk of a document lands on one shard, so a document is replaced or deleted on one
shard in one write batch. Placement decides where a *new* document goes; a document that
already lives on a shard stays there when it is replaced (the writer looks it up), so a
replacement never spans two shards.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ragfleet.cluster.kmeans import Centroids
from ragfleet.config import ShardingConfig
from ragfleet.errors import CollectionError, ConfigError, InputError


def hash_shard(doc_id: str, n_shards: int) -> int:
    """The shard that holds ``doc_id`` under hash placement over ``n_shards`` shards."""
    if n_shards < 1:
        raise ConfigError(f"n_shards must be >= 1, got {n_shards}")
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % n_shards


class Placement(Protocol):
    """Where documents live and which shards a query searches."""

    @property
    def n_shards(self) -> int: ...

    @property
    def kind(self) -> str: ...

    def shard_of(self, doc_id: str, chunk_vectors: npt.NDArray[np.float32] | None) -> int:
        """The shard of a new document (``chunk_vectors``: its chunks' ``[m, d]`` vectors)."""
        ...

    def route(self, queries: npt.NDArray[np.float32], probe: int | None) -> list[int] | None:
        """The shards ``queries`` are sent to (``None``: all of them)."""
        ...


class HashPlacement:
    """Placement by a hash of the document id (see the module docstring)."""

    kind = "hash"

    def __init__(self, n_shards: int) -> None:
        if n_shards < 1:
            raise ConfigError(f"n_shards must be >= 1, got {n_shards}")
        self._n = n_shards

    @property
    def n_shards(self) -> int:
        return self._n

    def shard_of(self, doc_id: str, chunk_vectors: npt.NDArray[np.float32] | None = None) -> int:
        return hash_shard(doc_id, self._n)

    def route(self, queries: npt.NDArray[np.float32], probe: int | None) -> list[int] | None:
        if probe is not None and probe < self._n:
            raise InputError(
                f"probe_shards={probe} needs centroid placement, and this collection is "
                "placed by hash: reshard it with `ragfleet reshard DIR --placement centroids`"
            )
        return None


class CentroidPlacement:
    """Placement by the nearest of ``centroids`` (see the module docstring)."""

    kind = "centroids"

    def __init__(self, centroids: Centroids) -> None:
        self.centroids = centroids

    @property
    def n_shards(self) -> int:
        return self.centroids.n_shards

    def shard_of(self, doc_id: str, chunk_vectors: npt.NDArray[np.float32] | None) -> int:
        if chunk_vectors is None or len(chunk_vectors) == 0:
            raise InputError(f"centroid placement of {doc_id!r} needs its chunk vectors")
        return self.centroids.shard_of_doc(chunk_vectors)

    def route(self, queries: npt.NDArray[np.float32], probe: int | None) -> list[int] | None:
        if probe is None or probe >= self.n_shards:
            return None
        return self.centroids.shards_for(queries, probe)


def load_placement(sharding: ShardingConfig, generation: Path) -> Placement:
    """The placement ``sharding`` records, its centroids read from ``generation``."""
    if sharding.placement == "hash":
        return HashPlacement(sharding.n_shards)
    if not Centroids.exists(generation):
        raise CollectionError(
            f"{generation} is placed by centroids but has no centroids file; restore it or "
            "reshard the collection"
        )
    centroids = Centroids.load(generation)
    if centroids.n_shards != sharding.n_shards:
        raise CollectionError(
            f"{generation}: {centroids.n_shards} centroids for {sharding.n_shards} shards; "
            "reshard it again"
        )
    return CentroidPlacement(centroids)
