"""Online compaction: rebuild shards whose tombstones pass a threshold (issue 5 §4).

Deletes and replacements only tombstone rows (FAISS HNSW cannot remove vectors), so a
shard's files grow with every change. For a shard whose tombstone ratio
``(rows - live) / rows`` is at least the threshold, compaction

1. builds a fresh shard in ``shard-NNN.compacting/`` holding only the live chunks, with
   new consecutive rows — vectors are read back from the FAISS index where that is exact
   (``flat``, ``hnsw``: flat storage), and re-embedded from the stored text otherwise
   (IVF and quantised specs do not keep the original vectors; the pinned contract makes
   the re-embedding reproduce them) — and checkpoints it (fresh docstore, so nothing to
   VACUUM; new index files; empty log);
2. renames it to ``shard-NNN.ready/`` (complete), then
3. swaps it in under the collection's swap lock (``Collection.swap_shard``): queries keep
   running on the old shard until the swap, wait only for the two renames and the reload,
   then run on the new one. Writers wait for the whole compaction.

A crash at any point leaves the old shard or the new one (``recover_swap`` runs on open).
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ragfleet.errors import ConfigError
from ragfleet.index.atomic import fsync_dir
from ragfleet.index.shard import CheckpointPolicy, Shard
from ragfleet.index.writebatch import ChunkRecord

if TYPE_CHECKING:
    from ragfleet.collection import Collection
    from ragfleet.index.docstore import NewChunk

EXACT_KINDS = ("flat", "hnsw")
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
        staging,
        i,
        shard.config,
        shard.dim,
        shard.fingerprint,
        durable=False,
        policy=_NO_AUTO_CHECKPOINT,
    )
    try:
        doc_ids = sorted(shard.doc_hashes())
        step = len(doc_ids) if fresh.dense.needs_training else batch_docs  # train on all
        for start in range(0, len(doc_ids), max(1, step)):
            chunks = shard.chunks_of(doc_ids[start : start + step])
            vectors = _vectors(col, shard, chunks)
            fresh.write([stored_record(c, v) for c, v in zip(chunks, vectors, strict=True)])
        fresh.checkpoint()
    finally:
        fresh.close()
    staging.rename(ready)
    fsync_dir(ready.parent)
    col.swap_shard(i, ready)


def _vectors(col: Collection, shard: Shard, chunks: list[NewChunk]) -> npt.NDArray[np.float32]:
    """The stored vectors of ``chunks``: read back where exact, else re-embedded."""
    if shard.dense.dense_spec.kind in EXACT_KINDS:
        index = shard.dense.faiss_index
        out = np.empty((len(chunks), shard.dim), dtype=np.float32)
        for j, c in enumerate(chunks):
            out[j] = index.reconstruct(int(c.row))
        return out
    from ragfleet.embed.bulk import embed_bulk
    from ragfleet.writer import embed_input

    texts = [embed_input(c.title, c.text) for c in chunks]
    return embed_bulk(col.encoder, texts, batch_tokens=col.config.encoder.batch_tokens)


def stored_record(c: NewChunk, vector: npt.NDArray[np.float32]) -> ChunkRecord:
    """The write-batch record that re-adds a stored chunk with ``vector``."""
    return ChunkRecord(
        chunk_id=c.chunk_id,
        doc_id=c.doc_id,
        n=c.n,
        title=c.title,
        text=c.text,
        metadata=dict(c.metadata),
        content_hash=c.content_hash,
        doc_hash=c.doc_hash,
        vector=vector,
    )
