"""Generations of a collection: model upgrades and reshards without downtime (DESIGN.md §5).

A collection holds its root generation or a ``CURRENT`` pointer to ``gen-NNNNNN/``
(:mod:`ragfleet.collection.layout`). A new generation is built beside the live one, marked
``READY`` once verified, and swapped in by one atomic rename of ``CURRENT`` (temp file,
fsync, rename, fsync dir), so a reader sees the old pointer or the new one, never
neither. A generation without ``READY`` is being built: ``ragfleet reindex`` resumes it.
``gc`` removes every generation but the current one and any still building.

Reindex, reshard and gc are writes: they take the collection's writer lock (one writer per
collection), so they are refused while another process — a server, an ingest — writes to
it, instead of racing it and losing the writes that land in the old generation.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ragfleet.cluster.kmeans import Centroids
from ragfleet.collection.info import CollectionInfo
from ragfleet.collection.layout import CURRENT, READY, ROOT, Layout
from ragfleet.collection.rebuild import (
    Place,
    embedded_tokens,
    embedded_vectors,
    rebuild,
    shard_means,
    stored_or_embedded,
    stored_tokens,
)
from ragfleet.errors import CollectionError
from ragfleet.index.atomic import atomic_write_bytes, fsync_dir
from ragfleet.index.lock import WriterLock
from ragfleet.index.shard import Shard, resolve_shard_dir

if TYPE_CHECKING:
    from ragfleet.collection.core import Collection
    from ragfleet.config import CollectionConfig
    from ragfleet.embed.base import Encoder


@dataclass(frozen=True)
class Generation:
    """One generation of a collection as :func:`list_generations` reports it."""

    name: str
    path: Path
    state: str  # "current", "ready" (an old, complete one) or "building"
    encoder: str
    fingerprint: str

    def to_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "path": str(self.path),
            "state": self.state,
            "encoder": self.encoder,
            "fingerprint": self.fingerprint,
        }


def list_generations(root: Path) -> list[Generation]:
    """Every generation of the collection at ``root``, oldest first."""
    layout = Layout.of(root)
    if not layout.root.is_dir():
        raise CollectionError(f"collection {root} does not exist")
    live = layout.current_name()
    out = []
    for name in layout.names():
        path = layout.generation(name)
        encoder, fingerprint = _describe(layout.info(path))
        ready = layout.is_ready(name)
        state = "current" if name == live else "ready" if ready else "building"
        out.append(Generation(name, path, state, encoder, fingerprint))
    return out


def _describe(info_file: Path) -> tuple[str, str]:
    try:
        doc = json.loads(info_file.read_text("utf-8"))
        return str(doc["config"]["encoder"]["name"]), str(doc["fingerprint"])
    except (OSError, KeyError, ValueError):
        return "?", "?"  # a generation whose creation was interrupted


def mark_ready(path: Path) -> None:
    """Record that a generation is complete and verified."""
    atomic_write_bytes(path / READY, b"verified\n")


def swap_current(root: Path, name: str) -> None:
    """Make ``name`` the live generation: one atomic rename of ``CURRENT``."""
    layout = Layout.of(root)
    if not layout.is_ready(name):
        raise CollectionError(f"generation {name} of {root} is not verified (no {READY})")
    if name == ROOT:
        (layout.root / CURRENT).unlink(missing_ok=True)
        fsync_dir(layout.root)
        return
    atomic_write_bytes(layout.root / CURRENT, f"{name}\n".encode())


def gc_generations(root: Path) -> list[str]:
    """Remove every complete generation but the current one; returns the names removed.

    A generation being built is kept (a reindex resumes it). For the root generation its
    ``collection.json`` and shard directories are removed, the rest stays. Takes the
    writer lock (refused while another process writes).
    """
    layout = Layout.of(root)
    with WriterLock.acquire(layout.root):
        removed = []
        for g in list_generations(root):
            if g.state != "ready":
                continue
            if g.name == ROOT:
                layout.info(layout.root).unlink()
                for shard in layout.root_shard_dirs():
                    shutil.rmtree(shard)
            else:
                shutil.rmtree(g.path)
            removed.append(g.name)
        if removed:
            fsync_dir(layout.root)
        return removed


@dataclass(frozen=True)
class ReindexReport:
    """What :func:`reindex` (or a reshard) did."""

    generation: str
    documents: int
    chunks: int
    documents_embedded: int
    seconds: float


def read_only_shards(path: Path, info: CollectionInfo) -> list[Shard]:
    """The shards of the generation at ``path``, opened read-only (no encoder needed)."""
    fingerprint, dim = info.contract.fingerprint(), info.contract.vector_dim
    shards: list[Shard] = []
    try:
        for i, d in enumerate(Layout.of(path).shards(info.config.sharding.n_shards, path)):
            shards.append(
                Shard(resolve_shard_dir(d), i, info.config, dim, fingerprint, read_only=True)
            )
    except BaseException:
        for s in shards:
            s.close()
        raise
    return shards


@contextlib.contextmanager
def writing(root: Path, lock: WriterLock | None) -> Iterator[WriterLock]:
    """The writer lock: ``lock`` when the caller holds it, else taken for the block."""
    if lock is not None:
        yield lock
        return
    with WriterLock.acquire(root) as taken:
        yield taken


def reindex(
    root: Path, encoder_name: str, *, batch_docs: int = 64, lock: WriterLock | None = None
) -> ReindexReport:
    """Build a generation of the collection at ``root`` under encoder ``encoder_name``
    beside the live one, verify it, then swap ``CURRENT`` to it.

    The new generation keeps the live one's chunks (ids, texts, metadata, document hashes),
    each document on the same shard, and re-embeds their texts, so no source is needed; it
    keeps the chunker and the placement (a centroid-placed collection gets centroids in
    the new model's space: each shard's mean vector). Resumable: a re-run continues the
    generation being built, skipping documents already copied (same doc hash).
    Verification: equal document and chunk counts, and a sample of chunks each retrieved
    as its own nearest neighbour by its freshly embedded text (the probe vectors of the
    contract are checked when the generation is opened). The live generation is only read.
    Takes the writer lock, or runs under ``lock`` when the caller holds it
    (:meth:`Collection.reindex <ragfleet.collection.Collection.reindex>`).
    """
    from ragfleet.config import EncoderConfig
    from ragfleet.embed.registry import encoder_for

    truncate_dim = CollectionInfo.read(Layout.of(root).current()).config.encoder.truncate_dim
    encoder = encoder_for(EncoderConfig(encoder_name, truncate_dim=truncate_dim))

    def config_of(old: CollectionConfig) -> CollectionConfig:
        return old.replace(encoder=EncoderConfig(encoder_name, truncate_dim=truncate_dim))

    return build_generation(
        root, config_of, encoder, reembed=True, batch_docs=batch_docs, lock=lock
    )


def build_generation(
    root: Path,
    config_of: Callable[[CollectionConfig], CollectionConfig],
    encoder: Encoder,
    *,
    reembed: bool,
    batch_docs: int = 64,
    lock: WriterLock | None = None,
    place: Place | None = None,
    centroids: Centroids | None = None,
) -> ReindexReport:
    """Build, verify and swap in a new generation whose config is ``config_of(old)``:
    documents re-embedded with ``encoder`` (``reembed``) or copied with their stored
    vectors (re-embedded where the index does not keep them), each on the same shard or
    where ``place`` (doc_id, source shard, vectors) → shard says, with ``centroids``
    saved for centroid placement (default: each new shard's mean vector). Shared by
    reindex and reshard."""
    t0 = time.perf_counter()
    layout = Layout.of(root)
    with writing(layout.root, lock) as held:
        old_path = layout.current()
        old = CollectionInfo.read(old_path)
        config = config_of(old.config)
        name = layout.building() or layout.next_name()
        target = layout.generation(name)
        old_shards = read_only_shards(old_path, old)
        try:
            start = centroids
            if start is None and config.sharding.placement == "centroids":
                start = Centroids.load(old_path)  # replaced by the new space's, below
            new = _open_target(target, config, encoder, held, start)
            try:
                tokens = config.encoder.batch_tokens
                vectors = (embedded_vectors if reembed else stored_or_embedded)(encoder, tokens)
                have = {d: h for s in new.shards for d, h in s.doc_hashes().items()}
                where: Place = place or (lambda doc, source, v: source)
                toks = (
                    embedded_tokens(encoder, tokens, config.tokens.codec, config.tokens.pool)
                    if reembed and config.tokens.enabled
                    else stored_tokens
                )
                embedded = rebuild(
                    old_shards, new.shards, vectors, where, batch_docs=batch_docs, skip=have,
                    tokens=toks,
                )  # fmt: skip
                stale = sorted(set(have) - {d for s in old_shards for d in s.doc_hashes()})
                if stale:
                    new.delete(stale)
                new.checkpoint()
                if config.sharding.placement == "centroids":
                    stored = stored_or_embedded(encoder, tokens)
                    means = Centroids(shard_means(new.shards, stored), config.index.metric)
                    (centroids or means).save(target)
                docs, chunks = _verify(old_shards, new)
            finally:
                new.close()
        finally:
            for s in old_shards:
                s.close()
        mark_ready(target)
        swap_current(layout.root, name)
    return ReindexReport(name, docs, chunks, embedded, time.perf_counter() - t0)


def _open_target(
    target: Path,
    config: CollectionConfig,
    encoder: Encoder,
    lock: WriterLock,
    centroids: Centroids | None,
) -> Collection:
    """The generation being built: resumed, or created beside the live one."""
    from ragfleet.collection.core import Collection

    if Layout.of(target).info(target).is_file():
        return Collection.open(target, encoder=encoder, durable=False, _held_lock=lock)
    shutil.rmtree(target, ignore_errors=True)  # a creation interrupted before its config
    return Collection.create(
        target, config, encoder=encoder, durable=False, centroids=centroids, _held_lock=lock
    )


def _verify(old_shards: list[Shard], new: Collection, sample: int = 8) -> tuple[int, int]:
    """Counts equal, and sampled chunks find themselves; returns (documents, chunks)."""
    from ragfleet.collection.writer import embed_input

    n_docs = sum(s.rows.n_docs for s in old_shards)
    n_chunks = sum(s.rows.n_live for s in old_shards)
    stats = new.stats()
    if (stats["documents"], stats["chunks"]) != (n_docs, n_chunks):
        raise CollectionError(
            f"verification failed: the new generation holds {stats['documents']} documents "
            f"/ {stats['chunks']} chunks, the live one {n_docs} / {n_chunks}; re-run to "
            "catch up"
        )
    for shard in new.shards:
        for c in shard.live_chunks(limit=sample):
            vec = new.encoder.encode([embed_input(c.title, c.text)], kind="document")
            _, rows = shard.dense.search(vec, 10)
            if c.row not in rows[0].tolist():
                raise CollectionError(
                    f"verification failed: chunk {c.chunk_id} is not among the 10 nearest "
                    "neighbours of its own embedding in the new generation"
                )
    return n_docs, n_chunks
