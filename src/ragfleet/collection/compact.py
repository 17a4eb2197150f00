"""Online compaction: rebuild shards whose tombstones pass a threshold (issue 5 §4).

Deletes and replacements only tombstone rows (FAISS HNSW cannot remove vectors), so a
shard's files grow with every change. For a shard whose tombstone ratio
``(rows - live) / rows`` is at least the threshold, compaction

1. builds a fresh shard in ``shard-NNN.compacting/`` holding only the live chunks, with
   new consecutive rows (:func:`ragfleet.collection.rebuild.rebuild`: vectors read back
   where the index keeps them exactly, embedded again otherwise), and checkpoints it
   (fresh docstore, new index files, empty log);
2. renames it to ``shard-NNN.ready/`` (complete), then
3. swaps it in under the collection's swap lock (``Collection.swap_shard``): queries keep
   running on the old shard until the swap, wait only for the two renames and the reload,
   then run on the new one. Writers wait for the whole compaction.

A crash at any point leaves the old shard or the new one (``recover_swap`` runs on open).
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from ragfleet.collection.rebuild import rebuild, stored_or_embedded
from ragfleet.errors import ConfigError
from ragfleet.index import faults
from ragfleet.index.atomic import fsync_dir
from ragfleet.index.shard import CheckpointPolicy, Shard

if TYPE_CHECKING:
    from ragfleet.collection.writes import CollectionWrites as Collection

_NO_AUTO_CHECKPOINT = CheckpointPolicy(max_wal_bytes=2**62, max_batches=2**62)


def tombstone_ratio(shard: Shard) -> float:
    """``(rows - live rows) / rows`` of a shard (0 for an empty one)."""
    n_rows, n_live = shard.rows.n_rows, shard.rows.n_live
    return (n_rows - n_live) / n_rows if n_rows else 0.0


def compact_collection(col: Collection, threshold: float = 0.2) -> list[int]:
    """Compact every shard of ``col`` with tombstones and a ratio >= ``threshold``.

    Call with the collection's write mutex held (``Collection.compact`` does).
    """
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"compaction threshold must be in [0, 1], got {threshold}")
    done = []
    for i, shard in enumerate(col.shards):
        ratio = tombstone_ratio(shard)
        if ratio > 0 and ratio >= threshold:
            compact_shard(col, i)
            done.append(i)
    return done


def compact_shard(col: Collection, i: int, batch_docs: int = 256) -> None:
    """Rebuild shard ``i`` of ``col`` beside the live one, then swap it in."""
    shard = col.shards[i]
    staging = shard.path.with_name(shard.path.name + ".compacting")
    ready = shard.path.with_name(shard.path.name + ".ready")
    shutil.rmtree(staging, ignore_errors=True)
    fresh = Shard(
        staging, i, shard.config, shard.dim, shard.fingerprint,
        durable=False, policy=_NO_AUTO_CHECKPOINT,
    )  # fmt: skip
    try:
        vectors = stored_or_embedded(col.encoder, col.config.encoder.batch_tokens)
        rebuild([shard], [fresh], vectors, lambda doc, source, v: 0, batch_docs=batch_docs)
        fresh.checkpoint()
    finally:
        fresh.close()
    faults.point("compact.built")
    staging.rename(ready)
    fsync_dir(ready.parent)
    col.swap_shard(i, ready)
