"""Content hashes for incremental ingest and the embedding cache.

A hash is the sha256 hex digest of a canonical JSON encoding (UTF-8, no ASCII escaping,
sorted keys), so equal content hashes equal on every machine and Python version.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ragfleet.errors import InputError
from ragfleet.types import Document


def _sha256_json(value: Any) -> str:
    data = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def content_hash(title: str, text: str) -> str:
    """sha256 of ``json.dumps([title, text])``: what a chunk embeds.

    Two chunks with the same title and text share an embedding, whatever their ids.
    """
    return _sha256_json([title, text])


def document_hash(doc: Document) -> str:
    """sha256 of a document's title, text and metadata (sorted-keys JSON).

    Unchanged documents hash equal, so an upsert can skip them. The id is not hashed: it is
    the key the hash is stored under.

    Raises:
        InputError: the metadata holds a value JSON cannot encode.
    """
    try:
        return _sha256_json([doc.title, doc.text, dict(doc.metadata)])
    except (TypeError, ValueError) as e:
        raise InputError(
            f"document {doc.doc_id!r}: metadata must be JSON-serialisable ({e}); "
            "use strings, numbers, booleans, lists and objects"
        ) from e
