"""Generations of a collection: model upgrades without downtime (DESIGN.md §5, issue 5).

Layout. A collection directory either holds one generation directly (``collection.json``
and ``shard-NNN/`` at its root: every collection before its first reindex) or a pointer::

    <collection>/CURRENT          one line: the name of the live generation, e.g. gen-000002
    <collection>/gen-000002/      collection.json, shard-NNN/, READY (once verified)

The root generation is listed as ``root``. Swapping generations is one atomic rename
(``CURRENT`` is replaced by temp file, fsync, rename, fsync dir), so a reader sees the old
pointer or the new one, never neither. A generation without ``READY`` is being built:
``ragfleet reindex`` (:func:`reindex`) resumes it. ``gc`` removes every generation but
the current one and any still building.

Reindex and gc are writes: they take the collection's writer lock (one writer per
collection), so they are refused while another process — a server, an ingest — writes to
it, instead of racing it and losing the writes that land in the old generation.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ragfleet.errors import CollectionError
from ragfleet.index.atomic import atomic_write_bytes, fsync_dir
from ragfleet.index.lock import WriterLock

if TYPE_CHECKING:
    from ragfleet.collection import Collection, CollectionInfo
    from ragfleet.embed.base import Encoder
    from ragfleet.index.docstore import NewChunk
    from ragfleet.index.shard import Shard

CURRENT = "CURRENT"
READY = "READY"
ROOT = "root"
_GEN_RE = re.compile(r"^gen-(\d{6})$")


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


def current_name(root: Path) -> str:
    """The live generation's name: ``CURRENT``'s content, or ``root`` without one."""
    pointer = root / CURRENT
    if not pointer.is_file():
        return ROOT
    name = pointer.read_text("utf-8").strip()
    if not _GEN_RE.match(name) or not (root / name).is_dir():
        raise CollectionError(
            f"{pointer} names {name!r}, which is not a generation directory of {root}; "
            "point it at an existing gen-NNNNNN (see `ragfleet generations`)"
        )
    return name


def generation_path(root: Path, name: str) -> Path:
    return root if name == ROOT else root / name


def current_generation(root: Path) -> Path:
    """The directory of the live generation (``root`` itself for a single-generation one)."""
    return generation_path(root, current_name(root))


def _names(root: Path) -> list[str]:
    gens = sorted(p.name for p in root.iterdir() if _GEN_RE.match(p.name) and p.is_dir())
    return ([ROOT] if (root / "collection.json").is_file() else []) + gens


def _number(name: str) -> int:
    m = _GEN_RE.match(name)
    return int(m.group(1)) if m else 1


def next_generation(root: Path) -> str:
    """The name a new generation gets: one past the highest existing number."""
    return f"gen-{max([_number(n) for n in _names(root)] + [1]) + 1:06d}"


def building_generation(root: Path) -> str | None:
    """The newest generation still being built (no ``READY``), if any: a reindex resumes it."""
    live = current_name(root)
    for name in reversed(_names(root)):
        if name not in (live, ROOT) and not (root / name / READY).exists():
            return name
    return None


def list_generations(root: Path) -> list[Generation]:
    """Every generation of the collection at ``root``, oldest first."""
    if not root.is_dir():
        raise CollectionError(f"collection {root} does not exist")
    live = current_name(root)
    out = []
    for name in _names(root):
        path = generation_path(root, name)
        encoder, fingerprint = _describe(path)
        ready = name == ROOT or (path / READY).exists()
        state = "current" if name == live else "ready" if ready else "building"
        out.append(Generation(name, path, state, encoder, fingerprint))
    return out


def _describe(path: Path) -> tuple[str, str]:
    try:
        doc = json.loads((path / "collection.json").read_text("utf-8"))
        return str(doc["config"]["encoder"]["name"]), str(doc["fingerprint"])
    except (OSError, KeyError, ValueError):
        return "?", "?"  # a generation whose creation was interrupted


def mark_ready(path: Path) -> None:
    """Record that a generation is complete and verified."""
    atomic_write_bytes(path / READY, b"verified\n")


def swap_current(root: Path, name: str) -> None:
    """Make ``name`` the live generation: one atomic rename of ``CURRENT``."""
    if name != ROOT and not (root / name / READY).exists():
        raise CollectionError(f"generation {name} of {root} is not verified (no {READY})")
    if name == ROOT:
        (root / CURRENT).unlink(missing_ok=True)
        fsync_dir(root)
        return
    atomic_write_bytes(root / CURRENT, f"{name}\n".encode())


def gc_generations(root: Path) -> list[str]:
    """Remove every complete generation but the current one; returns the names removed.

    A generation being built is kept (a reindex resumes it). For the root generation its
    ``collection.json`` and ``shard-NNN/`` directories are removed, the rest stays.
    Takes the writer lock (refused while another process writes).
    """
    with WriterLock.acquire(root):
        return _gc(root)


def _gc(root: Path) -> list[str]:
    removed = []
    for g in list_generations(root):
        if g.state != "ready":
            continue
        if g.name == ROOT:
            (root / "collection.json").unlink()
            for shard in root.glob("shard-[0-9][0-9][0-9]*"):
                shutil.rmtree(shard)
        else:
            shutil.rmtree(g.path)
        removed.append(g.name)
    if removed:
        fsync_dir(root)
    return removed


@dataclass(frozen=True)
class ReindexReport:
    """What :func:`reindex` did."""

    generation: str
    documents: int
    chunks: int
    documents_embedded: int
    seconds: float


def reindex(
    root: Path, encoder_name: str, *, batch_docs: int = 64, lock: WriterLock | None = None
) -> ReindexReport:
    """Build a generation of the collection at ``root`` under encoder ``encoder_name``
    beside the live one, verify it, then swap ``CURRENT`` to it.

    The new generation keeps the live one's chunks (ids, texts, metadata, document hashes)
    and re-embeds their texts, so no source is needed; it keeps the chunker, so a chunker
    change needs a re-ingest from the source. Resumable: a re-run continues the generation
    being built, skipping documents already copied (same doc hash). Verification: equal
    document and chunk counts, and a sample of chunks each retrieved as its own nearest
    neighbour by its freshly embedded text (the probe vectors of the contract are checked
    when the generation is opened). The live generation is only read, never changed.
    Takes the writer lock, or runs under ``lock`` when the caller holds it
    (:meth:`Collection.reindex <ragfleet.collection.Collection.reindex>`).
    """
    import time

    from ragfleet.collection import CollectionInfo
    from ragfleet.embed.registry import load_encoder

    t0 = time.perf_counter()
    with contextlib.nullcontext(lock) if lock is not None else WriterLock.acquire(root) as lock:
        old_path = current_generation(root)
        old = CollectionInfo.read(old_path)
        encoder = load_encoder(encoder_name)
        name = building_generation(root) or next_generation(root)
        target = root / name
        old_shards = read_only_shards(old_path, old)
        try:
            new = _open_target(target, old, encoder, encoder_name, lock)
            try:
                embedded = _copy(old_shards, new, batch_docs)
                new.checkpoint()
                docs, chunks = _verify(old_shards, new)
            finally:
                new.close()
        finally:
            for s in old_shards:
                s.close()
        mark_ready(target)
        swap_current(root, name)
    return ReindexReport(name, docs, chunks, embedded, time.perf_counter() - t0)


def read_only_shards(path: Path, info: CollectionInfo) -> list[Shard]:
    """The shards of the generation at ``path``, opened read-only (no encoder needed)."""
    from ragfleet.index.shard import Shard, resolve_shard_dir

    fingerprint, dim = info.contract.fingerprint(), info.contract.dim
    shards: list[Shard] = []
    try:
        for i in range(info.config.sharding.n_shards):
            d = resolve_shard_dir(path / f"shard-{i:03d}")
            shards.append(Shard(d, i, info.config, dim, fingerprint, read_only=True))
    except BaseException:
        for s in shards:
            s.close()
        raise
    return shards


def _open_target(
    target: Path, old: CollectionInfo, encoder: Encoder, encoder_name: str, lock: WriterLock
) -> Collection:
    """The generation being built: resumed, or created beside the live one."""
    from ragfleet.collection import Collection
    from ragfleet.config import EncoderConfig

    if (target / "collection.json").is_file():
        return Collection.open(target, encoder=encoder, durable=False, _held_lock=lock)
    shutil.rmtree(target, ignore_errors=True)  # a creation interrupted before its config
    config = old.config.replace(encoder=EncoderConfig(encoder_name))
    return Collection.create(target, config, encoder=encoder, durable=False, _held_lock=lock)


def _copy(old_shards: list[Shard], new: Collection, batch_docs: int) -> int:
    """Re-embed every live document of the old generation the new one lacks (or holds
    under another hash); delete from the new one what the old one no longer has."""
    have = {d: h for s in new.shards for d, h in s.doc_hashes().items()}
    wanted: set[str] = set()
    embedded = 0
    for shard in old_shards:
        hashes = shard.doc_hashes()
        wanted |= set(hashes)
        todo = sorted(d for d, h in hashes.items() if have.get(d) != h)
        for i in range(0, len(todo), batch_docs):
            chunks = shard.chunks_of(todo[i : i + batch_docs])
            _write_chunks(new, chunks)
            embedded += len(todo[i : i + batch_docs])
    stale = sorted(set(have) - wanted)
    if stale:
        new.delete(stale)
    return embedded


def _write_chunks(new: Collection, chunks: list[NewChunk]) -> None:
    """One write batch per shard: each document with all its chunks, freshly embedded."""
    from ragfleet.cluster.placement import hash_shard
    from ragfleet.compact import stored_record
    from ragfleet.embed.bulk import embed_bulk
    from ragfleet.index.writebatch import ChunkRecord
    from ragfleet.writer import embed_input

    n = new.config.sharding.n_shards
    texts = [embed_input(c.title, c.text) for c in chunks]
    vectors = embed_bulk(new.encoder, texts, batch_tokens=new.config.encoder.batch_tokens)
    per_shard: dict[int, list[ChunkRecord]] = {}
    for c, v in zip(chunks, vectors, strict=True):
        record = stored_record(c, v)
        per_shard.setdefault(hash_shard(c.doc_id, n), []).append(record)
    for shard, records in sorted(per_shard.items()):
        new.shards[shard].write(records)


def _verify(old_shards: list[Shard], new: Collection, sample: int = 8) -> tuple[int, int]:
    """Counts equal, and sampled chunks find themselves; returns (documents, chunks)."""
    from ragfleet.writer import embed_input

    n_docs = sum(s.rows.n_docs for s in old_shards)
    n_chunks = sum(s.rows.n_live for s in old_shards)
    stats = new.stats()
    if (stats["documents"], stats["chunks"]) != (n_docs, n_chunks):
        raise CollectionError(
            f"reindex verification failed: the new generation holds {stats['documents']} "
            f"documents / {stats['chunks']} chunks, the live one {n_docs} / {n_chunks} "
            "(was it written to meanwhile?); re-run `ragfleet reindex` to catch up"
        )
    for shard in new.shards:
        for c in shard.live_chunks(limit=sample):
            vec = new.encoder.encode([embed_input(c.title, c.text)], kind="document")
            _, rows = shard.dense.search(vec, 10)
            if c.row not in rows[0].tolist():
                raise CollectionError(
                    f"reindex verification failed: chunk {c.chunk_id} is not among the 10 "
                    "nearest neighbours of its own embedding in the new generation"
                )
    return n_docs, n_chunks
