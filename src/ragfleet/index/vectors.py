"""Full-precision vectors on disk: what a compressed spec rescores from (``+refine``).

A :class:`VectorStore` holds one shard's vectors, row ``i`` the ``i``-th added, as float32
or float16, in *segments*: ``.npy`` files written at checkpoints and memory-mapped
read-only (so RAM holds only the pages the OS caches, and readers on read-only media can
map them), plus an in-memory *tail* of the rows added since the last checkpoint (the log
holds them too; it is bounded by the checkpoint policy).

Checkpoint protocol (the shard's, :mod:`ragfleet.index.manifest`): :meth:`write` writes
the tail — merged with the trailing segments that are not more than twice its size, so a
shard of n rows has O(log n) segments and each row is rewritten O(log n) times, as in a
log-structured merge — as one new segment under a new name (role ``vectors-<first row>``,
file ``vectors-<first row>.<checkpoint no>.npy``), and says which segments the new
manifest carries over; after the manifest commits, :meth:`adopt` maps the new file and
drops the tail. A crash before the commit leaves the old segments and the log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ragfleet.errors import CollectionError, DimensionError
from ragfleet.index.atomic import atomic_path
from ragfleet.index.manifest import checkpoint_name

Precision = Literal["fp32", "fp16"]
DTYPES: dict[Precision, type[np.floating[Any]]] = {"fp32": np.float32, "fp16": np.float16}
ROLE_RE = re.compile(r"^vectors-(?P<start>\d+)$")
#: Rows copied per write call when a segment is written (bounds the temporary copies).
_COPY_ROWS = 1 << 16


def role_of(start: int) -> str:
    return f"vectors-{start}"


def segment_roles(roles: Sequence[str]) -> list[str]:
    """The vector segment roles among a manifest's roles, in row order."""
    found = [(int(m.group("start")), r) for r in roles if (m := ROLE_RE.match(r))]
    return [r for _, r in sorted(found)]


@dataclass(frozen=True)
class Segment:
    role: str
    start: int
    array: npt.NDArray[Any]  # (n, d), memory-mapped read-only

    @property
    def n(self) -> int:
        return int(self.array.shape[0])


@dataclass(frozen=True)
class SegmentPlan:
    """What one checkpoint writes: ``new`` role → path, and the ``kept`` roles."""

    new: Mapping[str, Path]
    kept: tuple[str, ...]
    n_rows: int


