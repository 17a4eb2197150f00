"""Invariants every chunker keeps, checked with Hypothesis on the real MiniLM tokenizer:
ids and offsets consistent, text stripped, every chunk within ``max_tokens`` tokens when
re-tokenized, and the chunks covering all the text."""

from __future__ import annotations

import itertools
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragfleet.config import ChunkerConfig, ChunkerKind
from ragfleet.ingest import content_hash, make_chunker, minilm_tokenizer
from ragfleet.types import Chunk, Document, chunk_id_of

KINDS: tuple[ChunkerKind, ...] = ("window", "sentence", "markdown")
_PIECES = [
    "The",
    "cell",
    "grew.",
    "Dr.",
    "Smith",
    "e.g.",
    "et al.",
    "Fig. 3",
    "3.5%",
    "(IL-6)",
    "Why?",
    "Yes!",
    '"Quoted."',
    "\n",
    "\n\n",
    "\n# Intro\n",
    "\n## Setup ##\n",
    "\n- item",
    "\n```\n# code\n```\n",
    "  ",
    "\t",
    "naïve",
    "東京",
    "α-synuclein",
    "pneumonoultramicroscopicsilicovolcanoconiosis",
    "zzqxjvkwqpfh",
    "x" * 120,
    "—",
    "…",
]
# a made-up word of 10-40 wordpieces: cut inside it, a piece may re-tokenize longer
_LONG_WORD = st.text(st.sampled_from(string.ascii_lowercase), min_size=20, max_size=90)
_TEXT = st.one_of(
    st.lists(st.one_of(st.sampled_from(_PIECES), _LONG_WORD), max_size=80).map(" ".join),
    st.text(st.characters(exclude_categories=["C"]), max_size=300),
)
_CONFIG = st.builds(
    lambda kind, max_tokens, frac: ChunkerConfig(kind, max_tokens, int(frac * max_tokens)),
    st.sampled_from(KINDS),
    st.integers(8, 40),
    st.floats(0.0, 0.9),
)
_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_ids_and_text(doc: Document, chunks: list[Chunk]) -> None:
    for n, c in enumerate(chunks):
        assert (c.chunk_id, c.doc_id, c.n, c.title) == (
            chunk_id_of(doc.doc_id, n),
            doc.doc_id,
            n,
            doc.title,
        )
        assert c.text == doc.text[c.start : c.end] == c.text.strip() != ""
        assert c.content_hash == content_hash(doc.title, c.text)
    for a, b in itertools.pairwise(chunks):
        assert a.start < b.start and a.end < b.end  # in order, none inside another


def _check_coverage(doc: Document, chunks: list[Chunk]) -> None:
    """Every token, and every non-space character the tokenizer keeps, is in a chunk."""
    covered = bytearray(len(doc.text))
    for c in chunks:
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    for start, end in minilm_tokenizer().offsets([doc.text])[0]:
        kept = doc.text[start:end].strip()
        if kept:
            first = start + doc.text[start:end].index(kept[0])
            assert covered[first], f"token {doc.text[start:end]!r} at {start} not in any chunk"


@_SETTINGS
@given(text=_TEXT, config=_CONFIG)
def test_chunk_invariants(text: str, config: ChunkerConfig) -> None:
    tok = minilm_tokenizer()
    doc = Document("doc/1", text, title="A title", metadata={"source": "t"})
    chunks = make_chunker(config, tok).chunk(doc)
    _check_ids_and_text(doc, chunks)
    _check_coverage(doc, chunks)
    counts = tok.count([c.text for c in chunks])
    assert all(n - 2 <= config.max_tokens for n in counts), (counts, config)
    if config.kind != "markdown":
        assert all(c.metadata == {"source": "t"} for c in chunks)
    else:
        assert all(c.metadata["source"] == "t" and "section" in c.metadata for c in chunks)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("text", ["", "   ", "\n\n\t"])
def test_blank_document_has_no_chunks(kind: ChunkerKind, text: str) -> None:
    chunker = make_chunker(ChunkerConfig(kind=kind), minilm_tokenizer())
    assert chunker.chunk(Document("d", text)) == []


@pytest.mark.parametrize("kind", KINDS)
def test_short_document_is_one_chunk_of_its_stripped_text(kind: ChunkerKind) -> None:
    text = "  Short text. Two sentences.\n"
    [c] = make_chunker(ChunkerConfig(kind=kind), minilm_tokenizer()).chunk(Document("d", text))
    assert (c.text, c.start, c.end) == (text.strip(), 2, 2 + len(text.strip()))


@pytest.mark.parametrize("kind", KINDS)
def test_chunk_many_equals_chunk_one_by_one_across_batches(kind: ChunkerKind) -> None:
    docs = [Document(f"d{i}", f"Doc {i} says hello. " * (i % 40)) for i in range(700)]
    chunker = make_chunker(ChunkerConfig(kind=kind, max_tokens=32, overlap=4), minilm_tokenizer())
    one_by_one = [c for d in docs[::50] for c in chunker.chunk(d)]
    many = chunker.chunk_many(iter(docs))
    assert [c for c in many if c.doc_id in {d.doc_id for d in docs[::50]}] == one_by_one
    assert {c.doc_id for c in many} == {d.doc_id for d in docs if d.text}
