"""Search results ↔ JSON bytes for the result cache (no pickle: a cache shared through Redis
must never execute what it reads).

``results_from_bytes(results_to_bytes(r)) == r`` for every :class:`~ragfleet.types.Results`
whose metadata is JSON (it is: the docstore keeps it as JSON). Floats survive exactly
(``json`` writes ``repr(float)``, the shortest string that reads back to the same double).
A value that does not parse into results raises :class:`InputError`; the caches treat that
as a corrupt entry, i.e. a miss.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ragfleet.errors import InputError
from ragfleet.types import CacheInfo, Hit, Results

FORMAT = 1


def results_to_bytes(results: Results) -> bytes:
    """UTF-8 JSON of ``results.to_dict()`` with a format number."""
    body = {"format": FORMAT, **results.to_dict()}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def results_from_bytes(data: bytes) -> Results:
    """The :class:`Results` that :func:`results_to_bytes` wrote.

    Raises:
        InputError: ``data`` is not JSON of that shape (a corrupt or foreign entry).
    """
    try:
        body = json.loads(data)
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise InputError(f"not a ragfleet results entry (format {FORMAT})")
        return Results(
            hits=tuple(_hit(h) for h in body["hits"]),
            timings_ms={str(k): float(v) for k, v in body["timings_ms"].items()},
            coverage=float(body["coverage"]),
            missing_shards=tuple(int(s) for s in body["missing_shards"]),
            mode=str(body["mode"]),
            cache=_cache_info(body["cache"]),
        )
    except InputError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise InputError(f"corrupt cached results ({type(e).__name__}: {e}); drop the entry") from e


def _hit(h: Mapping[str, Any]) -> Hit:
    return Hit(
        rank=int(h["rank"]),
        doc_id=str(h["doc_id"]),
        chunk_id=str(h["chunk_id"]),
        score=float(h["score"]),
        text=str(h["text"]),
        shard=int(h["shard"]),
        title=str(h["title"]),
        scores={str(k): float(v) for k, v in h["scores"].items()},
        ranks={str(k): int(v) for k, v in h["ranks"].items()},
        metadata=dict(h["metadata"]),
    )


def _cache_info(c: Mapping[str, Any]) -> CacheInfo:
    kind = c["kind"]
    if kind not in (None, "exact", "semantic"):
        raise ValueError(f"unknown cache kind {kind!r}")
    similarity = c.get("similarity")
    return CacheInfo(
        hit=bool(c["hit"]),
        kind=kind,
        matched_query=c.get("matched_query"),
        similarity=None if similarity is None else float(similarity),
    )
