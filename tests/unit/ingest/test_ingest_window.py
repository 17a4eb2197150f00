"""Token windows: the pure window rule, and WindowChunker on real tokens."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from ragfleet.config import ChunkerConfig
from ragfleet.ingest import WindowChunker, minilm_tokenizer
from ragfleet.ingest.window import window_ranges
from ragfleet.types import Document


def _bounds(word_lengths: list[int]) -> list[int]:
    return [0, *itertools.accumulate(word_lengths)]


@st.composite
def _windows_case(draw: st.DrawFn) -> tuple[list[int], int, int]:
    max_tokens = draw(st.integers(1, 40))
    overlap = draw(st.integers(0, max_tokens - 1))
    words = draw(st.lists(st.integers(1, max_tokens), min_size=1, max_size=200))
    return words, max_tokens, overlap


@given(_windows_case())
def test_windows_cover_in_order_within_budget(case: tuple[list[int], int, int]) -> None:
    words, max_tokens, overlap = case
    bounds = _bounds(words)
    n = bounds[-1]
    ranges = window_ranges(bounds, 0, n, max_tokens, overlap)
    assert ranges[0][0] == 0 and ranges[-1][1] == n
    assert all(0 < e - s <= max_tokens for s, e in ranges)
    assert all(s in bounds and e in bounds for s, e in ranges)
    for (s0, e0), (s1, e1) in itertools.pairwise(ranges):
        assert s0 < s1 <= e0 < e1  # no gap, no window inside another


@given(_windows_case())
def test_overlap_is_at_least_requested_when_a_word_boundary_allows(
    case: tuple[list[int], int, int],
) -> None:
    words, max_tokens, overlap = case
    bounds = _bounds(words)
    ranges = window_ranges(bounds, 0, bounds[-1], max_tokens, overlap)
    for (s0, e0), (s1, _) in itertools.pairwise(ranges):
        # a start at a word boundary <= e0 - overlap whose window reaches past e0 existed
        candidates = [b for b in bounds if s0 < b <= e0 - overlap]
        if candidates and max(candidates) + max_tokens >= min(b for b in bounds if b > e0):
            assert e0 - s1 >= overlap


@given(st.integers(1, 300), st.integers(2, 20), st.data())
def test_windows_shrink_until_they_fit(n: int, max_tokens: int, data: st.DataObject) -> None:
    cap = data.draw(st.integers(1, max_tokens))  # what re-tokenized pieces allow
    overlap = data.draw(st.integers(0, max_tokens - 1))
    ranges = window_ranges(
        list(range(n + 1)), 0, n, max_tokens, overlap, lambda lo, hi: hi - lo <= cap
    )
    assert ranges[0][0] == 0 and ranges[-1][1] == n
    assert all(0 < e - s <= cap for s, e in ranges)
    for (s0, e0), (s1, e1) in itertools.pairwise(ranges):
        assert s0 < s1 <= e0 < e1


def _n_windows(n: int, max_tokens: int, overlap: int) -> int:
    """1 + ceil((n - max_tokens) / (max_tokens - overlap)) windows cover n one-token words."""
    return 1 + max(0, -(-(n - max_tokens) // (max_tokens - overlap)))


@given(st.integers(1, 500), st.integers(1, 64), st.data())
def test_single_token_words_share_exactly_overlap(
    n: int, max_tokens: int, data: st.DataObject
) -> None:
    overlap = data.draw(st.integers(0, max_tokens - 1))
    ranges = window_ranges(list(range(n + 1)), 0, n, max_tokens, overlap)
    step = max_tokens - overlap
    assert ranges == [
        (k * step, min(k * step + max_tokens, n)) for k in range(_n_windows(n, max_tokens, overlap))
    ]


def test_window_chunker_shares_exactly_overlap_on_one_token_words() -> None:
    text = " ".join(["the"] * 300)
    cfg = ChunkerConfig(kind="window", max_tokens=16, overlap=5)
    chunks = WindowChunker(cfg, minilm_tokenizer()).chunk(Document("d", text))
    assert len(chunks) == _n_windows(300, 16, 5)
    assert [c.text.count("the") for c in chunks[:-1]] == [16] * (len(chunks) - 1)
    for a, b in itertools.pairwise(chunks):
        assert text[b.start : a.end].count("the") == 5
    assert chunks[-1].end == len(text)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(["alpha", "beta,", "gamma.", "x", "(delta)"]), max_size=120))
def test_window_chunker_budget_on_punctuated_text(words: list[str]) -> None:
    tok = minilm_tokenizer()
    text = " ".join(words)
    cfg = ChunkerConfig(kind="window", max_tokens=9, overlap=3)
    chunks = WindowChunker(cfg, tok).chunk(Document("d", text))
    assert all(n - 2 <= 9 for n in tok.count([c.text for c in chunks]))
    assert "".join(text.split()) == "" or chunks
