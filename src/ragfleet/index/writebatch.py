"""One shard write: the unit that is logged to the WAL, acknowledged, then applied.

A :class:`WriteBatch` carries chunk upserts and document deletes with a sequence number
``seq`` that grows by one per batch within a shard. The shard applies a batch as ONE
step: first it tombstones every chunk of every document named in ``deletes`` *and* of
every document that has an upsert in the batch (an upsert of document X replaces all of
X's old chunks), then it adds the new chunks. Because the batch is logged whole and
applied whole, after any crash a document is wholly old or wholly new, never a mix.
For the same reason a batch must hold *all* chunks of each document it upserts
(``n = 0 .. m-1``): a partial document cannot be expressed.

Encoding (no pickle), all integers little-endian::

    b"RFWB" | version u8 | header_len u32 | header (UTF-8 JSON) | vectors (float32 LE [n, d])

The JSON header is ``{"seq", "d", "deletes", "chunks"}`` where ``chunks`` holds one list
per field (column-wise: ``doc_id``, ``n``, ``text``, ``title``, ``metadata``,
``content_hash``, ``doc_hash``); ``chunk_id`` is derived as ``f"{doc_id}#{n}"``. The
vectors follow as one ``[n, d]`` block of raw float32, row ``i`` belonging to chunk ``i``.

This module is longer than most (~320 lines) on purpose: the records, their validation
and their binary encoding are one wire format, which must change in one place.
"""

from __future__ import annotations

import json
import math
import struct
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from ragfleet.errors import InputError
from ragfleet.index.docstore import StoredChunk
from ragfleet.types import Chunk, chunk_id_of

__all__ = ["ChunkRecord", "WriteBatch"]

_MAGIC = b"RFWB"
_VERSION = 1
_PREFIX = struct.Struct("<4sBI")
_COLUMNS = ("doc_id", "n", "text", "title", "metadata", "content_hash", "doc_hash")
_MAX_SEQ = 2**64 - 1


def _check_text(name: str, value: object, *, allow_empty: bool = True) -> str:
    """``value`` as a str that encodes to UTF-8 (no lone surrogates), else InputError."""
    if not isinstance(value, str):
        raise InputError(f"{name} must be a str, got {type(value).__name__}")
    if not allow_empty and not value:
        raise InputError(f"{name} must not be empty")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InputError(f"{name} is not valid Unicode text (lone surrogate?): {e}") from e
    return value


def _check_json(value: object, where: str) -> None:
    """Reject anything that would not survive a JSON round trip unchanged."""
    if value is None or isinstance(value, bool | int | str):
        if isinstance(value, str):
            _check_text(where, value)
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(f"{where}: {value} is not finite; JSON cannot hold it")
        return
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_json(v, f"{where}[{i}]")
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise InputError(f"{where}: key {k!r} is not a str; JSON object keys are strings")
            _check_json(v, f"{where}[{_check_text(where, k)!r}]")
        return
    raise InputError(f"{where}: {type(value).__name__} is not JSON (use str/int/float/list/dict)")


def _freeze_metadata(metadata: object, where: str) -> Mapping[str, Any]:
    """A read-only, JSON-canonical copy (tuples become lists) of a metadata object."""
    if not isinstance(metadata, Mapping):
        raise InputError(f"{where} must be a JSON object (a mapping), got {type(metadata)}")
    _check_json(metadata, where)
    return MappingProxyType(json.loads(json.dumps(metadata, allow_nan=False)))


