"""The HuggingFace tokenizer wrapper over the vendored MiniLM WordPiece tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragfleet.errors import InputError
from ragfleet.ingest import HFTokenizer, Tokenizer, minilm_tokenizer


def test_offsets_are_wordpiece_spans_without_special_tokens() -> None:
    text = "Hello, unbelievableness!"
    [offsets] = minilm_tokenizer().offsets([text])
    pieces = [text[s:e] for s, e in offsets]
    assert pieces == ["Hello", ",", "unbelievable", "ness", "!"]


def test_count_includes_cls_and_sep() -> None:
    tok = minilm_tokenizer()
    texts = ["", "Hello, unbelievableness!", "one two three"]
    assert tok.count(texts) == [len(o) + 2 for o in tok.offsets(texts)]
    assert tok.count([""]) == [2]


def test_long_text_is_not_truncated_or_padded() -> None:
    tok = minilm_tokenizer()  # the vendored file truncates and pads to 128: both disabled
    text = " ".join(["word"] * 1000)
    assert tok.count([text]) == [1002]
    assert len(tok.offsets([text])[0]) == 1000
    assert tok.count(["word"]) == [3]


def test_batch_matches_one_by_one() -> None:
    tok = minilm_tokenizer()
    texts = ["a b c", "", "The cell grew. Dr. Smith, e.g., said so.", "東京 naïve"]
    assert tok.offsets(texts) == [tok.offsets([t])[0] for t in texts]
    assert tok.count(texts) == [tok.count([t])[0] for t in texts]


def test_minilm_tokenizer_is_cached_and_a_tokenizer() -> None:
    assert minilm_tokenizer() is minilm_tokenizer()
    assert isinstance(minilm_tokenizer(), Tokenizer)


def test_missing_or_malformed_tokenizer_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        HFTokenizer(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="cannot load tokenizer"):
        HFTokenizer(bad)
