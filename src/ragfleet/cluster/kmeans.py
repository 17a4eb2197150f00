"""Centroid-routed placement: one k-means centroid per shard.

k-means (Lloyd 1982, as run by ``faiss.Kmeans``; spherical for inner product, i.e. the
centroids are renormalised to unit length after every step — Dhillon & Modha 2001) over a
sample of chunk vectors gives ``N`` centroids ``c_1..c_N``, one per shard.

* A **document** goes to the shard of the centroid nearest to the mean of its chunk
  vectors, ``shard(doc) = argmax_s <mean_i v_i, c_s>`` (``argmin_s ||mean - c_s||²`` for
  l2), so all chunks of a document stay together and a document is replaced on one shard.
* A **query** ``q`` is sent to the ``probe`` shards whose centroids score highest against
  it — the IVF idea (Jégou et al. 2011) applied to shards. With ``probe = N`` every shard
  is searched, and the answer equals the unsharded one.

Persisted beside the collection as ``centroids.npy`` (float32 ``[N, d]``) and
``centroids.json`` (metric, seed, sample size); no pickle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from ragfleet._optional import require
from ragfleet.errors import CollectionError, ConfigError, DimensionError, InputError
from ragfleet.index.atomic import atomic_write_bytes

Metric = Literal["ip", "l2"]
VECTORS_FILE = "centroids.npy"
META_FILE = "centroids.json"


@dataclass(frozen=True)
class Centroids:
    """``vectors[s]`` is the centroid of shard ``s``."""

    vectors: npt.NDArray[np.float32]
    metric: Metric = "ip"
    seed: int = 0
    sample_size: int = 0

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or len(self.vectors) < 1:
            raise ConfigError(
                f"centroids must be a non-empty [N, d] matrix, got {self.vectors.shape}"
            )
        if self.metric not in ("ip", "l2"):
            raise ConfigError(f"metric must be 'ip' or 'l2', got {self.metric!r}")

    @property
    def n_shards(self) -> int:
        return int(self.vectors.shape[0])

    def scores(self, x: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """``[n, N]`` closeness of every row of ``x`` to every centroid (higher = nearer):
        ``<x, c>`` for ip, ``-||x - c||²`` for l2."""
        m = np.asarray(x, dtype=np.float32)
        if m.ndim != 2 or m.shape[1] != self.vectors.shape[1]:
            raise DimensionError(
                f"expected vectors of shape [n, {self.vectors.shape[1]}], got {m.shape}"
            )
        ip = m @ self.vectors.T
        if self.metric == "ip":
            return ip
        sq: npt.NDArray[np.float32] = (
            2 * ip - (m * m).sum(1, keepdims=True) - (self.vectors**2).sum(1)[None, :]
        )
        return sq

    def shard_of_doc(self, chunk_vectors: npt.ArrayLike) -> int:
        """The shard of a document: nearest centroid to its chunks' mean vector."""
        m = np.asarray(chunk_vectors, dtype=np.float32)
        if m.ndim != 2 or len(m) == 0:
            raise InputError(f"a document needs a [n_chunks >= 1, d] matrix, got {m.shape}")
        return int(np.argmax(self.scores(m.mean(0, keepdims=True))[0]))

    def place(self, docs: Mapping[str, npt.ArrayLike]) -> dict[str, int]:
        """doc_id → shard for every document (``docs``: doc_id → its chunk vectors)."""
        return {doc_id: self.shard_of_doc(v) for doc_id, v in docs.items()}

    def route(self, queries: npt.ArrayLike, probe: int) -> npt.NDArray[np.int64]:
        """``[nq, probe]`` shard ids per query, nearest centroid first (ties by shard id)."""
        if not 1 <= probe <= self.n_shards:
            raise InputError(f"probe_shards must be in [1, {self.n_shards}], got {probe}")
        s = self.scores(queries)
        ids = np.broadcast_to(np.arange(self.n_shards), s.shape)
        order = np.lexsort((ids, -s), axis=1)
        return order[:, :probe].astype(np.int64)

    def shards_for(self, queries: npt.ArrayLike, probe: int) -> list[int]:
        """The union of every query's ``probe`` nearest shards, sorted (one scatter)."""
        return sorted({int(s) for s in self.route(queries, probe).ravel()})

    # -- persistence ----------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        meta = {"metric": self.metric, "seed": self.seed, "sample_size": self.sample_size}
        np.save(directory / VECTORS_FILE, self.vectors, allow_pickle=False)
        atomic_write_bytes(directory / META_FILE, json.dumps(meta, indent=2).encode("utf-8"))

    @classmethod
    def load(cls, directory: Path) -> Centroids:
        try:
            meta = json.loads((directory / META_FILE).read_text("utf-8"))
            vectors = np.load(directory / VECTORS_FILE, allow_pickle=False)
            return cls(
                vectors.astype(np.float32), meta["metric"], meta["seed"], meta["sample_size"]
            )
        except (OSError, KeyError, ValueError) as e:
            raise CollectionError(
                f"{directory} has no readable centroids ({e}); reshard it with centroid placement"
            ) from e

    @staticmethod
    def exists(directory: Path) -> bool:
        return (directory / VECTORS_FILE).is_file()


def fit_centroids(
    sample: npt.ArrayLike,
    n_shards: int,
    *,
    metric: Metric = "ip",
    niter: int = 25,
    seed: int = 0,
) -> Centroids:
    """k-means over ``sample`` (``[n, d]``, ``n >= n_shards``) → one centroid per shard."""
    x = np.ascontiguousarray(sample, dtype=np.float32)
    if x.ndim != 2:
        raise InputError(f"the sample must be an [n, d] matrix, got shape {x.shape}")
    if n_shards < 1 or len(x) < n_shards:
        raise InputError(
            f"k-means needs 1 <= n_shards <= sample size, got n_shards={n_shards} "
            f"and {len(x)} sample vectors; sample more vectors or use fewer shards"
        )
    if n_shards == 1:
        mean = x.mean(0, keepdims=True)
        return Centroids(mean.astype(np.float32), metric, seed, len(x))
    faiss = require("faiss", "index")
    km = faiss.Kmeans(
        x.shape[1], n_shards, niter=niter, seed=seed, spherical=metric == "ip", verbose=False
    )
    km.min_points_per_centroid = 1
    km.train(x)
    return Centroids(np.asarray(km.centroids, dtype=np.float32), metric, seed, len(x))


def sample_rows(n: int, size: int, seed: int = 0) -> npt.NDArray[np.int64]:
    """``min(n, size)`` distinct row numbers in ``[0, n)``, sorted, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(n, size), replace=False)).astype(np.int64)
