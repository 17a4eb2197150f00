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
        | token codes (uint8, only when the header has "tokens")

The JSON header is ``{"seq", "d", "deletes", "chunks"}`` where ``chunks`` holds one list
per field (column-wise: ``doc_id``, ``n``, ``text``, ``title``, ``metadata``,
``content_hash``, ``doc_hash``); ``chunk_id`` is derived as ``f"{doc_id}#{n}"``. The
vectors follow as one ``[n, d]`` block of raw float32, row ``i`` belonging to chunk ``i``.
A collection that stores token vectors adds ``"tokens": [n_tokens per chunk]`` and
``"token_bytes": B`` to the header, and the chunks' packed token codes (uint8
``[n_tokens_i, B]``, :mod:`ragfleet.index.tokens_codec`) follow the vectors in chunk order.

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
    hash of the whole document version; ``vector`` is a read-only float32 ``[d]`` copy;
    ``tokens`` the chunk's packed token vectors (uint8 ``[n_tokens, B]``, read-only) in a
    collection that stores them, else ``None``.
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
    tokens: npt.NDArray[np.uint8] | None = None

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
        if self.tokens is not None:
            object.__setattr__(self, "tokens", self._checked_tokens(self.tokens))

    def _checked_tokens(self, tokens: object) -> npt.NDArray[np.uint8]:
        if not isinstance(tokens, np.ndarray) or tokens.dtype != np.uint8 or tokens.ndim != 2:
            raise InputError(
                f"tokens of {self.chunk_id!r} must be packed uint8 [n_tokens, B] (a TokenCodec)"
            )
        t = np.array(tokens, dtype=np.uint8, copy=True)
        t.setflags(write=False)
        return t

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
        cls,
        chunk: Chunk | StoredChunk,
        vector: npt.ArrayLike,
        doc_hash: str | None = None,
        tokens: npt.NDArray[np.uint8] | None = None,
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
            tokens=tokens,
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
        if self.tokens is None or other.tokens is None:
            same_tokens = self.tokens is None and other.tokens is None
        else:
            same_tokens = bool(np.array_equal(self.tokens, other.tokens))
        return (
            all(getattr(self, f) == getattr(other, f) for f in ("chunk_id", *_COLUMNS))
            and bool(np.array_equal(self.vector, other.vector))
            and same_tokens
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
        blocks = [c.tokens for c in self.upserts if c.tokens is not None]
        if blocks:
            header["tokens"] = [len(b) for b in blocks]
            header["token_bytes"] = int(blocks[0].shape[1])
        head = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        body = self.vectors().astype("<f4", copy=False).tobytes()
        body += b"".join(b.tobytes() for b in blocks)
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
        tokens = _token_blocks(header, body[4 * n * d :], n)
        if len(body) - sum(t.nbytes for t in tokens) != 4 * n * d:
            raise InputError(
                f"write batch holds {len(body)} vector bytes, expected 4 * {n} * {d} = {4 * n * d}"
            )
        vectors = np.frombuffer(body, dtype="<f4", count=n * d).reshape(n, d)
        upserts = tuple(
            ChunkRecord(
                chunk_id=chunk_id_of(fields["doc_id"], fields["n"]),
                vector=vectors[i],
                tokens=tokens[i] if tokens else None,
                **fields,
            )
            for i, fields in enumerate(
                dict(zip(_COLUMNS, row, strict=True)) for row in zip(*columns, strict=True)
            )
        )
        return cls(seq=seq, upserts=upserts, deletes=tuple(deletes))


def _token_blocks(header: dict[str, Any], data: bytes, n: int) -> list[npt.NDArray[np.uint8]]:
    """The packed token blocks after the vectors (none when the header has no "tokens")."""
    if "tokens" not in header:
        return []
    counts, width = header["tokens"], header.get("token_bytes")
    if not isinstance(counts, list) or len(counts) != n or not isinstance(width, int) or width < 1:
        raise InputError(f"write batch header: bad token counts for {n} chunks or token_bytes")
    if any(not isinstance(c, int) or c < 0 for c in counts) or sum(counts) * width != len(data):
        raise InputError(
            f"write batch holds {len(data)} token bytes, expected {sum(counts)} x {width}"
        )
    flat = np.frombuffer(data, dtype=np.uint8).reshape(-1, width)
    ends = np.cumsum(counts)
    return [flat[e - c : e] for c, e in zip(counts, ends, strict=True)]


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
    widths = {-1 if c.tokens is None else int(c.tokens.shape[1]) for c in upserts}
    if len(widths) > 1:
        raise InputError(
            "a batch's chunks must all carry token vectors of one width or none "
            f"(got widths {sorted(widths)}; -1: none)"
        )
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
