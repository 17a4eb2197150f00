"""The chunker factory and the ingest package's public names."""

from __future__ import annotations

import pytest

import ragfleet.ingest
from ragfleet.config import ChunkerConfig
from ragfleet.ingest import (
    Chunker,
    MarkdownChunker,
    SentenceChunker,
    WindowChunker,
    make_chunker,
    minilm_tokenizer,
)


@pytest.mark.parametrize(
    ("spec", "cls"),
    [
        ("window:64:8", WindowChunker),
        ("sentence", SentenceChunker),
        ("markdown:200", MarkdownChunker),
    ],
)
def test_make_chunker_builds_the_named_kind(spec: str, cls: type) -> None:
    config = ChunkerConfig.parse(spec)
    chunker = make_chunker(config, minilm_tokenizer())
    assert type(chunker) is cls
    assert isinstance(chunker, Chunker)
    assert chunker.config is config
    assert repr(chunker) == f"{cls.__name__}({config.spec!r})"


def test_public_names_are_pinned() -> None:
    assert sorted(ragfleet.ingest.__all__) == [
        "Chunker",
        "HFTokenizer",
        "MarkdownChunker",
        "SentenceChunker",
        "Tokenizer",
        "WindowChunker",
        "content_hash",
        "document_hash",
        "load_beir_corpus",
        "load_beir_queries",
        "load_beir_query_records",
        "load_documents",
        "load_jsonl",
        "load_qrels",
        "load_text_dir",
        "make_chunker",
        "minilm_tokenizer",
        "sniff_format",
        "split_sentences",
    ]
    assert all(hasattr(ragfleet.ingest, name) for name in ragfleet.ingest.__all__)
