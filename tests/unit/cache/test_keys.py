"""Cache keys: normalisation, and every answer-changing input changes the key."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ragfleet.cache import embedding_key, normalize_query, result_key
from ragfleet.errors import InputError

PARAMS: dict[str, Any] = {
    "mode": "hybrid",
    "k": 10,
    "filters": {"year": [2020, 2021]},
    "reranker": None,
    "generator": "extractive",
}


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("  What   is\tBM25?\n", "what is bm25?"),
        ("Ｗｈａｔ ｉｓ BM25", "what is bm25"),  # fullwidth -> ASCII by NFKC
        ("STRASSE Straße", "strasse strasse"),  # casefold: ß -> ss
        ("ﬁbre", "fibre"),  # the fi ligature decomposes under NFKC
        ("a\u00a0b\u2003c", "a b c"),  # no-break and em spaces are whitespace
        ("", ""),
    ],
)
def test_normalize_query(raw: str, normal: str) -> None:
    assert normalize_query(raw) == normal


@given(st.text())
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize_query(text)
    assert normalize_query(once) == once


def test_result_key_is_namespace_plus_sha256_of_canonical_json() -> None:
    key = result_key("results:scifact", "  What is BM25? ", PARAMS, 7)
    body = json.dumps(
        ["what is bm25?", PARAMS, 7], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert key == "results:scifact:" + hashlib.sha256(body.encode()).hexdigest()


def test_equivalent_queries_and_param_order_share_a_key() -> None:
    reordered = dict(reversed(list(PARAMS.items())))
    assert result_key("r", "What is BM25?", PARAMS, 1) == result_key(
        "r", "  what IS bm25? ", reordered, 1
    )


@pytest.mark.parametrize(
    ("name", "other"),
    [
        ("mode", "dense"),
        ("k", 11),
        ("filters", {"year": [2020]}),
        ("reranker", "cross-encoder"),
        ("generator", None),
    ],
)
def test_changing_any_param_changes_the_key(name: str, other: Any) -> None:
    changed = {**PARAMS, name: other}
    assert result_key("r", "q", PARAMS, 1) != result_key("r", "q", changed, 1)


@given(st.integers(), st.integers())
def test_changing_the_generation_changes_the_key(g1: int, g2: int) -> None:
    same = result_key("r", "q", PARAMS, g1) == result_key("r", "q", PARAMS, g2)
    assert same == (g1 == g2)


def test_namespace_and_query_change_the_key() -> None:
    base = result_key("r", "q", PARAMS, 1)
    assert result_key("answers", "q", PARAMS, 1) != base
    assert result_key("r", "q2", PARAMS, 1) != base


@pytest.mark.parametrize("bad", [{"s": {1, 2}}, {"x": float("nan")}, {"b": b"raw"}])
def test_unserialisable_params_raise(bad: dict[str, Any]) -> None:
    with pytest.raises(InputError, match="JSON"):
        result_key("r", "q", bad, 1)


def test_empty_namespace_raises() -> None:
    with pytest.raises(InputError, match="namespace"):
        result_key("", "q", {}, 1)


def test_embedding_key_hashes_the_exact_text() -> None:
    key = embedding_key("Some Text", "fp-1", "document")
    body = json.dumps(["fp-1", "document", "Some Text"], separators=(",", ":"))
    assert key == "emb:document:" + hashlib.sha256(body.encode()).hexdigest()
    assert embedding_key("some text", "fp-1", "document") != key  # not normalised
    assert embedding_key("Some Text", "fp-2", "document") != key
    assert embedding_key("Some Text", "fp-1", "query") != key


def test_embedding_key_validates() -> None:
    with pytest.raises(InputError, match="kind"):
        embedding_key("t", "fp", "passage")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="fingerprint"):
        embedding_key("t", "", "query")
