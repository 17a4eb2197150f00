"""A semantic cache: reuse the results of a cached query whose embedding is close enough.

A new query vector ``q`` reuses cached query ``c*`` when

    cos(q, c*) = q·c* / (‖q‖ ‖c*‖) >= τ,   c* = argmax_c cos(q, c),

searched exactly with a FAISS ``IndexFlatIP`` over L2-normalised vectors (inner product of
unit vectors = cosine). The idea follows GPTCache (F. Bang, "GPTCache: An Open-Source
Semantic Cache for LLM Applications Enabling Faster Answers and Cost Savings", NLP-OSS 2023).
A semantic hit is an approximation — two queries above τ may still want different answers —
so callers keep it off by default and report the matched query and cosine.

Entries belong to one collection generation. A lookup or add with a newer generation drops
every entry (a write may have changed any answer); one with an older generation is a stale
caller and is ignored. Integer generations are ordered; an opaque string generation (such
as ``Collection.generation``) cannot be ordered, so any different one counts as newer: a
stale caller then empties the cache (a lost hit, never a stale answer).

When full, the oldest ``ceil(max_entries / 10)`` entries are evicted (FIFO) and the flat
index rebuilt, so the O(n·d) rebuild is paid once per tenth of capacity.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ragfleet._optional import require
from ragfleet.errors import ConfigError, DimensionError, InputError

Generation = int | str


@dataclass(frozen=True, slots=True)
class SemanticMatch:
    """A cached query close enough to the asked one: its text, cosine and result key."""

    query_text: str
    cosine: float
    key: str


class SemanticCache:
    """Nearest cached query by cosine, per generation, FIFO-bounded, thread-safe.

    Args:
        dim: embedding dimension ``d``.
        threshold: ``τ`` in ``(0, 1]``; a lookup matches when ``cos >= τ``.
        max_entries: capacity; eviction drops the oldest ``ceil(max_entries / 10)``.
    """

    def __init__(self, dim: int, threshold: float = 0.95, max_entries: int = 10_000) -> None:
        if dim <= 0 or max_entries <= 0:
            raise ConfigError(f"dim and max_entries must be > 0, got {dim} and {max_entries}")
        if not 0.0 < threshold <= 1.0:
            raise ConfigError(f"semantic cache threshold must be in (0, 1], got {threshold}")
        self.dim, self.threshold, self.max_entries = dim, threshold, max_entries
        self._index: Any = require("faiss", "index").IndexFlatIP(dim)
        self._vectors = np.empty((max_entries, dim), dtype=np.float32)  # FIFO order
        self._texts: list[str] = []
        self._keys: list[str] = []
        self._keyset: set[str] = set()
        self._generation: Generation | None = None
        self._lock = threading.Lock()

    @property
    def generation(self) -> Generation | None:
        """The generation the held entries belong to (``None`` before the first call)."""
        with self._lock:
            return self._generation

    def __len__(self) -> int:
        with self._lock:
            return len(self._keys)

    def lookup(self, vector: npt.ArrayLike, generation: Generation) -> SemanticMatch | None:
        """The nearest cached query of ``generation`` with ``cos >= threshold``, else None."""
        q = self._unit(vector)
        with self._lock:
            if not self._enter(generation) or not self._keys:
                return None
            scores, ids = self._index.search(q, 1)
            cosine, i = float(scores[0, 0]), int(ids[0, 0])
            if i < 0 or cosine < self.threshold:
                return None
            return SemanticMatch(self._texts[i], min(cosine, 1.0), self._keys[i])

    def add(self, vector: npt.ArrayLike, query_text: str, key: str, generation: Generation) -> bool:
        """Remember that ``query_text`` (embedded as ``vector``) is cached under ``key``.

        Returns:
            True if stored; False if ``key`` is already held or ``generation`` is stale.
        """
        q = self._unit(vector)
        with self._lock:
            if not self._enter(generation) or key in self._keyset:
                return False
            if len(self._keys) == self.max_entries:
                self._evict(math.ceil(self.max_entries / 10))
            self._vectors[len(self._keys)] = q[0]
            self._texts.append(query_text)
            self._keys.append(key)
            self._keyset.add(key)
            self._index.add(q)
            return True

    def clear(self) -> None:
        """Drop every entry (the generation is kept)."""
        with self._lock:
            self._reset()

    def _enter(self, generation: Generation) -> bool:
        """Accept ``generation``: newer resets the cache, older is refused (caller holds lock)."""
        if self._generation is None or _newer(generation, self._generation):
            self._reset()
            self._generation = generation
        return generation == self._generation

    def _reset(self) -> None:
        self._index.reset()
        self._texts.clear()
        self._keys.clear()
        self._keyset.clear()

    def _evict(self, n: int) -> None:
        """Drop the ``n`` oldest entries and rebuild the flat index (caller holds lock)."""
        kept = len(self._keys) - n
        self._vectors[:kept] = self._vectors[n : n + kept]
        self._keyset.difference_update(self._keys[:n])
        del self._texts[:n]
        del self._keys[:n]
        self._index.reset()
        if kept:
            self._index.add(self._vectors[:kept])

    def _unit(self, vector: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """``vector / ‖vector‖`` as a float32 row ``[1, d]``; rejects zero or non-finite."""
        v = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        if v.shape[1] != self.dim:
            raise DimensionError(f"query vector has dimension {v.shape[1]}, cache has {self.dim}")
        norm = float(np.linalg.norm(v))
        if not math.isfinite(norm) or norm == 0.0:
            raise InputError("query vector must be finite and non-zero to take its cosine")
        return np.ascontiguousarray(v / norm, dtype=np.float32)


def _newer(generation: Generation, held: Generation) -> bool:
    """``generation > held`` for two ints; ``generation != held`` otherwise (unordered)."""
    if isinstance(generation, int) and isinstance(held, int):
        return generation > held
    return generation != held
