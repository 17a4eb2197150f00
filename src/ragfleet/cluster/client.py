"""The ``ShardClient`` protocol: what the coordinator needs from a shard, wherever it runs.

The in-process :class:`ragfleet.index.shard.Shard` satisfies it directly (the local
backend); a remote backend (a Ray actor, an HTTP peer) implements the same five calls,
and one contract suite runs over every implementation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ragfleet.index.docstore import StoredChunk
from ragfleet.index.shard import ShardQuery, ShardResult
from ragfleet.index.sparse.bm25 import ShardTermStats


@runtime_checkable
class ShardClient(Protocol):
    """One shard as seen by the coordinator (scatter-gather, fetch, stats)."""

    @property
    def shard_id(self) -> int: ...

    def search(self, q: ShardQuery) -> ShardResult:
        """Dense and/or sparse top-``q.k`` of every query in the batch."""
        ...

    def term_stats(self, terms: Sequence[str]) -> ShardTermStats:
        """Live document count, total length and document frequency of ``terms``."""
        ...

    def fetch(self, rows: Sequence[int]) -> dict[int, StoredChunk]:
        """The stored chunks of ``rows``."""
        ...

    def stats(self) -> dict[str, object]:
        """Counts for ``ragfleet stats``."""
        ...
