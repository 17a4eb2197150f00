"""What a :class:`~ragfleet.collection.Collection` and a :class:`~ragfleet.fleet.Fleet`
share: a generation's shards behind one :class:`~ragfleet.search.searcher.Searcher`,
exposed as a :class:`~ragfleet.search.retriever.Retriever` with the same stats."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ragfleet.collection.late import LateInteraction
from ragfleet.search.request import SearchRequest
from ragfleet.search.retriever import RetrieverBase
from ragfleet.types import Results

if TYPE_CHECKING:
    from ragfleet.cluster.placement import Placement
    from ragfleet.collection.info import CollectionInfo
    from ragfleet.config import CollectionConfig, SearchConfig
    from ragfleet.embed.base import Encoder
    from ragfleet.search.searcher import Searcher


class ShardedRetriever(LateInteraction, RetrieverBase):
    """A Retriever over the shards of one generation (see the module docstring)."""

    info: CollectionInfo
    config: CollectionConfig
    encoder: Encoder
    searcher: Searcher
    placement: Placement
    read_only: bool
    shards: Sequence[Any]  # ShardClients with a ``seq`` (Shard, ReplicatedShard)

    @property
    def name(self) -> str:
        raise NotImplementedError

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Held around every search (a Collection swaps shards under it)."""
        yield

    def search_batch(
        self, queries: Sequence[str], req: SearchRequest | None = None
    ) -> list[Results]:
        """Search many queries at once (one encoder call, one scatter); ``search(query,
        k=…, mode=…, filter=…)`` for one (fields of :class:`SearchRequest`)."""
        with self._reading():
            return self.searcher.search(queries, req or SearchRequest())

    @property
    def defaults(self) -> SearchConfig:
        return self.config.search

    @property
    def identity(self) -> str:
        return f"{self.name}@{self.info.created}"

    @property
    def generation(self) -> str:
        """Changes on every acknowledged write: ``<contract fingerprint>:<sum of shard seqs>``."""
        return f"{self.info.contract.fingerprint()}:{sum(s.seq for s in self.shards)}"

    def doc_ids(self) -> list[str]:
        """The ids of every live document, sorted."""
        return sorted(d for s in self.shards for d in s.doc_hashes())

    def stats(self) -> dict[str, Any]:
        """Documents, chunks, per-shard counts, the model and the index."""
        shards = [s.stats() for s in self.shards]
        return {
            "encoder": self.encoder.name,
            "fingerprint": self.info.contract.fingerprint(),
            "dim": self.encoder.dim,
            "precision": self.info.contract.precision,
            "truncate_dim": self.info.contract.truncate_dim or None,
            "index": self.config.index.spec,
            "chunker": self.config.chunker.spec,
            "placement": self.placement.kind,
            "shards": shards,
            "documents": sum(int(str(s["documents"])) for s in shards),
            "chunks": sum(int(str(s["live_chunks"])) for s in shards),
            "created": self.info.created,
            "read_only": self.read_only,
            "search": dataclasses.asdict(self.config.search),
            "token_vectors": self.token_vector_stats(shards),
        }
