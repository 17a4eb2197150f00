"""Re-place a collection's chunks on ``N`` shards by k-means centroids (no re-embedding).

Reads every live chunk and its stored vector from the source collection, fits one
centroid per shard on a sample of the vectors (:func:`ragfleet.cluster.kmeans.fit_centroids`),
places each document on the shard of its mean vector's nearest centroid, and writes the
chunks through the destination shards' write-ahead logs, one document per batch at most
(a document is never split). The centroids are saved beside the new collection, where
:class:`ragfleet.fleet.Fleet` finds them for ``probe_shards`` routing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ragfleet.cluster.kmeans import Centroids, fit_centroids, sample_rows
from ragfleet.collection import Collection
from ragfleet.config import ShardingConfig
from ragfleet.errors import CollectionError, InputError
from ragfleet.index.shard import Shard
from ragfleet.index.writebatch import ChunkRecord
from ragfleet.ingest.hashing import content_hash

BATCH_CHUNKS = 4096


def reshard_by_centroids(
    src: Collection, dst: str | Path, n_shards: int, *, sample_size: int = 20_000, seed: int = 0
) -> tuple[Collection, Centroids]:
    """A new collection at ``dst`` holding ``src``'s chunks on ``n_shards`` centroid-placed
    shards, and its centroids (also saved in ``dst``)."""
    records = [r for shard in src.shards for r in _live_records(shard)]
    if not records:
        raise InputError(f"collection {src.path} has no live chunks to reshard")
    vectors = np.stack([r.vector for r in records])
    sample = vectors[sample_rows(len(vectors), sample_size, seed)]
    centroids = fit_centroids(sample, n_shards, metric=src.config.index.metric, seed=seed)
    by_doc: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        by_doc[r.doc_id].append(i)
    place = centroids.place({d: vectors[idx] for d, idx in by_doc.items()})
    config = src.config.replace(sharding=ShardingConfig(n_shards=n_shards))
    col = Collection.create(dst, config, encoder=src.encoder)
    per_shard: dict[int, list[ChunkRecord]] = defaultdict(list)
    for doc_id in sorted(by_doc):
        per_shard[place[doc_id]].extend(records[i] for i in by_doc[doc_id])
    for s, recs in sorted(per_shard.items()):
        for batch in _doc_batches(recs, BATCH_CHUNKS):
            col.shards[s].write(batch)
    col.checkpoint()
    centroids.save(col.path)
    return col, centroids


def _live_records(shard: Shard) -> Iterator[ChunkRecord]:
    """Every live chunk of ``shard`` with its stored vector, in row order."""
    n = shard.dense.ntotal
    rows = shard.rows.live_rows().tolist()
    if not rows:
        return
    vectors = _reconstruct(shard, n)
    doc_hash = shard.doc_hashes()
    stored = shard.fetch(rows)
    for r in rows:
        c = stored[r]
        yield ChunkRecord(
            chunk_id=c.chunk_id,
            doc_id=c.doc_id,
            n=c.n,
            text=c.text,
            title=c.title,
            metadata=c.metadata,
            content_hash=content_hash(c.title, c.text),
            doc_hash=doc_hash[c.doc_id],
            vector=vectors[r],
        )


def _reconstruct(shard: Shard, n: int) -> npt.NDArray[np.float32]:
    try:
        return np.asarray(shard.dense.faiss_index.reconstruct_n(0, n), dtype=np.float32)
    except RuntimeError as e:
        raise CollectionError(
            f"shard {shard.shard_id}'s index ({shard.dense.spec}) cannot return its vectors "
            f"({e}); reshard from a flat or hnsw collection"
        ) from e


def _doc_batches(records: Sequence[ChunkRecord], size: int) -> Iterator[list[ChunkRecord]]:
    """Consecutive batches of about ``size`` chunks that never split a document."""
    batch: list[ChunkRecord] = []
    for r in records:
        if len(batch) >= size and r.doc_id != batch[-1].doc_id:
            yield batch
            batch = []
        batch.append(r)
    if batch:
        yield batch
