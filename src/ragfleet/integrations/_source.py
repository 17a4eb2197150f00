"""What a retriever adapter searches: a :class:`~ragfleet.client.Client` (with a collection
name) or anything with ``search(query, k=, mode=) -> Results`` (a ``Collection``)."""

from __future__ import annotations

from typing import Any

from ragfleet.errors import InputError
from ragfleet.types import Hit, Results


def search(source: Any, collection: str | None, query: str, k: int, mode: Any) -> Results:
    from ragfleet.client import Client

    if isinstance(source, Client):
        if not collection:
            raise InputError("a retriever over a Client needs collection='NAME'")
        return source.search(collection, query, k=k, mode=mode)
    out: Results = source.search(query, k=k, mode=mode)
    return out


def metadata(hit: Hit) -> dict[str, Any]:
    """The hit's own metadata plus where it came from and how it scored."""
    return {
        **dict(hit.metadata),
        "doc_id": hit.doc_id, "chunk_id": hit.chunk_id, "title": hit.title, "rank": hit.rank,
        "score": hit.score, "scores": dict(hit.scores),
    }  # fmt: skip
