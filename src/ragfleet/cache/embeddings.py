"""The embedding cache: (text or content hash, contract fingerprint, kind) → float32 vector.

Queries are keyed by their exact text, document chunks by the content hash of what is
embedded; the key (:func:`~ragfleet.cache.keys.embedding_key`) also carries the encoder's
contract fingerprint, so a model upgrade misses instead of mixing vector spaces. Values are
the vector's raw little-endian float32 bytes (``4·d`` bytes, no pickle); an entry of the
wrong length is refused as corrupt (a miss, counted as an error).

Bulk ingest calls :func:`embed_with_cache` with the chunks' content hashes: only the
misses reach the encoder, in one call, and are stored for the next run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from ragfleet.cache.base import CacheBackend
from ragfleet.cache.guard import GuardedCache
from ragfleet.cache.keys import embedding_key
from ragfleet.cache.metrics import CacheMetrics
from ragfleet.errors import ConfigError, DimensionError, InputError
from ragfleet.types import EncodeKind

Vector = npt.NDArray[np.float32]
Vectors = npt.NDArray[np.float32]


class EmbeddingCache:
    """Vectors of one kind and dimension in any :class:`CacheBackend`.

    Args:
        backend: where vectors live (memory, Redis, tiered).
        dim: the vector dimension ``d``; entries of another length are refused.
        kind: ``"query"`` (keyed by text) or ``"document"`` (keyed by content hash).
        metrics: outcomes are recorded as ``f"embeddings:{kind}"`` (a fresh one if None).
        ttl_s: TTL of stored vectors (``None``: the backend's default).
    """

    def __init__(
        self,
        backend: CacheBackend,
        dim: int,
        *,
        kind: EncodeKind = "document",
        metrics: CacheMetrics | None = None,
        ttl_s: float | None = None,
    ) -> None:
        if dim <= 0:
            raise ConfigError(f"EmbeddingCache dim must be > 0, got {dim}")
        self.dim, self.kind = dim, kind
        self.metrics = metrics or CacheMetrics()
        self._cache = GuardedCache(backend, f"embeddings:{kind}", self.metrics, ttl_s)

    def get_many(self, ids: Sequence[str], fingerprint: str) -> list[Vector | None]:
        """The cached vector of each id (text or content hash), ``None`` where missing."""
        keys = [embedding_key(i, fingerprint, self.kind) for i in ids]
        return [self._cache.lookup(key, self._decode) for key in keys]

    def put_many(self, ids: Sequence[str], fingerprint: str, vectors: npt.ArrayLike) -> None:
        """Store ``vectors[i]`` (float32 ``[len(ids), d]``) under ``ids[i]``."""
        rows = np.asarray(vectors, dtype="<f4")
        if rows.ndim != 2 or rows.shape != (len(ids), self.dim):
            raise DimensionError(
                f"put_many needs vectors of shape ({len(ids)}, {self.dim}), got {rows.shape}"
            )
        for i, row in zip(ids, rows, strict=True):
            self._cache.store(embedding_key(i, fingerprint, self.kind), row.tobytes)

    def _decode(self, data: bytes) -> Vector:
        if len(data) != 4 * self.dim:
            raise InputError(f"cached vector has {len(data)} bytes, expected 4·{self.dim}")
        return np.frombuffer(data, dtype="<f4").astype(np.float32)


def embed_with_cache(
    cache: EmbeddingCache,
    ids: Sequence[str],
    texts: Sequence[str],
    fingerprint: str,
    embed: Callable[[list[str]], Vectors],
) -> Vectors:
    """Vectors of ``texts`` in order: cached ones by ``ids``, the rest from one ``embed`` call.

    Args:
        cache: the embedding cache.
        ids: one key per text: the text itself (queries) or its content hash (chunks).
        texts: what ``embed`` gets for the misses.
        fingerprint: the encoder's contract fingerprint.
        embed: ``texts -> float32 [n, d]``, e.g. ``lambda ts: encoder.encode(ts, "query")``.

    Returns:
        float32 ``[len(texts), d]``, C-contiguous.
    """
    if len(ids) != len(texts):
        raise InputError(f"embed_with_cache got {len(ids)} ids for {len(texts)} texts")
    out = np.empty((len(texts), cache.dim), dtype=np.float32)
    found = cache.get_many(ids, fingerprint)
    todo = [i for i, v in enumerate(found) if v is None]
    for i, v in enumerate(found):
        if v is not None:
            out[i] = v
    if todo:
        fresh = np.asarray(embed([texts[i] for i in todo]), dtype=np.float32)
        if fresh.shape != (len(todo), cache.dim):
            raise DimensionError(
                f"embed returned shape {fresh.shape} for {len(todo)} texts of dim {cache.dim}"
            )
        out[todo] = fresh
        cache.put_many([ids[i] for i in todo], fingerprint, fresh)
    return out