class VectorStore:
    """Rows of ``d`` float32 values kept at ``precision`` (see the module docstring)."""

    __slots__ = ("_segments", "_tail", "_tail_n", "d", "dtype", "precision")

    def __init__(self, d: int, precision: Precision = "fp32") -> None:
        if precision not in DTYPES:
            raise CollectionError(f"vector precision must be fp32 or fp16, got {precision!r}")
        self.d, self.precision = d, precision
        self.dtype = np.dtype(DTYPES[precision])
        self._segments: list[Segment] = []
        self._tail = np.empty((0, d), dtype=self.dtype)
        self._tail_n = 0

    @classmethod
    def load(cls, d: int, precision: Precision, files: Sequence[tuple[str, Path]]) -> VectorStore:
        """Map the segment files ``(role, path)`` of a manifest, in row order.

        Raises:
            CollectionError: a file is unreadable, of another dtype or width, or the
                segments do not tile the rows ``0 .. n - 1``.
            FileNotFoundError: a file is gone (a reader raced a checkpoint: retry).
        """
        self = cls(d, precision)
        for role, path in files:
            try:
                array = np.load(path, mmap_mode="r", allow_pickle=False)
            except ValueError as e:
                raise CollectionError(f"cannot read vectors {path}: {e}; restore the shard") from e
            start = int(role.rpartition("-")[2])
            if array.dtype != self.dtype or array.ndim != 2 or array.shape[1] != d:
                raise CollectionError(
                    f"{path} holds {array.dtype} {array.shape}, expected {self.dtype} (n, {d})"
                )
            if start != len(self):
                raise CollectionError(f"{path} starts at row {start}, expected {len(self)}")
            self._segments.append(Segment(role, start, array))
        return self

    def __len__(self) -> int:
        last = self._segments[-1] if self._segments else None
        return (last.start + last.n if last else 0) + self._tail_n

    @property
    def n_segments(self) -> int:
        return len(self._segments)

    @property
    def tail_rows(self) -> int:
        return self._tail_n

    def ram_bytes(self) -> int:
        """Bytes of the in-memory tail (the segments are mapped, not held)."""
        return self._tail_n * self.d * self.dtype.itemsize

    def disk_bytes(self) -> int:
        return sum(s.array.nbytes for s in self._segments)

    # -- writes -------------------------------------------------------------------------

    def add(self, x: npt.NDArray[np.float32]) -> None:
        """Append rows (``(n, d)`` float32); they live in the tail until a checkpoint."""
        if x.ndim != 2 or x.shape[1] != self.d:
            raise DimensionError(f"vectors of shape {x.shape} for a store of width {self.d}")
        n = x.shape[0]
        if self._tail_n + n > self._tail.shape[0]:
            grown = np.empty((max(2 * self._tail.shape[0], self._tail_n + n, 64), self.d),
                             dtype=self.dtype)  # fmt: skip
            grown[: self._tail_n] = self._tail[: self._tail_n]
            self._tail = grown
        self._tail[self._tail_n : self._tail_n + n] = x
        self._tail_n += n

    def write(self, shard_dir: Path, number: int) -> SegmentPlan:
        """Write checkpoint ``number``'s new segment, if any (see the module docstring)."""
        kept = list(self._segments)
        if self._tail_n == 0:
            return SegmentPlan({}, tuple(s.role for s in kept), len(self))
        parts: list[npt.NDArray[Any]] = [self._tail[: self._tail_n]]
        while kept and kept[-1].n <= 2 * sum(p.shape[0] for p in parts):
            parts.insert(0, kept.pop().array)
        start = kept[-1].start + kept[-1].n if kept else 0
        role = role_of(start)
        path = shard_dir / checkpoint_name(role, number, ".npy")
        _write_npy(path, parts, self.dtype, self.d)
        return SegmentPlan({role: path}, tuple(s.role for s in kept), len(self))

    def adopt(self, plan: SegmentPlan) -> None:
        """After ``plan``'s checkpoint committed: map its new segment, drop the tail."""
        if plan.n_rows != len(self):
            raise CollectionError(f"vector store holds {len(self)} rows, plan {plan.n_rows}")
        kept = [s for s in self._segments if s.role in plan.kept]
        for role, path in plan.new.items():
            kept.append(Segment(role, int(role.rpartition("-")[2]), _map(path)))
        self._segments = kept
        self._tail = np.empty((0, self.d), dtype=self.dtype)
        self._tail_n = 0

    # -- reads --------------------------------------------------------------------------

    def contiguous(self) -> npt.NDArray[np.float32] | None:
        """All rows as one float32 array when the store is one (no copy), else None."""
        if self.dtype != np.float32:
            return None
        if not self._segments:
            return self._tail[: self._tail_n]
        if len(self._segments) == 1 and self._tail_n == 0:
            return self._segments[0].array
        return None

    def take(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """float32 ``(len(rows), d)``: the vectors of ``rows`` (each in ``[0, len)``)."""
        rows = np.asarray(rows, dtype=np.int64)
        whole = self.contiguous()
        if whole is not None:
            return np.ascontiguousarray(whole[rows], dtype=np.float32)
        out = np.empty((rows.shape[0], self.d), dtype=np.float32)
        bounds = [(s.start, s.start + s.n, s.array) for s in self._segments]
        tail_start = len(self) - self._tail_n
        bounds.append((tail_start, len(self), self._tail))
        for lo, hi, array in bounds:
            where = np.flatnonzero((rows >= lo) & (rows < hi))
            if where.size:
                out[where] = array[rows[where] - lo]
        return out

    def save(self, path: Path) -> None:
        """Write every row to one ``.npy`` file (atomically), e.g. outside a shard."""
        parts = [s.array for s in self._segments] + [self._tail[: self._tail_n]]
        _write_npy(path, parts, self.dtype, self.d)


def _map(path: Path) -> npt.NDArray[Any]:
    array: npt.NDArray[Any] = np.load(path, mmap_mode="r", allow_pickle=False)
    return array


def _write_npy(path: Path, parts: Sequence[npt.NDArray[Any]], dtype: np.dtype[Any], d: int) -> None:
    """``parts`` stacked into one ``.npy`` at ``path`` (temp file, fsync, rename), copied
    in blocks of rows so that nothing larger than a block is materialised."""
    n = sum(int(p.shape[0]) for p in parts)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
              "shape": (n, d)}  # fmt: skip
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for part in parts:
            for i in range(0, part.shape[0], _COPY_ROWS):
                f.write(np.ascontiguousarray(part[i : i + _COPY_ROWS], dtype=dtype).tobytes())
