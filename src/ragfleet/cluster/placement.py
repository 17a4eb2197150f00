"""Placement of documents on shards.

Hash placement: ``shard(doc_id) = int(blake2b(doc_id)[:8]) mod N``. Every chunk of a
document lands on the same shard, so a document is replaced or deleted on one shard in
one write batch; the hash is stable across processes and Python versions (unlike
``hash()``), so a collection reopens with the same placement.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from ragfleet.errors import ConfigError


def hash_shard(doc_id: str, n_shards: int) -> int:
    """The shard that holds ``doc_id`` under hash placement over ``n_shards`` shards."""
    if n_shards < 1:
        raise ConfigError(f"n_shards must be >= 1, got {n_shards}")
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % n_shards


def group_by_shard(doc_ids: Iterable[str], n_shards: int) -> dict[int, list[str]]:
    """doc_ids grouped by their shard (shards with no documents are absent)."""
    out: dict[int, list[str]] = {}
    for doc_id in doc_ids:
        out.setdefault(hash_shard(doc_id, n_shards), []).append(doc_id)
    return out