@dataclass(frozen=True, slots=True, eq=False)
class ChunkRecord:
    """One chunk to add to a shard, with its embedding.

    ``content_hash`` is the hash of what was embedded (title + text), ``doc_hash`` the
    hash of the whole document version; ``vector`` is a read-only float32 ``[d]`` copy.
    """

    chunk_id: str
    doc_id: str
    n: int
    text: str
    title: str
    metadata: Mapping[str, Any]
    content_hash: str
    doc_hash: str
    vector: npt.NDArray[np.float32]

    def __post_init__(self) -> None:
        _check_text("doc_id", self.doc_id, allow_empty=False)
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 0:
            raise InputError(f"chunk n must be an int >= 0, got {self.n!r}")
        expected = chunk_id_of(self.doc_id, self.n)
        if self.chunk_id != expected:
            raise InputError(f"chunk_id {self.chunk_id!r} must be doc_id#n = {expected!r}")
        _check_text(f"text of {self.chunk_id!r}", self.text, allow_empty=False)
        _check_text(f"title of {self.chunk_id!r}", self.title)
        _check_text(f"content_hash of {self.chunk_id!r}", self.content_hash, allow_empty=False)
        _check_text(f"doc_hash of {self.chunk_id!r}", self.doc_hash, allow_empty=False)
        meta = _freeze_metadata(self.metadata, f"metadata of {self.chunk_id!r}")
        object.__setattr__(self, "metadata", meta)
        object.__setattr__(self, "vector", self._checked_vector(self.vector))

    def _checked_vector(self, vector: object) -> npt.NDArray[np.float32]:
        try:
            v = np.array(vector, dtype=np.float32, copy=True)
        except (TypeError, ValueError) as e:
            raise InputError(f"vector of {self.chunk_id!r} is not numeric: {e}") from e
        if v.ndim != 1 or v.shape[0] == 0:
            raise InputError(f"vector of {self.chunk_id!r} must be 1-d [d], got {v.shape}")
        if not np.isfinite(v).all():
            raise InputError(f"vector of {self.chunk_id!r} has NaN or inf; re-embed the chunk")
        v.setflags(write=False)
        return v

    @classmethod
    def of(
        cls, chunk: Chunk | StoredChunk, vector: npt.ArrayLike, doc_hash: str | None = None
    ) -> ChunkRecord:
        """The record that writes ``chunk`` with ``vector``: a new chunk of a document
        (``doc_hash``: that version's hash) or a stored one again (compaction, reindex,
        reshard; its own hash)."""
        if doc_hash is None:
            if not isinstance(chunk, StoredChunk):
                raise InputError(f"a new chunk {chunk.chunk_id!r} needs its document's hash")
            doc_hash = chunk.doc_hash
        return cls(
            chunk_id=chunk.chunk_id,
            doc_id=chunk.doc_id,
            n=chunk.n,
            text=chunk.text,
            title=chunk.title,
            metadata=dict(chunk.metadata),
            content_hash=chunk.content_hash,
            doc_hash=doc_hash,
            vector=np.asarray(vector, dtype=np.float32),
        )

    def at(self, row: int) -> StoredChunk:
        """What the docstore keeps of this record once it is row ``row``."""
        return StoredChunk(
            row, self.chunk_id, self.doc_id, self.n, self.title, self.text, self.metadata,
            self.content_hash, self.doc_hash,
        )  # fmt: skip

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ChunkRecord):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in ("chunk_id", *_COLUMNS)) and bool(
            np.array_equal(self.vector, other.vector)
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class WriteBatch:
    """Upserts and deletes applied to one shard as one atomic step (see module doc).

    Validation (each an :class:`InputError`): ``seq`` in ``[1, 2**64)``; at least one
    upsert or delete; unique chunk ids and delete ids; one ``d`` for all vectors; every
    upserted document complete (``n = 0..m-1``) with one ``doc_hash``; no document both
    deleted and upserted (an upsert already replaces it).
    """

    seq: int
    upserts: tuple[ChunkRecord, ...] = ()
    deletes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.seq, bool) or not isinstance(self.seq, int):
            raise InputError(f"batch seq must be an int, got {self.seq!r}")
        if not 1 <= self.seq <= _MAX_SEQ:
            raise InputError(f"batch seq must be in [1, 2**64), got {self.seq}")
        object.__setattr__(self, "upserts", tuple(self.upserts))
        object.__setattr__(self, "deletes", tuple(self.deletes))
        if not self.upserts and not self.deletes:
            raise InputError("empty write batch: nothing to upsert or delete; skip the write")
        for doc_id in self.deletes:
            _check_text("deleted doc_id", doc_id, allow_empty=False)
        _check_unique(self.deletes, "doc_id in deletes")
        _check_upserts(self.upserts)
        both = set(self.deletes) & {c.doc_id for c in self.upserts}
        if both:
            raise InputError(
                f"documents both deleted and upserted in one batch: {sorted(both)[:5]}; "
                "an upsert already replaces the old chunks, drop the delete"
            )

    @property
    def d(self) -> int:
        """The vector dimension, 0 for a delete-only batch."""
        return int(self.upserts[0].vector.shape[0]) if self.upserts else 0

    @property
    def upserted_doc_ids(self) -> tuple[str, ...]:
        """The documents this batch (re)writes, in first-appearance order."""
        return tuple(dict.fromkeys(c.doc_id for c in self.upserts))

    @property
    def replaced_doc_ids(self) -> tuple[str, ...]:
        """Every document whose old chunks the batch tombstones: deletes, then upserts."""
        return self.deletes + self.upserted_doc_ids

    def vectors(self) -> npt.NDArray[np.float32]:
        """The upserted vectors as one ``[n, d]`` float32 array (``[0, 0]`` if none)."""
        if not self.upserts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([c.vector for c in self.upserts])

    def encode(self) -> bytes:
        """The binary form described in the module docstring."""
        header = {
            "seq": self.seq,
            "d": self.d,
            "deletes": list(self.deletes),
            "chunks": {
                col: [
                    dict(c.metadata) if col == "metadata" else getattr(c, col) for c in self.upserts
                ]
                for col in _COLUMNS
            },
        }
        head = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        body = self.vectors().astype("<f4", copy=False).tobytes()
        return _PREFIX.pack(_MAGIC, _VERSION, len(head)) + head + body

    @classmethod
    def decode(cls, data: bytes) -> WriteBatch:
        """Inverse of :meth:`encode`; raises InputError if ``data`` is not a valid batch."""
        header, body = _split(data)
        try:
            seq, d, deletes, cols = header["seq"], header["d"], header["deletes"], header["chunks"]
            columns = [cols[c] for c in _COLUMNS]
        except (KeyError, TypeError) as e:
            raise InputError(f"write batch header lacks a field: {e!r}") from e
        if not isinstance(deletes, list) or not all(isinstance(c, list) for c in columns):
            raise InputError("write batch header: 'deletes' and each chunk column must be lists")
        n = len(columns[0])
        if any(len(c) != n for c in columns) or not isinstance(d, int) or d < 0:
            raise InputError(f"write batch header is inconsistent: {n} chunks, d={d!r}")
        if len(body) != 4 * n * d:
            raise InputError(
                f"write batch holds {len(body)} vector bytes, expected 4 * {n} * {d} = {4 * n * d}"
            )
        vectors = np.frombuffer(body, dtype="<f4").reshape(n, d)
        upserts = tuple(
            ChunkRecord(
                chunk_id=chunk_id_of(fields["doc_id"], fields["n"]),
                vector=vectors[i],
                **fields,
            )
            for i, fields in enumerate(
                dict(zip(_COLUMNS, row, strict=True)) for row in zip(*columns, strict=True)
            )
        )
        return cls(seq=seq, upserts=upserts, deletes=tuple(deletes))


