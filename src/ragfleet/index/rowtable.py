"""The in-memory row table of one shard: which rows exist, which are live, whose they are.

Rows are append-only integers ``0 .. n-1`` (a row is the FAISS id and the BM25 document
number of one chunk). A row's content never changes once written; only its liveness
does, when a write batch replaces or deletes its document. This table is the shard's one
source of truth for liveness *as of the last applied batch*:

* ``live[r]``: row ``r`` is neither tombstoned nor replaced;
* ``doc_rows[d]``: the live rows of document ``d`` (all its chunks, in row order);
* ``doc_hash[d]``: the hash of ``d``'s live version (for incremental ingest).

:meth:`apply` is the state transition of one batch, ``(table, batch) → table'``: the rows
of every document the batch upserts or deletes stop being live, then the batch's chunks
take the next rows. Recovery replays the log through the same method, starting from the
table of the last checkpoint, so every record is applied against the state as of that
record — never against a later one — and any prefix of any operation sequence reopens.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ragfleet.errors import CollectionError


@dataclass(frozen=True, slots=True)
class RowEntry:
    """What the table keeps of one row."""

    chunk_id: str
    doc_id: str
    doc_hash: str


@dataclass(frozen=True, slots=True)
class Transition:
    """What one batch did: the rows it tombstoned and the first row it added."""

    removed: npt.NDArray[np.int64]
    first_row: int
    added: int


class RowTable:
    """Rows, liveness and documents of one shard (see the module docstring)."""

    __slots__ = ("_chunk_ids", "_doc_ids", "_live", "_n_live", "doc_hash", "doc_rows")

    def __init__(self) -> None:
        self._chunk_ids: list[str] = []
        self._doc_ids: list[str] = []
        self._live = np.zeros(0, dtype=bool)
        self._n_live = 0
        self.doc_rows: dict[str, list[int]] = {}
        self.doc_hash: dict[str, str] = {}

    @classmethod
    def restore(cls, entries: Sequence[RowEntry], live: npt.ArrayLike) -> RowTable:
        """The table of a checkpoint: ``entries[r]`` for every row, and its live mask."""
        mask = np.asarray(live, dtype=bool).copy()
        if len(mask) != len(entries):
            raise CollectionError(
                f"row table mismatch: {len(entries)} stored rows but a live mask of "
                f"{len(mask)}; the shard's checkpoint is inconsistent, restore it"
            )
        table = cls()
        table._chunk_ids = [e.chunk_id for e in entries]
        table._doc_ids = [e.doc_id for e in entries]
        table._live = mask
        table._n_live = int(mask.sum())
        for r in np.flatnonzero(mask).tolist():
            e = entries[r]
            table.doc_rows.setdefault(e.doc_id, []).append(r)
            table.doc_hash[e.doc_id] = e.doc_hash
        return table

    # -- reads ----------------------------------------------------------------------------
    @property
    def n_rows(self) -> int:
        return len(self._chunk_ids)

    @property
    def n_live(self) -> int:
        return self._n_live

    @property
    def n_docs(self) -> int:
        return len(self.doc_rows)

    @property
    def live(self) -> npt.NDArray[np.bool_]:
        """A read-only view of the live mask (length :attr:`n_rows`)."""
        view = self._live[: self.n_rows]
        view.flags.writeable = False
        return view

    def chunk_id(self, row: int) -> str:
        return self._chunk_ids[row]

    def chunk_ids(self, rows: Iterable[int]) -> list[str]:
        ids = self._chunk_ids
        return [ids[r] for r in rows]

    def deleted_rows(self) -> npt.NDArray[np.int64]:
        return np.flatnonzero(~self.live).astype(np.int64)

    def live_rows(self) -> npt.NDArray[np.int64]:
        return np.flatnonzero(self.live).astype(np.int64)

    def live_rows_of(self, doc_ids: Iterable[str]) -> list[int]:
        out: list[int] = []
        for d in doc_ids:
            out.extend(self.doc_rows.get(d, ()))
        return out

    # -- the transition -------------------------------------------------------------------
    def apply(self, upserts: Sequence[RowEntry], deletes: Iterable[str] = ()) -> Transition:
        """Apply one batch: tombstone every live row of each document in ``upserts`` or
        ``deletes``, then append ``upserts`` as rows ``n_rows, n_rows + 1, …``."""
        replaced = dict.fromkeys([*(e.doc_id for e in upserts), *deletes])
        removed = sorted(r for d in replaced for r in self.doc_rows.pop(d, ()))
        for d in replaced:
            self.doc_hash.pop(d, None)
        first = self.n_rows
        if removed:
            self._live[removed] = False
            self._n_live -= len(removed)
        self._grow(first + len(upserts))
        for i, e in enumerate(upserts):
            r = first + i
            self._chunk_ids.append(e.chunk_id)
            self._doc_ids.append(e.doc_id)
            self.doc_rows.setdefault(e.doc_id, []).append(r)
            self.doc_hash[e.doc_id] = e.doc_hash
        self._live[first : first + len(upserts)] = True
        self._n_live += len(upserts)
        return Transition(np.asarray(removed, dtype=np.int64), first, len(upserts))

    def _grow(self, n: int) -> None:
        """Room for ``n`` rows in the live mask (amortised doubling)."""
        if n <= len(self._live):
            return
        bigger = np.zeros(max(n, 2 * len(self._live), 64), dtype=bool)
        bigger[: len(self._live)] = self._live
        self._live = bigger

    def doc_hashes(self) -> Mapping[str, str]:
        """doc_id → hash of every live document (a copy)."""
        return dict(self.doc_hash)
