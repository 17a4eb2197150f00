"""The ``ShardClient`` protocol: what the coordinator needs from a shard, wherever it runs.

The in-process :class:`ragfleet.index.shard.Shard` satisfies it directly (the local
backend); :class:`~ragfleet.cluster.ray_backend.RayShardClient` forwards each call to a
Ray actor; :class:`~ragfleet.cluster.replicated.ReplicatedShard` spreads reads over
replicas and sends writes to the shard's owner. Writes go through ``apply``, so on a
cluster they reach the shard's owner — one writer per shard. One behavioural contract
suite (``tests/contract/test_shard_client_contract.py``) runs over every implementation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ragfleet.index.docstore import StoredChunk
from ragfleet.index.shard_query import ShardQuery, ShardResult
from ragfleet.index.shard_tokens import TokenBlocks
from ragfleet.index.sparse.bm25 import ShardTermStats
from ragfleet.index.writebatch import ChunkRecord


@runtime_checkable
class ShardClient(Protocol):
    """One shard as seen by the coordinator (scatter-gather, fetch, writes, stats)."""

    @property
    def shard_id(self) -> int: ...

    def search(self, q: ShardQuery) -> ShardResult:
        """Dense and/or sparse top-``q.k`` of every query in the batch."""
        ...

    def term_stats(self, terms: Sequence[str]) -> ShardTermStats:
        """Live document count, total length and document frequency of ``terms``."""
        ...

    def fetch(self, rows: Sequence[int]) -> dict[int, StoredChunk]:
        """The live stored chunks of ``rows`` (tombstoned or unknown rows are absent)."""
        ...

    def apply(self, upserts: Sequence[ChunkRecord], deletes: Sequence[str] = ()) -> int:
        """Durably apply one write batch (each upserted document replaces its old chunks);
        returns its sequence number once it is acknowledged."""
        ...

    def doc_hashes(self) -> Mapping[str, str]:
        """doc_id → document hash of every live document."""
        ...

    def live_docs(self, doc_ids: Sequence[str]) -> list[str]:
        """Those of ``doc_ids`` that have a live version on this shard."""
        ...

    def refresh(self) -> bool:
        """A read-only replica catches up with the shard's owner (after its writes);
        returns whether anything changed. The owner itself has nothing to do."""
        ...

    def token_blocks(self, chunk_ids: Sequence[str]) -> TokenBlocks:
        """The packed token vectors of the live chunks among ``chunk_ids`` (late
        interaction; InputError on a shard that stores none)."""
        ...

    def late_scores(
        self, q: npt.NDArray[np.float32], chunk_ids: Sequence[str]
    ) -> npt.NDArray[np.float32]:
        """MaxSim of query token vectors ``q`` against each chunk's stored token vectors,
        computed on the shard; NaN for a chunk not live there."""
        ...

    def stats(self) -> dict[str, object]:
        """Counts for ``ragfleet stats`` (rows, live chunks, documents, log position…)."""
        ...
