"""Rebuilding shards from stored chunks — the one routine compaction, reindex and reshard
share.

:func:`rebuild` reads the live documents of source shards, whole, in batches; gives each
document vectors (read back where the shard keeps them exactly — ``flat``, ``hnsw`` and
the on-disk vectors of ``+refine`` specs — or embedded again from the stored text, which the pinned
contract makes reproduce them); places each document on a target shard; and writes one
batch per target shard and round through ``ShardClient.apply``, so a document is never
split. What differs between the three callers is only where documents go and where their
vectors come from:

* compaction: one source shard → a fresh copy of it, vectors stored or re-embedded;
* reindex: each shard → the same shard of the new generation, vectors from the new encoder;
* reshard: every shard → the new placement's shard, vectors stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from ragfleet.cluster.client import ShardClient
from ragfleet.embed.base import Encoder
from ragfleet.embed.bulk import embed_bulk
from ragfleet.errors import CollectionError
from ragfleet.index.docstore import StoredChunk
from ragfleet.index.shard import Shard
from ragfleet.index.writebatch import ChunkRecord

Vectors = npt.NDArray[np.float32]
#: (the source shard, its chunks) → their vectors ``[n, d]``.
VectorSource = Callable[[Shard, Sequence[StoredChunk]], Vectors]
#: (the source shard, its chunks) → their packed token vectors, or ``None`` (no store).
TokenSource = Callable[[Shard, Sequence[StoredChunk]], "list[npt.NDArray[np.uint8]] | None"]
#: (doc_id, source shard id, the document's chunk vectors) → target shard id.
Place = Callable[[str, int, Vectors], int]


def is_exact(shard: Shard) -> bool:
    """Whether ``shard`` keeps the vectors it was given: the on-disk vectors of a
    ``+refine`` spec, or the float32 storage of ``flat`` and ``hnsw``."""
    return shard.dense.keeps_vectors


def stored_vectors(shard: Shard, chunks: Sequence[StoredChunk]) -> Vectors:
    """The vectors ``shard`` holds for ``chunks`` (:func:`is_exact` shards only)."""
    out = shard.dense.stored_vectors([int(c.row) for c in chunks])
    if out is None:
        raise CollectionError(
            f"shard {shard.shard_id}'s index ({shard.dense.spec}) does not keep its vectors; "
            "embed the chunks again instead"
        )
    return out


def embedded_vectors(encoder: Encoder, batch_tokens: int) -> VectorSource:
    """Vectors embedded again from each chunk's stored title and text."""
    from ragfleet.collection.writer import embed_input

    def embed(shard: Shard, chunks: Sequence[StoredChunk]) -> Vectors:
        texts = [embed_input(c.title, c.text) for c in chunks]
        return embed_bulk(encoder, texts, batch_tokens=batch_tokens)

    return embed


def stored_tokens(
    shard: Shard, chunks: Sequence[StoredChunk]
) -> list[npt.NDArray[np.uint8]] | None:
    """The packed token vectors ``shard`` stores for ``chunks`` (``None`` if it stores none)."""
    return shard.token_rows([c.row for c in chunks])


def embedded_tokens(
    encoder: Encoder, batch_tokens: int, codec_name: str, pool: int = 1
) -> TokenSource:
    """Token vectors embedded again from each chunk's stored title and text (reindex)."""
    from ragfleet.collection.late import embed_with_tokens
    from ragfleet.collection.writer import embed_input
    from ragfleet.index.tokens_codec import TokenCodec

    codec = TokenCodec(codec_name, encoder.dim)

    def embed(shard: Shard, chunks: Sequence[StoredChunk]) -> list[npt.NDArray[np.uint8]]:
        texts = [embed_input(c.title, c.text) for c in chunks]
        return embed_with_tokens(encoder, texts, batch_tokens, codec, pool)[1]

    return embed


def stored_or_embedded(encoder: Encoder, batch_tokens: int) -> VectorSource:
    """Stored vectors where exact, else embedded again."""
    embed = embedded_vectors(encoder, batch_tokens)
    return lambda shard, chunks: (stored_vectors if is_exact(shard) else embed)(shard, chunks)


def documents(
    shard: Shard, batch_docs: int, skip: Mapping[str, str] | None = None
) -> Iterator[list[StoredChunk]]:
    """The live chunks of ``shard``, whole documents per batch of ``batch_docs`` (sorted by
    id); documents whose hash ``skip`` already holds are left out (a resumed reindex)."""
    skip = skip or {}
    ids = sorted(d for d, h in shard.doc_hashes().items() if skip.get(d) != h)
    for i in range(0, len(ids), max(1, batch_docs)):
        yield shard.chunks_of(ids[i : i + batch_docs])


def rebuild(
    sources: Sequence[Shard],
    targets: Sequence[ShardClient],
    vectors: VectorSource,
    place: Place,
    *,
    batch_docs: int = 256,
    skip: Mapping[str, str] | None = None,
    tokens: TokenSource = stored_tokens,
) -> int:
    """Copy every live document of ``sources`` into ``targets``; returns how many.
    Token vectors (collections that store them) come from ``tokens``: the stored ones by
    default, embedded again by a reindex.

    A target whose index must be trained gets its whole share in its first batch (the
    batch size becomes the whole source shard), so it trains on real data.
    """
    if any(bool(t.stats().get("needs_training")) for t in targets):
        batch_docs = max(len(s.doc_hashes()) for s in sources) or 1
    written = 0
    for source in sources:
        for chunks in documents(source, batch_docs, skip):
            toks = tokens(source, chunks)
            per_target = _place(chunks, vectors(source, chunks), toks, source.shard_id, place)
            for target, records in sorted(per_target.items()):
                targets[target].apply(records)
            written += len({c.doc_id for c in chunks})
    return written


def _place(
    chunks: Sequence[StoredChunk],
    vecs: Vectors,
    toks: list[npt.NDArray[np.uint8]] | None,
    source: int,
    place: Place,
) -> dict[int, list[ChunkRecord]]:
    by_doc: dict[str, list[int]] = {}
    for j, c in enumerate(chunks):
        by_doc.setdefault(c.doc_id, []).append(j)
    out: dict[int, list[ChunkRecord]] = {}
    for doc_id, idx in by_doc.items():
        target = place(doc_id, source, vecs[idx])
        out.setdefault(target, []).extend(
            ChunkRecord.of(chunks[j], vecs[j], tokens=None if toks is None else toks[j])
            for j in idx
        )
    return out


def shard_means(shards: Sequence[Shard], vectors: VectorSource, sample: int = 4096) -> Vectors:
    """Per shard, the normalised mean of (up to ``sample`` of) its chunk vectors: the
    centroids that route to the shards as they are (after a reindex)."""
    rows = []
    for s in shards:
        chunks = s.live_chunks(limit=sample)
        if not chunks:
            rows.append(np.zeros(s.dim, dtype=np.float32))
            continue
        mean = vectors(s, chunks).mean(axis=0)
        rows.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
    return np.stack(rows).astype(np.float32)
