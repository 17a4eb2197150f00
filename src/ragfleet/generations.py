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
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ragfleet.errors import CollectionError
from ragfleet.index.atomic import atomic_write_bytes, fsync_dir

if TYPE_CHECKING:
    from ragfleet.collection import Collection
    from ragfleet.index.docstore import NewChunk

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
    """
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


def reindex(root: Path, encoder_name: str, *, batch_docs: int = 64) -> ReindexReport:
    """Build a generation of the collection at ``root`` under encoder ``encoder_name``
    beside the live one, verify it, then swap ``CURRENT`` to it.

    The new generation keeps the live one's chunks (ids, texts, metadata, document hashes)
    and re-embeds their texts, so no source is needed; it keeps the chunker, so a chunker
    change needs a re-ingest from the source. Resumable: a re-run continues the generation
    being built, skipping documents already copied (same doc hash). Verification: equal
    document and chunk counts, and a sample of chunks each retrieved as its own nearest
    neighbour by its freshly embedded text (the probe vectors of the contract are checked
    when the generation is opened). The live generation is only read, never changed;
    writes to it during a reindex make the counts differ: re-run to catch up.
    """
    import time

    from ragfleet.collection import Collection, CollectionInfo
    from ragfleet.config import EncoderConfig
    from ragfleet.embed.registry import load_encoder

    t0 = time.perf_counter()
    old_path = current_generation(root)
    old = CollectionInfo.read(old_path)
    encoder = load_encoder(encoder_name)
    name = building_generation(root) or next_generation(root)
    target = root / name
    if (target / "collection.json").is_file():
        new = Collection.open(target, encoder=encoder, durable=False)
    else:
        shutil.rmtree(target, ignore_errors=True)  # a creation interrupted before its config
        config = old.config.replace(encoder=EncoderConfig(encoder_name))
        new = Collection.create(target, config, encoder=encoder, durable=False)
    try:
        embedded = _copy(old_path, old.config.sharding.n_shards, new, batch_docs)
        new.checkpoint()
        docs, chunks = _verify(old_path, old.config.sharding.n_shards, new)
    finally:
        new.close()
    mark_ready(target)
    swap_current(root, name)
    return ReindexReport(name, docs, chunks, embedded, time.perf_counter() - t0)


def _old_stores(old_path: Path, n_shards: int) -> list[Path]:
    return [old_path / f"shard-{i:03d}" / "docs.sqlite" for i in range(n_shards)]


def _copy(old_path: Path, n_shards: int, new: Collection, batch_docs: int) -> int:
    """Re-embed every live document of the old generation the new one lacks (or holds
    under another hash); delete from the new one what the old one no longer has."""
    from ragfleet.index.docstore import DocStore

    have = {d: h for s in new.shards for d, h in s.doc_hashes().items()}
    wanted: set[str] = set()
    embedded = 0
    for db in _old_stores(old_path, n_shards):
        store = DocStore(db)
        try:
            hashes = store.doc_hashes()
            wanted |= set(hashes)
            todo = sorted(d for d, h in hashes.items() if have.get(d) != h)
            for i in range(0, len(todo), batch_docs):
                chunks = store.chunks_of(todo[i : i + batch_docs])
                _write_chunks(new, chunks)
                embedded += len(todo[i : i + batch_docs])
        finally:
            store.close()
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


def _verify(old_path: Path, n_shards: int, new: Collection, sample: int = 8) -> tuple[int, int]:
    """Counts equal, and sampled chunks find themselves; returns (documents, chunks)."""
    from ragfleet.index.docstore import DocStore
    from ragfleet.writer import embed_input

    n_docs = n_chunks = 0
    for db in _old_stores(old_path, n_shards):
        store = DocStore(db)
        try:
            _, live, docs = store.counts()
        finally:
            store.close()
        n_docs, n_chunks = n_docs + docs, n_chunks + live
    stats = new.stats()
    if (stats["documents"], stats["chunks"]) != (n_docs, n_chunks):
        raise CollectionError(
            f"reindex verification failed: the new generation holds {stats['documents']} "
            f"documents / {stats['chunks']} chunks, the live one {n_docs} / {n_chunks} "
            "(was it written to meanwhile?); re-run `ragfleet reindex` to catch up"
        )
    for shard in new.shards:
        for c in shard.docstore.live_chunks(limit=sample):
            vec = new.encoder.encode([embed_input(c.title, c.text)], kind="document")
            _, rows = shard.dense.search(vec, 10)
            if c.row not in rows[0].tolist():
                raise CollectionError(
                    f"reindex verification failed: chunk {c.chunk_id} is not among the 10 "
                    "nearest neighbours of its own embedding in the new generation"
                )
    return n_docs, n_chunks
