"""The rule-based sentence splitter on tricky cases, and sentence packing."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ragfleet.config import ChunkerConfig
from ragfleet.ingest import SentenceChunker, minilm_tokenizer, split_sentences
from ragfleet.ingest.sentence import pack_sentences
from ragfleet.types import Document


def _split(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("One. Two! Three? Four", ["One.", "Two!", "Three?", "Four"]),
        ("Use e.g. Python. And i.e. Rust.", ["Use e.g. Python.", "And i.e. Rust."]),
        ("See Fig. 3 and Dr. Smith. Next.", ["See Fig. 3 and Dr. Smith.", "Next."]),
        ("Shown by Lee et al. The data vs. Noise.", ["Shown by Lee et al. The data vs. Noise."]),
        (
            "J. R. R. Tolkien wrote. Then U.S. Army came.",
            ["J. R. R. Tolkien wrote.", "Then U.S. Army came."],
        ),
        (
            "Rates were 3.5 vs 4.2 percent. 12 rats died.",
            ["Rates were 3.5 vs 4.2 percent.", "12 rats died."],
        ),
        ("no capital. after it.", ["no capital. after it."]),
        ('He said "Stop." "Why?" she asked.', ['He said "Stop."', '"Why?" she asked.']),
        ("It ended (finally.) Then more.", ["It ended (finally.)", "Then more."]),
        ("Wait... What happened?!  Nothing.", ["Wait...", "What happened?!", "Nothing."]),
        ("line one\nline two", ["line one\nline two"]),
        ("para one\n\npara two", ["para one", "para two"]),
        ("para one\n  \t\n\npara two", ["para one", "para two"]),
        ("ends with dot.\n\nlower para", ["ends with dot.", "lower para"]),
        ("Items:\n- first\n- second\n1. third", ["Items:", "- first", "- second", "1. third"]),
        ("Text.\n# Heading\nBody", ["Text.", "# Heading\nBody"]),
        ("  padded.   ", ["padded."]),
        ("", []),
        (" \n\n ", []),
    ],
)
def test_split_sentences(text: str, sentences: list[str]) -> None:
    assert _split(text) == sentences


@given(st.text(st.sampled_from("ab .!?\n\"'(A1e.g"), max_size=200))
def test_sentences_are_stripped_ordered_and_cover_the_text(text: str) -> None:
    spans = split_sentences(text)
    for s, e in spans:
        assert text[s:e] == text[s:e].strip() != ""
    assert all(e0 < s1 for (_, e0), (s1, _) in itertools.pairwise(spans))
    non_space = "".join("".join(text[s:e].split()) for s, e in spans)
    assert non_space == "".join(text.split())


def test_split_respects_a_window_of_the_text() -> None:
    text = "Skip. Take one. Take two. Skip."
    lo, hi = text.index("Take"), text.index(" Skip")
    assert [text[s:e] for s, e in split_sentences(text, lo, hi)] == ["Take one.", "Take two."]


def test_pack_sentences_greedy_with_carry() -> None:
    # sentence token ranges of lengths 3, 3, 3, 4, 12 over tokens 0..25
    sents = [(0, 3), (3, 6), (6, 9), (9, 13), (13, 25)]
    bounds = list(range(26))
    assert pack_sentences(sents, bounds, 8, 0) == [(0, 6), (6, 13), (13, 21), (21, 25)]
    # overlap 3 carries the last 3-token sentence into the next chunk
    assert pack_sentences(sents, bounds, 8, 3) == [(0, 6), (3, 9), (6, 13), (13, 21), (18, 25)]


def test_sentence_chunker_keeps_sentences_whole() -> None:
    tok = minilm_tokenizer()
    sentences = [f"Sentence number {i} is here." for i in range(40)]
    [per] = {n - 2 for n in tok.count(sentences)}  # every sentence has the same length
    text = " ".join(sentences)
    cfg = ChunkerConfig(kind="sentence", max_tokens=32, overlap=8)
    chunks = SentenceChunker(cfg, tok).chunk(Document("d", text))
    for c in chunks:
        assert c.text.startswith("Sentence") and c.text.endswith("here.")
    # 32 // per sentences fit; the next chunk repeats the last 8 // per of them
    fit, carry = 32 // per, 8 // per
    assert [c.text.count("Sentence") for c in chunks[:-1]] == [fit] * (len(chunks) - 1)
    for k, c in enumerate(chunks[:-1]):
        assert c.text.startswith(sentences[k * (fit - carry)])
