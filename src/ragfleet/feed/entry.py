"""One change-feed entry: a document upsert or a delete, as a JSON object in the stream
entry's ``data`` field.

    {"schema": 1, "op": "upsert", "doc": {"id": "d1", "text": "…", "title": "…",
                                          "metadata": {…}}, "version": 7}
    {"schema": 1, "op": "delete", "id": "d1", "version": 8}

``version`` (optional, a non-negative integer) is the source system's version of the
document. An entry is applied only when its key — ``(version or 0, stream id)`` — is newer
than the key last applied for that document, so redelivery (at-least-once) and reclaimed
entries that were overtaken have an exactly-once effect.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from ragfleet.collection.validate import validate_documents
from ragfleet.errors import InputError
from ragfleet.types import Document

SCHEMA_VERSION = 1
MAX_ENTRY_BYTES = 8 * 1024 * 1024
FIELD = b"data"

Op = Literal["upsert", "delete"]
Key = tuple[int, int, int]


class PoisonEntry(InputError):
    """An entry that can never be applied (not JSON, wrong schema, a bad document): it goes
    to the dead-letter stream with this message as the reason."""


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """A decoded entry; ``entry_id`` is the stream's ``ms-seq`` id (its publish time)."""

    entry_id: str
    op: Op
    doc_id: str
    document: Document | None
    version: int | None

    @property
    def published_ms(self) -> int:
        return int(self.entry_id.split("-", 1)[0])

    @property
    def key(self) -> Key:
        ms, seq = self.entry_id.split("-", 1)
        return (self.version or 0, int(ms), int(seq))


def encode(op: Op, *, document: Document | None = None, doc_id: str | None = None,
           version: int | None = None) -> bytes:  # fmt: skip
    """The ``data`` field of an entry (validated as :func:`decode` would check it)."""
    body: dict[str, Any] = {"schema": SCHEMA_VERSION, "op": op}
    if op == "upsert":
        if document is None:
            raise InputError("an upsert entry needs a document")
        body["doc"] = {"id": document.doc_id, "text": document.text, "title": document.title,
                       "metadata": dict(document.metadata)}  # fmt: skip
    elif op == "delete":
        if not doc_id:
            raise InputError("a delete entry needs a doc_id")
        body["id"] = doc_id
    else:
        raise InputError(f"op must be 'upsert' or 'delete', got {op!r}")
    if version is not None:
        body["version"] = version
    data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
    decode("0-0", data)  # refuse at the source what a worker would dead-letter
    return data


def decode(entry_id: str, data: bytes | None) -> FeedEntry:
    """Parse and validate one entry's ``data``.

    Raises:
        PoisonEntry: with the reason, for anything a worker cannot apply.
    """
    if data is None:
        raise PoisonEntry(f"the entry has no {FIELD.decode()!r} field")
    if len(data) > MAX_ENTRY_BYTES:
        raise PoisonEntry(f"the entry is {len(data):,} bytes, over {MAX_ENTRY_BYTES:,}")
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, ValueError) as e:
        raise PoisonEntry(f"the entry is not JSON: {e}") from e
    if not isinstance(body, dict):
        raise PoisonEntry("the entry is not a JSON object")
    if body.get("schema") != SCHEMA_VERSION:
        raise PoisonEntry(
            f"schema {body.get('schema')!r} is not {SCHEMA_VERSION}; upgrade the worker"
        )
    version = body.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)
                                or version < 0):  # fmt: skip
        raise PoisonEntry(f"version must be a non-negative integer, got {version!r}")
    op = body.get("op")
    if op == "delete":
        doc_id = body.get("id")
        if not isinstance(doc_id, str) or not doc_id.strip():
            raise PoisonEntry(f"a delete needs a non-empty string id, got {doc_id!r}")
        return FeedEntry(entry_id, "delete", doc_id, None, version)
    if op != "upsert":
        raise PoisonEntry(f"op must be 'upsert' or 'delete', got {op!r}")
    return FeedEntry(entry_id, "upsert", *_document(body.get("doc")), version)


def _document(raw: object) -> tuple[str, Document]:
    if not isinstance(raw, dict):
        raise PoisonEntry("an upsert needs a 'doc' object")
    unknown = set(raw) - {"id", "text", "title", "metadata"}
    if unknown:
        raise PoisonEntry(f"unknown document field(s) {sorted(unknown)}")
    doc = Document(raw.get("id"), raw.get("text", ""), raw.get("title", ""),  # type: ignore[arg-type]
                   raw.get("metadata", {}))  # fmt: skip
    keep, skipped, _ = validate_documents([doc], skip_invalid=True)
    if not keep:
        why = skipped[0][1] if skipped else "invalid"
        if why == "no text":
            why = "the document has no text (publish a delete to remove it)"
        raise PoisonEntry(why)
    return doc.doc_id, doc
