"""The write path from documents to shards (DESIGN.md §5).

upsert(documents) → validate → skip unchanged documents (same document hash under the
same contract) → chunk → embed what is new, in bulk → place each document on its shard
→ one write batch per shard and round: the removal of a document's old chunks and the
insertion of its new ones travel together, so a document is never half-replaced.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

import numpy as np

from ragfleet.config import CollectionConfig
from ragfleet.embed.base import Encoder
from ragfleet.embed.bulk import embed_bulk
from ragfleet.errors import InputError
from ragfleet.index.shard import Shard
from ragfleet.index.writebatch import ChunkRecord
from ragfleet.ingest.chunking import make_chunker
from ragfleet.ingest.hashing import document_hash
from ragfleet.types import Chunk, Document

Progress = Callable[[int, int], None]
#: Embeds document texts (already formatted by :func:`embed_text`) into ``[n, d]`` vectors
#: under the collection's encoder contract, e.g. on a Ray cluster (``cluster/ray_ingest.py``).
Embedder = Callable[[list[str]], np.ndarray]
MAX_DOC_CHARS = 5_000_000


@dataclass(frozen=True)
class IngestReport:
    """What an upsert did."""

    documents_seen: int
    documents_written: int
    documents_unchanged: int
    documents_empty: int
    chunks_written: int
    seconds: float

    @property
    def chunks_per_s(self) -> float:
        return self.chunks_written / self.seconds if self.seconds > 0 else math.inf


def embed_text(chunk: Chunk) -> str:
    """What the encoder sees for a chunk: its document title, then its text."""
    return embed_input(chunk.title, chunk.text)


def embed_input(title: str, text: str) -> str:
    """The encoder input of a chunk with ``title`` and ``text``: ``"{title} {text}"``."""
    return f"{title} {text}" if title else text


class DocumentWriter:
    """Turns documents into durable write batches on their shards."""

    def __init__(
        self,
        shards: Sequence[Shard],
        encoder: Encoder,
        config: CollectionConfig,
        place: Callable[[str], int],
        round_docs: int = 2048,
    ) -> None:
        self.shards = list(shards)
        self.encoder = encoder
        self.config = config
        self.place = place
        self.round_docs = round_docs
        self.chunker = make_chunker(config.chunker, encoder.tokenizer)

    def upsert(
        self,
        docs: Iterable[Document],
        *,
        progress: Progress | None = None,
        embedder: Embedder | None = None,
    ) -> IngestReport:
        """Write ``docs`` (validated all-or-nothing first); ``progress(done, total)`` per round.
        ``embedder`` replaces the in-process bulk embedding (same encoder, elsewhere)."""
        t0 = time.perf_counter()
        known: dict[str, str] = {}
        for s in self.shards:
            known.update(s.doc_hashes())
        docs = list(docs)
        validate_documents(docs)
        seen = written = unchanged = empty = n_chunks = 0
        total = len(docs)
        # An index that must be trained gets its shard's whole share in one first batch.
        round_size = total if self._needs_training() else self.round_docs
        for batch in _rounds(docs, max(1, round_size)):
            seen += len(batch)
            hashes = [document_hash(d) for d in batch]
            todo = [(d, h) for d, h in zip(batch, hashes, strict=True) if known.get(d.doc_id) != h]
            unchanged += len(batch) - len(todo)
            chunks = self.chunker.chunk_many([d for d, _ in todo])
            empty += len(todo) - len({c.doc_id for c in chunks})
            texts = [embed_text(c) for c in chunks]
            vectors = self._embed(texts) if embedder is None or not texts else embedder(texts)
            n_chunks += self._write(todo, chunks, vectors)
            written += len(todo)
            if progress is not None:
                progress(seen, total)
        return IngestReport(seen, written, unchanged, empty, n_chunks, time.perf_counter() - t0)

    def delete(self, doc_ids: Sequence[str]) -> int:
        by_shard: dict[int, list[str]] = {}
        for d in doc_ids:
            if not isinstance(d, str) or not d:
                raise InputError(f"a doc_id must be a non-empty string, got {d!r}")
            by_shard.setdefault(self.place(d), []).append(d)
        existed = 0
        for shard, ids in by_shard.items():
            store = self.shards[shard].docstore
            existed += sum(1 for d in ids if store.live_rows_of([d]))
            self.shards[shard].write([], deletes=ids)
        return existed

    def _needs_training(self) -> bool:
        return any(s.dense.needs_training and not s.dense.is_trained for s in self.shards)

    def _embed(self, texts: list[str]) -> np.ndarray:
        return embed_bulk(
            self.encoder,
            texts,
            batch_tokens=self.config.encoder.batch_tokens,
            workers=self.config.encoder.workers,
        )

    def _write(
        self, todo: list[tuple[Document, str]], chunks: list[Chunk], vectors: np.ndarray
    ) -> int:
        doc_hash = {d.doc_id: h for d, h in todo}
        per_shard: dict[int, list[ChunkRecord]] = {}
        deletes: dict[int, list[str]] = {}
        for c, v in zip(chunks, vectors, strict=True):
            per_shard.setdefault(self.place(c.doc_id), []).append(_record(c, doc_hash[c.doc_id], v))
        chunked = {c.doc_id for c in chunks}
        for d, _ in todo:  # a document that is now empty still replaces its old chunks
            if d.doc_id not in chunked:
                deletes.setdefault(self.place(d.doc_id), []).append(d.doc_id)
        for shard in sorted(set(per_shard) | set(deletes)):
            self.shards[shard].write(per_shard.get(shard, []), deletes.get(shard, []))
        return len(chunks)


def _record(c: Chunk, doc_hash: str, vector: np.ndarray) -> ChunkRecord:
    return ChunkRecord(
        chunk_id=c.chunk_id,
        doc_id=c.doc_id,
        n=c.n,
        text=c.text,
        title=c.title,
        metadata=dict(c.metadata),
        content_hash=c.content_hash,
        doc_hash=doc_hash,
        vector=np.ascontiguousarray(vector, dtype=np.float32),
    )


def _rounds(docs: list[Document], size: int) -> Iterator[list[Document]]:
    it = iter(docs)
    while batch := list(islice(it, size)):
        yield batch


def validate_documents(docs: Sequence[Document]) -> None:
    """All-or-nothing validation of a batch: every problem is reported, nothing is written.

    Rejects duplicate ids, non-string or empty ids, non-string text or title, text over
    :data:`MAX_DOC_CHARS`, unpaired surrogates (text that is not valid UTF-8), and metadata
    that is not a JSON object.
    """
    problems: list[str] = []
    seen: set[str] = set()
    for i, d in enumerate(docs):
        where = f"document {i} ({d.doc_id!r})"
        if not isinstance(d.doc_id, str) or not d.doc_id.strip():
            problems.append(f"document {i}: doc_id must be a non-empty string")
        elif d.doc_id in seen:
            problems.append(f"{where}: duplicate doc_id in this batch")
        seen.add(d.doc_id)
        problems.extend(f"{where}: {p}" for p in _document_problems(d))
    if problems:
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise InputError(f"{len(problems)} invalid document(s), nothing written: {shown}{more}")


def _document_problems(d: Document) -> Iterator[str]:
    for name in ("text", "title"):
        value = getattr(d, name)
        if not isinstance(value, str):
            yield f"{name} must be a string, got {type(value).__name__}"
            continue
        if name == "text" and not value.strip():
            yield "text is empty"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            yield f"{name} is not valid UTF-8 (unpaired surrogate)"
    if isinstance(d.text, str) and len(d.text) > MAX_DOC_CHARS:
        yield f"text has {len(d.text):,} characters, over the limit of {MAX_DOC_CHARS:,}"
    if not isinstance(d.metadata, dict):
        yield f"metadata must be a JSON object, got {type(d.metadata).__name__}"
    else:
        try:
            json.dumps(d.metadata, allow_nan=False)
        except (TypeError, ValueError) as e:
            yield f"metadata is not JSON-serialisable: {e}"