def _split(data: bytes) -> tuple[dict[str, Any], bytes]:
    """The parsed JSON header and the raw vector bytes of an encoded batch."""
    if len(data) < _PREFIX.size:
        raise InputError(f"write batch of {len(data)} bytes is shorter than its prefix")
    magic, version, head_len = _PREFIX.unpack_from(data)
    if magic != _MAGIC:
        raise InputError(f"not a write batch: magic {magic!r}, expected {_MAGIC!r}")
    if version != _VERSION:
        raise InputError(f"write batch format v{version} is not supported (this is v{_VERSION})")
    end = _PREFIX.size + head_len
    if end > len(data):
        raise InputError(f"write batch header of {head_len} bytes runs past the end")
    try:
        header = json.loads(data[_PREFIX.size : end].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"write batch header is not UTF-8 JSON: {e}") from e
    if not isinstance(header, dict):
        raise InputError("write batch header is not a JSON object")
    return header, data[end:]


def _check_unique(ids: tuple[str, ...], what: str) -> None:
    dup = sorted(i for i, count in Counter(ids).items() if count > 1)
    if dup:
        raise InputError(f"duplicate {what} in one batch: {dup[:5]}; send each once")


def _check_upserts(upserts: tuple[ChunkRecord, ...]) -> None:
    """Unique chunk ids, one dimension, and complete documents with one doc_hash each."""
    for c in upserts:
        if not isinstance(c, ChunkRecord):
            raise InputError(f"upserts must be ChunkRecord, got {type(c).__name__}")
    _check_unique(tuple(c.chunk_id for c in upserts), "chunk_id")
    dims = {int(c.vector.shape[0]) for c in upserts}
    if len(dims) > 1:
        raise InputError(f"vectors of different dimensions in one batch: {sorted(dims)}")
    ns: dict[str, list[int]] = {}
    hashes: dict[str, set[str]] = {}
    for c in upserts:
        ns.setdefault(c.doc_id, []).append(c.n)
        hashes.setdefault(c.doc_id, set()).add(c.doc_hash)
    for doc_id, got in ns.items():
        if sorted(got) != list(range(len(got))):
            raise InputError(
                f"document {doc_id!r} is incomplete: chunks n={sorted(got)[:10]}, expected "
                f"0..{len(got) - 1}; a batch must carry every chunk of each upserted document"
            )
        if len(hashes[doc_id]) != 1:
            raise InputError(f"document {doc_id!r} has chunks with different doc_hash values")
