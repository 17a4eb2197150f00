"""The ``Retriever`` protocol: the one front door every consumer searches through.

``Collection`` (embedded), ``Fleet`` (replicated shards, local or on Ray), ``CachedSearch``
(any retriever behind a result cache, itself a retriever) and ``RemoteCollection`` (a
collection behind ``ragfleet serve``) implement it; ``Pipeline``, the LangChain and
LlamaIndex retrievers and the HTTP service take any of them. One behavioural contract
suite (``tests/contract/test_retriever_contract.py``) runs over all of them.

A retriever answers ``search_batch(queries, req)``; :class:`RetrieverBase` derives
``search(query, req=None, **params)`` from it, so the parameter list is spelled out once
(:data:`ragfleet.search.request.FIELDS`), not once per class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ragfleet.config import SearchConfig
from ragfleet.search.request import SearchRequest
from ragfleet.types import Results

if TYPE_CHECKING:
    from ragfleet.embed.base import Encoder


@runtime_checkable
class Retriever(Protocol):
    """What consumers need from a searchable collection."""

    def search(self, query: str, req: SearchRequest | None = None, **params: Any) -> Results:
        """One query; ``params`` are :class:`SearchRequest` fields (``k=5, mode="dense"``)."""
        ...

    def search_batch(
        self, queries: Sequence[str], req: SearchRequest | None = None
    ) -> list[Results]:
        """Many queries at once, one :class:`Results` each, in order."""
        ...

    @property
    def generation(self) -> str:
        """Changes on every acknowledged write (result caches key on it)."""
        ...

    @property
    def defaults(self) -> SearchConfig:
        """The search defaults a request is resolved against."""
        ...

    @property
    def identity(self) -> str:
        """A stable name for this collection (cache namespaces, logs)."""
        ...

    @property
    def encoder(self) -> Encoder | None:
        """The query encoder where it runs in this process (``None`` for a remote one)."""
        ...


class RetrieverBase:
    """``search`` for any class that implements ``search_batch``."""

    def search_batch(
        self, queries: Sequence[str], req: SearchRequest | None = None
    ) -> list[Results]:
        raise NotImplementedError

    def search(self, query: str, req: SearchRequest | None = None, **params: Any) -> Results:
        """Search one query: ``req`` and/or keyword fields of :class:`SearchRequest`."""
        return self.search_batch([query], SearchRequest.of(req, **params))[0]
