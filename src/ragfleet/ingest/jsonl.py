"""JSON-lines documents: one object per line with an id, ``text``, optional ``title`` and
``metadata``. The record rules here are shared by the BEIR loader.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ragfleet.errors import InputError, InvalidRecordError
from ragfleet.types import Document

_ID_KEYS = ("_id", "id", "doc_id")
#: Told of each record a loader skips, ``(where, why)``; without one, a bad record raises.
OnInvalid = Callable[[str, str], None]


def existing_path(path: str | Path, kind: str) -> Path:
    """``path`` as a :class:`Path`, or :class:`InputError` naming ``kind`` if it is missing."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{kind} {p} does not exist")
    return p


def record_to_document(record: Any, where: str) -> Document:
    """A :class:`Document` from one parsed JSON record; ``where`` (``file:line``) names it
    in errors.

    The id is the first of ``_id``, ``id``, ``doc_id`` present (a string or an integer);
    ``text`` must be a string; ``title`` a string or null; ``metadata`` an object.
    """
    if not isinstance(record, dict):
        raise InvalidRecordError(f"{where}: expected a JSON object, got {type(record).__name__}")
    key = next((k for k in _ID_KEYS if k in record), None)
    doc_id = record.get(key) if key else None
    if isinstance(doc_id, bool) or not isinstance(doc_id, str | int) or doc_id == "":
        raise InvalidRecordError(
            f"{where}: missing id; give each record a non-empty '_id', 'id' or 'doc_id'"
        )
    text, title = record.get("text"), record.get("title") or ""
    if not isinstance(text, str):
        raise InvalidRecordError(f"{where}: 'text' must be a string, got {type(text).__name__}")
    if not isinstance(title, str):
        raise InvalidRecordError(f"{where}: 'title' must be a string, got {type(title).__name__}")
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise InvalidRecordError(
            f"{where}: 'metadata' must be an object, got {type(metadata).__name__}"
        )
    return Document(doc_id=str(doc_id), text=text, title=title, metadata=metadata)


def iter_json_lines(path: Path, on_invalid: OnInvalid | None = None) -> Iterator[tuple[int, Any]]:
    """``(line number, parsed value)`` for every non-blank line of a JSON-lines file (UTF-8,
    an optional byte-order mark skipped); a line that is not JSON raises, or is reported to
    ``on_invalid`` and skipped."""
    try:
        with path.open(encoding="utf-8-sig") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as e:
                    why = f"invalid JSON ({e.msg} at column {e.colno})"
                    if on_invalid is None:
                        raise InvalidRecordError(f"{path}:{lineno}: {why}") from e
                    on_invalid(f"{path}:{lineno}", why)
                    continue
                yield lineno, value
    except UnicodeDecodeError as e:
        raise InvalidRecordError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start})") from e


def _jsonl_documents(path: Path, on_invalid: OnInvalid | None) -> Iterator[Document]:
    seen: dict[str, int] = {}  # id -> line number
    for lineno, record in iter_json_lines(path, on_invalid):
        where = f"{path}:{lineno}"
        try:
            doc = record_to_document(record, where)
            first = seen.setdefault(doc.doc_id, lineno)
            if first != lineno:
                raise InvalidRecordError(
                    f"{where}: duplicate id {doc.doc_id!r} (first at line {first})"
                )
        except InvalidRecordError as e:
            if on_invalid is None:
                raise
            on_invalid(where, str(e).removeprefix(f"{where}: "))
            continue
        yield doc


def load_jsonl(path: str | Path, on_invalid: OnInvalid | None = None) -> Iterator[Document]:
    """Documents from a JSON-lines file, one object per line (see :func:`record_to_document`);
    blank lines are skipped.

    Args:
        on_invalid: told ``(file:line, why)`` of each bad record, which is then skipped.

    Raises:
        InputError: the file is missing, or (while iterating, without ``on_invalid``) a
            line is not valid JSON, has no id, a non-string text or title, non-object
            metadata, or repeats an id; the message names ``file:line``.
    """
    p = existing_path(path, "JSON-lines file")
    if not p.is_file():
        raise InputError(f"{p} is not a file; pass a .jsonl file")
    return _jsonl_documents(p, on_invalid)
