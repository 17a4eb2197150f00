"""A LlamaIndex retriever over ragfleet (needs ``pip install 'ragfleet[llamaindex]'``).

>>> retriever = RagfleetRetriever(Client(url, key), collection="docs", k=5)  # doctest: +SKIP
>>> retriever.retrieve("what is a token bucket?")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from ragfleet.errors import MissingDependencyError
from ragfleet.integrations import _source

try:
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
except ImportError as e:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "llama-index-core is not installed; install it with: pip install 'ragfleet[llamaindex]'"
    ) from e

__all__ = ["RagfleetRetriever"]


class RagfleetRetriever(BaseRetriever):  # type: ignore[misc]
    """Retrieves ragfleet hits as LlamaIndex nodes (``id_`` = chunk id, ``score`` = the
    fused/ranked score, metadata = the document's metadata plus ids and per-signal scores).

    Args:
        source: a :class:`ragfleet.Client` or a :class:`ragfleet.Collection`.
        collection: the collection name (with a Client).
        k: hits per query.
        mode: dense, sparse or hybrid (default: the collection's).
    """

    def __init__(
        self, source: Any, collection: str | None = None, k: int = 5, mode: str | None = None
    ) -> None:
        super().__init__()
        self.source, self.collection, self.k, self.mode = source, collection, k, mode

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        res = _source.search(
            self.source, self.collection, query_bundle.query_str, self.k, self.mode
        )
        return [
            NodeWithScore(
                node=TextNode(id_=h.chunk_id, text=h.text, metadata=_source.metadata(h)),
                score=h.score,
            )
            for h in res.hits
        ]
