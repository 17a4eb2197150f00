"""The write path from documents to shards (DESIGN.md §5).

upsert(documents) → validate (documents with no text are skipped and reported; other
invalid documents refuse the whole call, or are skipped and reported with
``skip_invalid``) → skip unchanged documents (same document hash under the same contract)
→ chunk → embed what is new, in bulk, *outside the write lock* → place each document: on
the shard it already lives on, else where the collection's
:class:`~ragfleet.cluster.placement.Placement` puts it → under the write lock, one write
batch per shard and round, through the shards' ``apply`` (a local shard or a shard owner
on a cluster): the removal of a document's old chunks and the insertion of its new ones
travel together, so a document is never half-replaced.

A disk error part-way through a call is reported exactly: the documents of the batches
already logged are durable, the rest were not applied (:class:`StorageError` says which).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from itertools import islice

import numpy as np

from ragfleet.cluster.client import ShardClient
from ragfleet.cluster.placement import Placement
from ragfleet.collection.late import codec_of, embed_with_tokens
from ragfleet.collection.validate import validate_documents
from ragfleet.config import CollectionConfig
from ragfleet.embed.base import Encoder
from ragfleet.embed.bulk import embed_bulk
from ragfleet.errors import ConfigError, InputError, StorageError
from ragfleet.index.writebatch import ChunkRecord
from ragfleet.ingest.chunking import make_chunker
from ragfleet.ingest.hashing import document_hash
from ragfleet.types import Chunk, Document

Progress = Callable[[int, int], None]
#: Embeds document texts (already formatted by :func:`embed_text`) into ``[n, d]`` vectors
#: under the collection's encoder contract, e.g. on a Ray cluster (``cluster/ray_ingest.py``).
Embedder = Callable[[list[str]], np.ndarray]
#: Called between embedding batches; raises to cancel the call before anything is written.
CancelCheck = Callable[[], None]
#: How many skipped documents a report names (it counts them all).
SHOWN_SKIPPED = 10


@dataclass(frozen=True)
class IngestReport:
    """What an upsert did. ``skipped`` names up to :data:`SHOWN_SKIPPED` skipped documents
    with the reason (``documents_empty`` + ``documents_invalid`` count all of them)."""

    documents_seen: int
    documents_written: int
    documents_unchanged: int
    documents_empty: int
    chunks_written: int
    seconds: float
    documents_invalid: int = 0
    skipped: tuple[tuple[str, str], ...] = field(default=())

    @property
    def chunks_per_s(self) -> float:
        return self.chunks_written / self.seconds if self.seconds > 0 else math.inf

    def skipped_summary(self) -> str:
        """``"2 skipped (no text: d1, d7)"`` or ``""``."""
        n = self.documents_empty + self.documents_invalid
        if not n:
            return ""
        shown = ", ".join(f"{d} ({why})" for d, why in self.skipped)
        more = f", and {n - len(self.skipped)} more" if n > len(self.skipped) else ""
        return f"{n} skipped: {shown}{more}"


def embed_text(chunk: Chunk) -> str:
    """What the encoder sees for a chunk: its document title, then its text."""
    return embed_input(chunk.title, chunk.text)


def embed_input(title: str, text: str) -> str:
    """The encoder input of a chunk with ``title`` and ``text``: ``"{title} {text}"``."""
    return f"{title} {text}" if title else text


@dataclass(frozen=True)
class _Round:
    """One round of documents, chunked and embedded, ready to write."""

    todo: list[tuple[Document, str]]
    chunks: list[Chunk]
    vectors: np.ndarray
    tokens: list[np.ndarray] | None = None  # packed token vectors per chunk (late.py)


class DocumentWriter:
    """Turns documents into durable write batches on their shards."""

    def __init__(
        self,
        shards: Sequence[ShardClient],
        encoder: Encoder,
        config: CollectionConfig,
        placement: Placement,
        round_docs: int = 2048,
    ) -> None:
        self.shards = list(shards)
        self.encoder = encoder
        self.config = config
        self.placement = placement
        self.round_docs = round_docs
        self.chunker = make_chunker(config.chunker, encoder.tokenizer)

    def upsert(
        self,
        docs: Iterable[Document],
        *,
        progress: Progress | None = None,
        embedder: Embedder | None = None,
        locked: Callable[[], AbstractContextManager[object]] = nullcontext,
        cancel: CancelCheck | None = None,
        skip_invalid: bool = False,
        max_chunks: int | None = None,
    ) -> IngestReport:
        """Write ``docs``; ``progress(done, total)`` per round. ``embedder`` replaces the
        in-process bulk embedding (same encoder, elsewhere); ``locked()`` is entered around
        each round's writes only (embedding runs outside it); ``cancel()`` is called between
        embedding batches and may raise to stop before the round is written;
        ``max_chunks`` refuses (InputError, before embedding) a call that would create more
        chunks — all or nothing for calls of up to ``round_docs`` documents."""
        t0 = time.perf_counter()
        docs, skipped, n_empty = validate_documents(list(docs), skip_invalid=skip_invalid)
        known: dict[str, str] = {}
        home: dict[str, int] = {}  # where each live document is: a replacement stays there
        for i, s in enumerate(self.shards):
            on_shard = s.doc_hashes()
            known.update(on_shard)
            home.update(dict.fromkeys(on_shard, i))
        seen = written = unchanged = n_chunks = 0
        total = len(docs)
        # An index that must be trained gets its shard's whole share in one first batch.
        round_size = total if self._needs_training() else self.round_docs
        for batch in _rounds(docs, max(1, round_size)):
            seen += len(batch)
            hashes = [document_hash(d) for d in batch]
            todo = [(d, h) for d, h in zip(batch, hashes, strict=True) if known.get(d.doc_id) != h]
            unchanged += len(batch) - len(todo)
            prepared = self._prepare(todo, embedder, cancel, max_chunks, n_chunks)
            with locked():
                n_chunks += self._write(prepared, written, home)
            written += len(todo)
            if progress is not None:
                progress(seen, total)
        return IngestReport(
            seen + len(skipped),
            written,
            unchanged,
            n_empty,
            n_chunks,
            time.perf_counter() - t0,
            documents_invalid=len(skipped) - n_empty,
            skipped=tuple(skipped[:SHOWN_SKIPPED]),
        )

    def _prepare(
        self,
        todo: list[tuple[Document, str]],
        embedder: Embedder | None,
        cancel: CancelCheck | None,
        max_chunks: int | None,
        chunks_before: int,
    ) -> _Round:
        chunks = self.chunker.chunk_many([_chunkable(d) for d, _ in todo])
        if max_chunks is not None and chunks_before + len(chunks) > max_chunks:
            raise InputError(
                f"these documents make {chunks_before + len(chunks):,} chunks, more than the "
                f"{max_chunks:,} one call may create; split them into smaller calls"
            )
        texts = [embed_text(c) for c in chunks]
        if cancel is not None:
            cancel()
        codec = codec_of(self.config, self.encoder.dim)
        if not texts:
            vectors = np.zeros((0, self.encoder.dim), dtype=np.float32)
        elif codec is not None:
            if embedder is not None:
                raise ConfigError(
                    "this collection stores token vectors, which an external embedder does "
                    "not return; ingest it in-process (without --ray)"
                )
            batch = self.config.encoder.batch_tokens
            pool = self.config.tokens.pool
            vectors, tokens = embed_with_tokens(self.encoder, texts, batch, codec, pool)
            return _Round(todo, chunks, vectors, tokens)
        elif embedder is not None:
            vectors = embedder(texts)
        else:
            vectors = self._embed(texts, cancel)
        return _Round(todo, chunks, vectors)

    def delete(self, doc_ids: Sequence[str]) -> int:
        """Tombstone ``doc_ids`` on the shards that hold them; returns how many existed."""
        for d in doc_ids:
            if not isinstance(d, str) or not d:
                raise InputError(f"a doc_id must be a non-empty string, got {d!r}")
        wanted = sorted(set(doc_ids))
        by_shard = {i: s.live_docs(wanted) for i, s in enumerate(self.shards)}
        done = 0
        for shard, ids in sorted(by_shard.items()):
            if not ids:
                continue
            try:
                self.shards[shard].apply([], ids)
            except StorageError as e:
                raise _partial(e, done, len(wanted), "deleted") from e
            done += len(ids)
        return done

    def _needs_training(self) -> bool:
        return any(bool(s.stats().get("needs_training")) for s in self.shards)

    def _embed(self, texts: list[str], cancel: CancelCheck | None) -> np.ndarray:
        return embed_bulk(
            self.encoder,
            texts,
            batch_tokens=self.config.encoder.batch_tokens,
            workers=self.config.encoder.workers,
            progress=(lambda done, total: cancel()) if cancel is not None else False,
        )

    def _write(self, prepared: _Round, done_before: int, home: dict[str, int]) -> int:
        """Write one prepared round, one batch per shard; on a disk error say exactly
        which documents are durable."""
        doc_hash = {d.doc_id: h for d, h in prepared.todo}
        by_doc: dict[str, list[ChunkRecord]] = {}
        tokens: list[np.ndarray | None] = (
            list(prepared.tokens) if prepared.tokens is not None else [None] * len(prepared.chunks)
        )
        for c, v, t in zip(prepared.chunks, prepared.vectors, tokens, strict=True):
            record = ChunkRecord.of(c, v, doc_hash[c.doc_id], tokens=t)
            by_doc.setdefault(c.doc_id, []).append(record)
        per_shard: dict[int, list[ChunkRecord]] = {}
        for doc_id, records in by_doc.items():
            if doc_id not in home:
                vectors = np.stack([r.vector for r in records])
                home[doc_id] = self.placement.shard_of(doc_id, vectors)
            per_shard.setdefault(home[doc_id], []).extend(records)
        deletes: dict[int, list[str]] = {}
        for d, _ in prepared.todo:  # a document that chunks to nothing replaces its old chunks
            if d.doc_id not in by_doc and d.doc_id in home:
                deletes.setdefault(home.pop(d.doc_id), []).append(d.doc_id)
        docs_on = {s: len({r.doc_id for r in recs}) for s, recs in per_shard.items()}
        written = done_before
        for shard in sorted(set(per_shard) | set(deletes)):
            try:
                self.shards[shard].apply(per_shard.get(shard, []), deletes.get(shard, []))
            except StorageError as e:
                raise _partial(e, written, None, "written") from e
            written += docs_on.get(shard, 0) + len(deletes.get(shard, []))
        return len(prepared.chunks)


def _partial(e: StorageError, done: int, total: int | None, verb: str) -> StorageError:
    """The error of a call that failed after ``done`` documents were durably ``verb``."""
    if done == 0:
        return StorageError(f"{e}; nothing of this call was {verb}", applied=False)
    of = f" of {total}" if total is not None else ""
    return StorageError(
        f"{e}; {done}{of} document(s) of this call were {verb} before it (durable), the "
        "rest were not: fix the disk and repeat the call (finished documents are skipped)",
        applied=None,
    )


def _chunkable(d: Document) -> Document:
    """A document with a title but no body is indexed by its title."""
    if d.text.strip() or not d.title.strip():
        return d
    return replace(d, text=d.title, title="")


def _rounds(docs: list[Document], size: int) -> Iterator[list[Document]]:
    it = iter(docs)
    while batch := list(islice(it, size)):
        yield batch
