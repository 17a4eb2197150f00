"""Resharding: the same documents on ``N`` shards, placed by hash or by k-means centroids.

``ragfleet reshard DIR --shards N --placement hash|centroids`` builds a new generation
beside the live one and swaps it in through ``CURRENT`` (or, with ``--out``, writes a new
collection). No document is re-embedded where the index keeps its vectors (flat, hnsw);
documents are never split. With centroid placement, k-means
(:func:`ragfleet.cluster.kmeans.fit_centroids`) runs on a sample of the stored chunk
vectors, each document goes to the shard nearest its chunks' mean vector, and the
centroids are saved in the generation, where writes (new documents are placed by them)
and routing (``--probe-shards``) find them through the collection's placement.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from ragfleet.cluster.kmeans import Centroids, fit_centroids, sample_rows
from ragfleet.cluster.placement import CentroidPlacement, HashPlacement, Placement
from ragfleet.collection.generations import (
    ReindexReport,
    build_generation,
    read_only_shards,
    writing,
)
from ragfleet.collection.info import CollectionInfo
from ragfleet.collection.layout import Layout
from ragfleet.collection.rebuild import Vectors, stored_or_embedded
from ragfleet.config import CollectionConfig, ShardingConfig
from ragfleet.embed.base import Encoder
from ragfleet.errors import InputError
from ragfleet.index.lock import WriterLock

PlacementKind = Literal["hash", "centroids"]


def reshard(
    root: Path,
    n_shards: int,
    placement: PlacementKind = "hash",
    *,
    sample_size: int = 20_000,
    seed: int = 0,
    batch_docs: int = 256,
    lock: WriterLock | None = None,
) -> ReindexReport:
    """Re-place the collection at ``root`` on ``n_shards`` shards in a new generation."""
    from ragfleet.embed.registry import encoder_for

    sharding = ShardingConfig(n_shards=n_shards, placement=placement)
    layout = Layout.of(root)
    with writing(layout.root, lock) as held:
        old = CollectionInfo.read(layout.current())
        encoder = encoder_for(old.config.encoder)
        centroids, target = _target(layout, old, encoder, sharding, sample_size, seed)

        def config_of(c: CollectionConfig) -> CollectionConfig:
            return c.replace(sharding=sharding)

        return build_generation(
            layout.root, config_of, encoder, reembed=False, batch_docs=batch_docs,
            lock=held, place=lambda doc, source, v: target.shard_of(doc, v),
            centroids=centroids,
        )  # fmt: skip


def reshard_to(
    root: Path,
    out: Path,
    n_shards: int,
    placement: PlacementKind = "hash",
    *,
    sample_size: int = 20_000,
    seed: int = 0,
    batch_docs: int = 256,
) -> int:
    """Write the collection at ``root`` (only read) as a new collection at ``out`` with
    ``n_shards`` shards; all or nothing (built beside ``out``, renamed into place).
    Returns how many documents it holds."""
    import os
    import shutil

    from ragfleet.collection.core import Collection
    from ragfleet.collection.rebuild import rebuild
    from ragfleet.embed.registry import encoder_for
    from ragfleet.errors import CollectionError

    if out.exists():
        raise CollectionError(f"{out} already exists; choose another --out or delete it")
    layout = Layout.of(root)
    old = CollectionInfo.read(layout.current())
    encoder = encoder_for(old.config.encoder)
    sharding = ShardingConfig(n_shards=n_shards, placement=placement)
    centroids, target = _target(layout, old, encoder, sharding, sample_size, seed)
    config = old.config.replace(sharding=sharding)
    tmp = Layout.of(out).build_dir(os.getpid())
    shutil.rmtree(tmp, ignore_errors=True)
    sources = read_only_shards(layout.current(), old)
    try:
        with Collection.create(
            tmp, config, encoder=encoder, durable=False, centroids=centroids
        ) as new:
            vectors = stored_or_embedded(encoder, config.encoder.batch_tokens)
            written = rebuild(
                sources, new.shards, vectors, lambda doc, source, v: target.shard_of(doc, v),
                batch_docs=batch_docs,
            )  # fmt: skip
            new.checkpoint()
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        for s in sources:
            s.close()
    return written


def _target(
    layout: Layout,
    old: CollectionInfo,
    encoder: Encoder,
    sharding: ShardingConfig,
    sample_size: int,
    seed: int,
) -> tuple[Centroids | None, Placement]:
    """The placement to reshard into (and its centroids, fitted for centroid placement)."""
    if sharding.placement != "centroids":
        return None, HashPlacement(sharding.n_shards)
    centroids = _fit(layout, old, encoder, sharding.n_shards, sample_size, seed)
    return centroids, CentroidPlacement(centroids)


def _fit(
    layout: Layout, old: CollectionInfo, encoder: Encoder, n: int, sample_size: int, seed: int
) -> Centroids:
    """k-means centroids over a sample of the live generation's chunk vectors."""
    shards = read_only_shards(layout.current(), old)
    try:
        vectors = stored_or_embedded(encoder, old.config.encoder.batch_tokens)
        parts: list[Vectors] = []
        total = sum(s.rows.n_live for s in shards)
        for s in shards:
            chunks = s.live_chunks()
            if not chunks:
                continue
            keep = sample_rows(
                len(chunks), max(1, sample_size * len(chunks) // max(total, 1)), seed
            )
            parts.append(vectors(s, [chunks[i] for i in keep.tolist()]))
    finally:
        for s in shards:
            s.close()
    if not parts:
        raise InputError(f"collection {layout.root} has no live chunks to reshard")
    sample = np.concatenate(parts)
    if len(sample) < n:
        raise InputError(f"{len(sample)} chunks cannot be placed on {n} shards by k-means")
    return fit_centroids(sample, n, metric=old.config.index.metric, seed=seed)
