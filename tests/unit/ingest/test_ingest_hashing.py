"""Content and document hashes for incremental ingest."""

from __future__ import annotations

import hashlib
import json

import pytest

from ragfleet.errors import InputError
from ragfleet.ingest import content_hash, document_hash
from ragfleet.types import Document


def test_content_hash_is_sha256_of_canonical_json() -> None:
    expected = hashlib.sha256(
        json.dumps(["T", "x é"], ensure_ascii=False, separators=(",", ":")).encode()
    ).hexdigest()
    assert content_hash("T", "x é") == expected


def test_content_hash_separates_title_from_text() -> None:
    assert content_hash("ab", "c") != content_hash("a", "bc")
    assert content_hash("", "") != content_hash("", " ")


def test_document_hash_ignores_id_and_key_order_but_not_content() -> None:
    a = Document("1", "text", "title", {"a": 1, "b": [1, 2]})
    assert document_hash(a) == document_hash(Document("2", "text", "title", {"b": [1, 2], "a": 1}))
    assert document_hash(a) != document_hash(Document("1", "text", "title", {"a": 2, "b": [1, 2]}))
    assert document_hash(a) != document_hash(Document("1", "text!", "title", {"a": 1, "b": [1, 2]}))
    assert document_hash(a) != document_hash(Document("1", "text", "Title", {"a": 1, "b": [1, 2]}))


def test_document_hash_rejects_unserialisable_metadata() -> None:
    with pytest.raises(InputError, match="JSON-serialisable"):
        document_hash(Document("1", "t", metadata={"x": object()}))
