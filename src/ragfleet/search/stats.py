"""Collection-wide BM25 term statistics, merged from every shard.

A coordinator does Elasticsearch's ``dfs_query_then_fetch``: it asks every shard for
``stats_for(query_terms)`` (a :class:`ShardTermStats`), merges them here, and searches every
shard with the same ``idf`` and ``avgdl``, so a document's BM25 score does not depend on
which shard holds it, nor on how many shards there are::

    N      = Σ_s N_s                  df(t) = Σ_s df_s(t)
    avgdl  = Σ_s total_len_s / N      idf(t) = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))

(the idf is Lucene's, :func:`ragfleet.index.sparse.bm25.bm25_idf`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from ragfleet.errors import InputError
from ragfleet.index.sparse.bm25 import ShardTermStats, bm25_idf

__all__ = ["CollectionStats", "ShardTermStats", "global_idf"]


@dataclass(frozen=True)
class CollectionStats:
    """Statistics of the whole collection for the terms the shards were asked about.

    ``n_docs``: live documents (rows) in all shards; ``total_len``: their summed lengths;
    ``df``: live rows holding each term, over all shards.
    """

    n_docs: int
    total_len: int
    df: Mapping[str, int]

    @classmethod
    def merge(cls, shards: Sequence[ShardTermStats]) -> CollectionStats:
        """Sum the shards' statistics; every shard must report the same terms."""
        if not shards:
            raise InputError("merge needs the statistics of at least one shard")
        terms = set(shards[0].df)
        for i, s in enumerate(shards):
            if set(s.df) != terms:
                raise InputError(
                    f"shard statistics #{i} cover terms {sorted(set(s.df) ^ terms)} that "
                    "shard #0 does not (or vice versa); ask every shard for the same terms"
                )
        df = {t: sum(s.df[t] for s in shards) for t in shards[0].df}
        return cls(
            n_docs=sum(s.n_docs for s in shards),
            total_len=sum(s.total_len for s in shards),
            df=MappingProxyType(df),
        )

    @property
    def avgdl(self) -> float:
        """Mean live row length; 1.0 for a collection without terms, where no row can
        match and any positive value gives the same (empty) result."""
        return self.total_len / self.n_docs if self.total_len > 0 else 1.0

    def idf(self, term: str) -> float:
        """Lucene's BM25 idf of ``term`` over the collection."""
        try:
            df = self.df[term]
        except KeyError as e:
            raise InputError(
                f"term {term!r} was not in the shards' statistics; include it in stats_for"
            ) from e
        return bm25_idf(self.n_docs, df)

    def idf_map(self, terms: Iterable[str]) -> dict[str, float]:
        """``{term: idf(term)}`` for each distinct term, as ``BM25Index.search`` takes."""
        return {t: self.idf(t) for t in dict.fromkeys(terms)}


def global_idf(shards: Sequence[ShardTermStats], terms: Iterable[str]) -> dict[str, float]:
    """The collection-wide idf of ``terms`` from every shard's statistics."""
    return CollectionStats.merge(shards).idf_map(terms)
