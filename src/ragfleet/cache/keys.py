"""Cache keys: every input that changes an answer goes into the key.

A result key is ``f"{namespace}:{sha256(canonical_json([normalize_query(q), params,
generation])).hexdigest()}"`` where canonical JSON sorts object keys and uses no spaces.
Because the collection's generation is part of the key, a write (which bumps the
generation) makes every older entry unreachable at once — no scan, no stale answer; the
orphans age out by LRU or TTL.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Mapping
from typing import Any

from ragfleet.errors import InputError
from ragfleet.types import EncodeKind

_KINDS = ("query", "document")


def normalize_query(text: str) -> str:
    """Unicode NFKC, casefold, collapse runs of whitespace to one space, strip.

    ``"  Ｗhat   is\\tBM25?\\n"`` → ``"what is bm25?"``.
    """
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 kept, NaN/Infinity refused.

    Raises:
        InputError: ``obj`` holds something JSON cannot represent (a set, bytes, NaN…).
    """
    try:
        return json.dumps(
            obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as e:
        raise InputError(
            f"cache key parts must be JSON-serialisable (str, int, float, bool, None, "
            f"list, dict with str keys; no NaN, sets or bytes): {e}"
        ) from e


def _digest(parts: Any) -> str:
    return hashlib.sha256(canonical_json(parts).encode()).hexdigest()


def result_key(namespace: str, query: str, params: Mapping[str, Any], generation: int | str) -> str:
    """The key of a cached result: ``namespace:sha256([normalize_query(q), params, generation])``.

    Args:
        namespace: what is cached and for which collection, e.g. ``"results:scifact"``.
        query: the raw query text (normalised here).
        params: every parameter that changes the answer (mode, k, filters, reranker, …).
        generation: the collection's generation; a write bumps it, orphaning old keys.
    """
    if not namespace:
        raise InputError("cache key namespace must be non-empty, e.g. 'results:<collection>'")
    return f"{namespace}:{_digest([normalize_query(query), dict(params), generation])}"


def embedding_key(text: str, contract_fingerprint: str, kind: EncodeKind) -> str:
    """The key of a cached embedding: ``emb:{kind}:sha256([fingerprint, kind, text])``.

    The text is hashed exactly as given (not normalised): an encoder may tell case and
    spacing apart, so only byte-identical inputs may share a vector. The contract
    fingerprint pins model, pooling and normalisation, so a model upgrade misses.
    """
    if kind not in _KINDS:
        raise InputError(f"embedding kind must be one of {_KINDS}, got {kind!r}")
    if not contract_fingerprint:
        raise InputError("embedding cache key needs the encoder's contract fingerprint")
    return f"emb:{kind}:{_digest([contract_fingerprint, kind, text])}"
