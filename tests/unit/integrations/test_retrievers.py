"""LangChain and LlamaIndex retrievers return the same hits as ``Collection.search``."""

from __future__ import annotations

from typing import Any

import pytest

QUERY = "Who won Super Bowl 50?"


def test_langchain_retriever_over_a_collection(collection_factory: Any) -> None:
    pytest.importorskip("langchain_core", reason="langchain-core is not installed")
    from ragfleet.integrations.langchain import RagfleetRetriever

    col = collection_factory(shards=2)
    docs = RagfleetRetriever(source=col, k=3, mode="hybrid").invoke(QUERY)
    hits = col.search(QUERY, k=3, mode="hybrid").hits
    assert [d.page_content for d in docs] == [h.text for h in hits]
    assert [d.metadata["chunk_id"] for d in docs] == [h.chunk_id for h in hits]
    assert docs[0].metadata["scores"] == dict(hits[0].scores) and docs[0].id == hits[0].chunk_id


def test_llamaindex_retriever_over_a_collection(collection_factory: Any) -> None:
    pytest.importorskip("llama_index.core", reason="llama-index-core is not installed")
    from ragfleet.integrations.llamaindex import RagfleetRetriever

    col = collection_factory(shards=2)
    nodes = RagfleetRetriever(col, k=3, mode="dense").retrieve(QUERY)
    hits = col.search(QUERY, k=3, mode="dense").hits
    assert [n.node.node_id for n in nodes] == [h.chunk_id for h in hits]
    assert [n.score for n in nodes] == [h.score for h in hits]
    assert nodes[0].node.get_content() == hits[0].text


def test_a_client_source_needs_a_collection_name() -> None:
    pytest.importorskip("httpx", reason="httpx is not installed")
    from ragfleet.client import Client
    from ragfleet.errors import InputError
    from ragfleet.integrations._source import search

    with Client("http://127.0.0.1:9") as client, pytest.raises(InputError, match="collection="):
        search(client, None, "q", 3, None)
