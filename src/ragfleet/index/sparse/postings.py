"""Storage for the BM25 index: growable numpy columns, CSR postings segments, top-k.

A :class:`Postings` segment maps each of its (sorted) term ids to a slice of ``rows``
(ascending) and ``tfs``. Segments are appended per ``add`` and merged by
:func:`merge_tiered` as in an LSM tree, so a shard holds O(log n) of them and every
posting is rewritten O(log n) times over the life of the index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Column", "Postings", "merge_tiered", "top_k"]

_MERGE_RATIO = 4  # merge the last segment into its predecessor while that is < 4× bigger


class Column:
    """A 1-D numpy array that grows by appending, with amortised O(1) appends."""

    __slots__ = ("_buf", "_n")

    def __init__(self, dtype: Any, initial: npt.ArrayLike = ()) -> None:
        data = np.asarray(initial, dtype=dtype).reshape(-1)
        self._buf = np.empty(max(16, 2 * len(data)), dtype=dtype)
        self._buf[: len(data)] = data
        self._n = len(data)

    def __len__(self) -> int:
        return self._n

    def view(self) -> npt.NDArray[Any]:
        """The live part, a writable view (invalidated by the next :meth:`extend`)."""
        return self._buf[: self._n]

    def last(self) -> Any:
        return self._buf[self._n - 1]

    def extend(self, values: npt.ArrayLike) -> None:
        v = np.asarray(values, dtype=self._buf.dtype).reshape(-1)
        need = self._n + len(v)
        if need > len(self._buf):
            grown = np.empty(max(need, 2 * len(self._buf)), dtype=self._buf.dtype)
            grown[: self._n] = self._buf[: self._n]
            self._buf = grown
        self._buf[self._n : need] = v
        self._n = need


@dataclass(frozen=True)
class Postings:
    """One CSR segment: term ``terms[i]`` has ``rows/tfs[indptr[i]:indptr[i+1]]``."""

    terms: npt.NDArray[np.int32]
    indptr: npt.NDArray[np.int64]
    rows: npt.NDArray[np.int32]
    tfs: npt.NDArray[np.float32]

    @classmethod
    def empty(cls) -> Postings:
        return cls.build(np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.int32))

    @classmethod
    def build(cls, terms: npt.ArrayLike, rows: npt.ArrayLike, tfs: npt.ArrayLike) -> Postings:
        """A segment from one entry per (term, row) pair; rows ascend within a term as long
        as the input lists them in ascending row order (a stable sort keeps it)."""
        t = np.asarray(terms, dtype=np.int32)
        order = np.argsort(t, kind="stable")
        t = t[order]
        uniq, starts = np.unique(t, return_index=True)
        indptr = np.append(starts, len(t)).astype(np.int64)
        r = np.asarray(rows, dtype=np.int32)[order]
        return cls(uniq.astype(np.int32), indptr, r, np.asarray(tfs, dtype=np.float32)[order])

    def __len__(self) -> int:
        return len(self.rows)

    def slices(
        self, terms: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.bool_], list[npt.NDArray[np.int32]], list[npt.NDArray[np.float32]]]:
        """Which of ``terms`` this segment holds, and their ``rows`` and ``tfs`` (views)."""
        n = len(self.terms)
        if n and int(self.terms[-1]) == n - 1:  # holds every term id below n: no search
            found = terms < n
            pos = terms[found]
        else:
            pos = np.minimum(np.searchsorted(self.terms, terms), max(n - 1, 0))
            found = self.terms[pos] == terms if n else np.zeros(len(terms), dtype=bool)
            pos = pos[found]
        spans = list(zip(self.indptr[pos].tolist(), self.indptr[pos + 1].tolist(), strict=True))
        return found, [self.rows[a:b] for a, b in spans], [self.tfs[a:b] for a, b in spans]

    def live_only(self, live: npt.NDArray[np.bool_]) -> Postings:
        """This segment without the postings of rows where ``live`` is False."""
        keep = live[self.rows]
        if keep.all():
            return self
        return Postings.build(self.expanded_terms()[keep], self.rows[keep], self.tfs[keep])

    def expanded_terms(self) -> npt.NDArray[np.int32]:
        """The term id of every posting."""
        return np.repeat(self.terms, np.diff(self.indptr))


def merge(older: Postings, newer: Postings) -> Postings:
    """One segment holding both; ``older`` must hold only rows below ``newer``'s."""
    terms = np.concatenate([older.expanded_terms(), newer.expanded_terms()])
    rows = np.concatenate([older.rows, newer.rows])
    return Postings.build(terms, rows, np.concatenate([older.tfs, newer.tfs]))


def merge_tiered(segments: Sequence[Postings], full: bool = False) -> list[Postings]:
    """Merge trailing segments while the one before is under ``4×`` the last one's size
    (everything into one when ``full``). Segments are in row order, oldest first."""
    segs = list(segments)
    while len(segs) > 1 and (full or len(segs[-2]) < _MERGE_RATIO * len(segs[-1])):
        newer = segs.pop()
        segs[-1] = merge(segs[-1], newer)
    return segs


def top_k(
    scores: npt.NDArray[np.float64], cand: npt.NDArray[np.int64], k: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Top ``k`` of ``scores[cand]`` (``cand`` ascending) by score desc, then row asc.

    ``argpartition`` picks k; if scores equal to the k-th spill over the cut, the tied
    rows are re-chosen by row so that the result is exact and deterministic.
    """
    s = scores[cand]
    if len(cand) > k:
        part = np.argpartition(s, len(s) - k)[len(s) - k :]
        kth = s[part].min()
        if np.count_nonzero(s == kth) != np.count_nonzero(s[part] == kth):
            above = np.flatnonzero(s > kth)
            part = np.concatenate([above, np.flatnonzero(s == kth)[: k - len(above)]])
        cand, s = cand[part], s[part]
    order = np.lexsort((cand, -s))
    return s[order].astype(np.float32), cand[order]
