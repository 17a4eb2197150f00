"""A shard's token vectors: packed codes per row, in memory-mapped append-only segments.

Rows of a shard only grow (deletes are tombstones, compaction rebuilds the shard), so the
token vectors of rows ``0 .. n_rows - 1`` are kept as a list of *segments*, each holding a
contiguous range of rows written by one checkpoint::

    tokens.NNNNNN/codes.npy     uint8 [T, B]   the packed tokens (``TokenCodec``)
    tokens.NNNNNN/offsets.npy   int64 [m + 1]  row first_row + i owns codes[offsets[i]:offsets[i+1]]

Each segment is one manifest role, ``tokens@<first_row>``; a checkpoint writes only the
rows added since the last one (a new segment) and carries the old segments over, so its
cost is the new rows, not the shard. Segments are opened with ``mmap_mode="r"``: the OS
pages in the candidates a query reads. Rows added since the last checkpoint (replayed
from, or just appended to, the log) are held in memory until the next checkpoint.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ragfleet.errors import CollectionError, InputError
from ragfleet.index.manifest import FileEntry, checkpoint_name
from ragfleet.index.tokens_codec import Codes

ROLE_PREFIX = "tokens@"
_ROLE_RE = re.compile(r"^tokens@(\d+)$")


@dataclass(frozen=True)
class Segment:
    """Rows ``first_row .. first_row + len(offsets) - 2`` and their packed codes."""

    first_row: int
    codes: Codes
    offsets: npt.NDArray[np.int64]

    @property
    def n_rows(self) -> int:
        return len(self.offsets) - 1

    def block(self, row: int) -> Codes:
        i = row - self.first_row
        return self.codes[int(self.offsets[i]) : int(self.offsets[i + 1])]


class TokenStore:
    """Packed token vectors of every row of one shard (see the module docstring).

    Args:
        bytes_per_token: ``B`` of the collection's codec.
    """

    def __init__(self, bytes_per_token: int) -> None:
        self.bytes_per_token = bytes_per_token
        self.segments: list[Segment] = []
        self.entries: dict[str, FileEntry] = {}  # the committed segments' manifest entries
        self._pending: list[Codes] = []
        self._pending_first = 0

    @classmethod
    def load(
        cls, shard_dir: Path, files: Mapping[str, FileEntry], bytes_per_token: int
    ) -> TokenStore:
        """The segments a manifest names (``files``: its role → entry map), memory-mapped."""
        store = cls(bytes_per_token)
        found = sorted(
            (int(m.group(1)), role) for role in files if (m := _ROLE_RE.match(role)) is not None
        )
        for first, role in found:
            seg = _read_segment(shard_dir / files[role].name, first, bytes_per_token)
            if first != store.n_rows:
                raise CollectionError(
                    f"token segment {files[role].name} starts at row {first}, expected "
                    f"{store.n_rows}; the shard's token files are inconsistent, rebuild it"
                )
            store.segments.append(seg)
            store.entries[role] = files[role]
        store._pending_first = store.n_rows
        return store

    @property
    def n_rows(self) -> int:
        """Rows with token vectors (committed and pending)."""
        committed = sum(s.n_rows for s in self.segments)
        return committed + len(self._pending)

    @property
    def n_tokens(self) -> int:
        return sum(len(s.codes) for s in self.segments) + sum(len(b) for b in self._pending)

    @property
    def nbytes(self) -> int:
        return self.n_tokens * self.bytes_per_token

    def add(self, first_row: int, blocks: Sequence[Codes]) -> None:
        """Append rows ``first_row, first_row + 1, …`` (``first_row`` must be :attr:`n_rows`)."""
        if first_row != self.n_rows:
            raise CollectionError(
                f"token rows out of step: adding at row {first_row}, the store holds "
                f"{self.n_rows}; the shard is inconsistent, rebuild it"
            )
        for b in blocks:
            check_block(b, self.bytes_per_token)
        self._pending.extend(np.array(b, dtype=np.uint8) for b in blocks)

    def block(self, row: int) -> Codes:
        """The packed tokens of ``row`` ``[n_tokens, B]`` (a view into a segment)."""
        if row >= self._pending_first:
            return self._pending[row - self._pending_first]
        lo, hi = 0, len(self.segments) - 1
        while lo < hi:  # the last segment whose first_row <= row
            mid = (lo + hi + 1) // 2
            if self.segments[mid].first_row <= row:
                lo = mid
            else:
                hi = mid - 1
        return self.segments[lo].block(row)

    def blocks(self, rows: Sequence[int]) -> list[Codes]:
        return [self.block(int(r)) for r in rows]

    def write_segment(self, shard_dir: Path, number: int) -> tuple[str, Path] | None:
        """Write the pending rows as checkpoint ``number``'s segment; returns its role and
        path (``None`` when nothing is pending). The store changes only in
        :meth:`committed`, once the manifest naming the segment is renamed into place."""
        if not self._pending:
            return None
        path = shard_dir / checkpoint_name("tokens", number)
        shutil.rmtree(path, ignore_errors=True)  # the orphan of a failed attempt
        path.mkdir()
        offsets = np.cumsum([0, *(len(b) for b in self._pending)], dtype=np.int64)
        codes = np.concatenate(self._pending) if offsets[-1] else self._empty()
        np.save(path / "codes.npy", codes, allow_pickle=False)
        np.save(path / "offsets.npy", offsets, allow_pickle=False)
        return f"{ROLE_PREFIX}{self._pending_first}", path

    def committed(self, shard_dir: Path, files: Mapping[str, FileEntry]) -> None:
        """The pending rows are now a committed segment (``files``: the new manifest's)."""
        role = f"{ROLE_PREFIX}{self._pending_first}"
        if not self._pending or role not in files:
            return
        seg = _read_segment(shard_dir / files[role].name, self._pending_first, self.bytes_per_token)
        self.segments.append(seg)
        self.entries[role] = files[role]
        self._pending = []
        self._pending_first = self.n_rows

    def _empty(self) -> Codes:
        return np.zeros((0, self.bytes_per_token), dtype=np.uint8)


def check_block(block: object, bytes_per_token: int) -> Codes:
    """``block`` as uint8 ``[n, B]``, else InputError."""
    if not isinstance(block, np.ndarray) or block.dtype != np.uint8 or block.ndim != 2:
        raise InputError("packed token vectors must be a uint8 array [n_tokens, bytes_per_token]")
    if block.shape[1] != bytes_per_token:
        raise InputError(
            f"packed token vectors have {block.shape[1]} bytes per token, the collection's "
            f"codec takes {bytes_per_token}; pack them with the collection's codec"
        )
    return block


def _read_segment(path: Path, first_row: int, bytes_per_token: int) -> Segment:
    offsets = np.load(path / "offsets.npy", allow_pickle=False)
    total = int(offsets[-1]) if len(offsets) else 0
    codes = np.load(path / "codes.npy", mmap_mode="r" if total else None, allow_pickle=False)
    if codes.ndim != 2 or codes.shape != (total, bytes_per_token) or codes.dtype != np.uint8:
        raise CollectionError(
            f"token segment {path} holds {codes.dtype} {codes.shape}, expected uint8 "
            f"[{total}, {bytes_per_token}]; restore the shard or rebuild it"
        )
    return Segment(first_row, codes, offsets.astype(np.int64, copy=False))
