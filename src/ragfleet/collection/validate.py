"""Validating a batch of documents before anything of it is written.

A document with no text is skipped and reported, never an error (real corpora have a few:
Cranfield has 2 of 1,400). Anything else wrong refuses the whole batch with every problem
listed, or — ``skip_invalid`` — skips those documents and reports them too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

from ragfleet.errors import InputError
from ragfleet.types import Document

MAX_DOC_CHARS = 5_000_000


def validate_documents(
    docs: Sequence[Document], *, skip_invalid: bool = False
) -> tuple[list[Document], list[tuple[str, str]], int]:
    """Split a batch into the documents to write and those skipped.

    A document with no text (blank title and text) is skipped and reported, never an
    error: real corpora have a few. Any other problem — a duplicate, non-string or empty
    id, text that is not a string or not valid UTF-8 (an unpaired surrogate), text over
    :data:`MAX_DOC_CHARS`, metadata that is not a JSON object — refuses the whole batch
    with every problem listed (nothing is written), unless ``skip_invalid``, when those
    documents are skipped and reported too.

    Returns:
        (documents to write, [(doc_id, reason)] of the skipped ones, how many had no text).
    """
    problems: list[str] = []
    keep: list[Document] = []
    skipped: list[tuple[str, str]] = []
    n_empty = 0
    seen: set[str] = set()
    for i, d in enumerate(docs):
        why = list(_document_problems(d))
        if not isinstance(d.doc_id, str) or not d.doc_id.strip():
            why.insert(0, "doc_id must be a non-empty string")
        elif d.doc_id in seen:
            why.insert(0, "duplicate doc_id in this batch")
        else:
            seen.add(d.doc_id)
        if why:
            problems.extend(f"document {i} ({d.doc_id!r}): {p}" for p in why)
            skipped.append((str(d.doc_id), why[0]))
        elif _is_empty(d):
            n_empty += 1
            skipped.append((d.doc_id, "no text"))
        else:
            keep.append(d)
    if problems and not skip_invalid:
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise InputError(
            f"{len(problems)} invalid document(s), nothing written: {shown}{more} "
            "(--skip-invalid writes the others and lists what it skipped)"
        )
    empties = [s for s in skipped if s[1] == "no text"]
    others = [s for s in skipped if s[1] != "no text"]
    return keep, empties + others, n_empty


def _is_empty(d: Document) -> bool:
    return not d.text.strip() and not d.title.strip()


def _document_problems(d: Document) -> Iterator[str]:
    for name in ("text", "title"):
        value = getattr(d, name)
        if not isinstance(value, str):
            yield f"{name} must be a string, got {type(value).__name__}"
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            yield f"{name} is not valid UTF-8 (unpaired surrogate)"
    if isinstance(d.text, str) and len(d.text) > MAX_DOC_CHARS:
        yield f"text has {len(d.text):,} characters, over the limit of {MAX_DOC_CHARS:,}"
    if not isinstance(d.metadata, dict):
        yield f"metadata must be a JSON object, got {type(d.metadata).__name__}"
    else:
        try:
            json.dumps(d.metadata, allow_nan=False)
        except (TypeError, ValueError) as e:
            yield f"metadata is not JSON-serialisable: {e}"
