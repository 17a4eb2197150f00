"""A LangChain retriever over ragfleet (needs ``pip install 'ragfleet[langchain]'``).

>>> retriever = RagfleetRetriever(source=Client(url, key), collection="docs", k=5)  # doctest: +SKIP
>>> retriever.invoke("what is a token bucket?")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from ragfleet.errors import MissingDependencyError
from ragfleet.integrations import _source

try:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document as LCDocument
    from langchain_core.retrievers import BaseRetriever
    from pydantic import ConfigDict
except ImportError as e:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "langchain-core is not installed; install it with: pip install 'ragfleet[langchain]'"
    ) from e

__all__ = ["RagfleetRetriever"]


class RagfleetRetriever(BaseRetriever):  # type: ignore[misc]
    """Retrieves ragfleet hits as LangChain documents (``page_content`` = the chunk text;
    metadata = the document's metadata plus doc_id, chunk_id, title, rank and scores).

    Args:
        source: a :class:`ragfleet.Client` or a :class:`ragfleet.Collection`.
        collection: the collection name (with a Client).
        k: hits per query.
        mode: dense, sparse or hybrid (default: the collection's).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    source: Any
    collection: str | None = None
    k: int = 5
    mode: str | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[LCDocument]:
        res = _source.search(self.source, self.collection, query, self.k, self.mode)
        return [
            LCDocument(page_content=h.text, metadata=_source.metadata(h), id=h.chunk_id)
            for h in res.hits
        ]
