"""Ingest: load documents, cut them into chunks, hash them for incremental updates.

Loaders return lazy iterators of :class:`~ragfleet.types.Document`; chunkers, built by
:func:`make_chunker` from a :class:`~ragfleet.config.ChunkerConfig` and a
:class:`Tokenizer`, turn documents into :class:`~ragfleet.types.Chunk` s of at most
``max_tokens`` tokens of text.
"""

from ragfleet.ingest.base import Chunker
from ragfleet.ingest.beir import (
    load_beir_corpus,
    load_beir_queries,
    load_beir_query_records,
    load_qrels,
)
from ragfleet.ingest.chunking import make_chunker
from ragfleet.ingest.hashing import content_hash, document_hash
from ragfleet.ingest.jsonl import load_jsonl
from ragfleet.ingest.loaders import load_documents, load_text_dir, sniff_format
from ragfleet.ingest.markdown import MarkdownChunker
from ragfleet.ingest.sentence import SentenceChunker, split_sentences
from ragfleet.ingest.tokenize import HFTokenizer, Tokenizer, minilm_tokenizer
from ragfleet.ingest.window import WindowChunker

__all__ = [
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
