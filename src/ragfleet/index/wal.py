"""A shard's write-ahead log: append-only, checksummed, fsynced before acknowledgement.

Layout: ``<wal dir>/000001.log``, ``000002.log``, … (segments; a new one starts when the
active one would pass ``segment_bytes``, and at every :meth:`WriteAheadLog.truncate_through`).
Each record is framed, all integers little-endian::

    magic u32 | length u32 | crc32 u32 | seq u64 | payload (length bytes)

``crc32`` covers ``seq ‖ payload`` (8 bytes of seq, then the payload), so a flipped bit in
the sequence number is caught as well as one in the payload. Sequence numbers are strictly
increasing across the whole log (the shard uses ``seq = previous + 1``).

Crash semantics:

* :meth:`~WriteAheadLog.append` returns only after the record is written and, with
  ``fsync=True``, ``fdatasync``-ed (and the directory fsynced when the record opened a new
  segment). A write is acknowledged only after ``append`` returns, so an acknowledged
  record survives a process crash and a power loss.
* A crash during ``append`` can leave a *torn* last record: a short write, garbage or
  zeroes past the last complete record. Opening the log (the constructor) validates every
  segment, finds the first bad record of the last one (bad magic, length past end of
  file, bad crc) and, if no valid record follows it, drops it by truncating the file at
  the end of the last good record (with a logged warning) — so a later append never lands
  after garbage. That record was never acknowledged (``append`` had not returned), so
  nothing acknowledged is lost. (Bit rot in the very last record looks the same and is
  dropped the same way: no checksum can tell it from a torn write.)
* A bad record *followed by* a valid one, or a bad record in any segment but the last, is
  not a torn write: it is damage to acknowledged data. :class:`CollectionError` is raised
  naming the segment and byte offset; nothing is ever silently skipped.
* With ``fsync=False`` a record survives a process crash (it is in the page cache) but not
  a power loss; after a power loss the log may be cut short or, if the kernel wrote pages
  out of order, fail to open with :class:`CollectionError`. Use it to measure the cost of
  durability, or with :meth:`~WriteAheadLog.sync` for group commit.
* :meth:`~WriteAheadLog.truncate_through` deletes whole segments, oldest first, so a crash
  part-way leaves a contiguous suffix of the log; replay after a checkpoint skips records
  with ``seq <= checkpoint_seq``, so replaying them again is harmless (idempotent).

This is redo logging in the sense of ARIES (Mohan et al., "ARIES: a transaction recovery
method…", ACM TODS 17(1), 1992) reduced to whole-batch redo records with no undo (a batch
is applied only after it is durable), with per-record length + CRC framing as in LevelDB's
log format.

Appends, rotation and truncation are serialised by a lock; :meth:`replay` yields the
records written before it was called and is meant for shard open, before writes resume.

A log opened with ``read_only=True`` (a reader beside the writer, or read-only media)
never writes: it creates nothing, leaves a torn tail in place (it may be a record the
writer is appending right now) and refuses appends. A segment the writer deletes while a
reader scans it raises ``FileNotFoundError``, which the shard answers by reopening from
the newer checkpoint.

This module is longer than most (~440 lines) on purpose: framing, recovery, rotation,
truncation and the read-only scan share the segment format and its crash rules.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from ragfleet.errors import CollectionError, InputError, ReadOnlyError
from ragfleet.index import faults
from ragfleet.index.atomic import fsync_dir

__all__ = ["DEFAULT_SEGMENT_BYTES", "WriteAheadLog"]

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_BYTES = 64 * 2**20
_MAGIC = 0x31574652  # b"RFW1" read as little-endian u32
_FRAME = struct.Struct("<IIIQ")
_SEQ = struct.Struct("<Q")
_MAX_SEQ = 2**64 - 1
_SEGMENT_RE = re.compile(r"^(\d{6,})\.log$")
_fsync_file = getattr(os, "fdatasync", os.fsync)


def _crc(seq: int, payload: bytes | memoryview) -> int:
    """crc32 of ``seq (u64 LE) ‖ payload``."""
    return zlib.crc32(payload, zlib.crc32(_SEQ.pack(seq)))


def encode_record(seq: int, payload: bytes) -> bytes:
    """One framed record (exposed for tests and tools that inspect the format)."""
    return _FRAME.pack(_MAGIC, len(payload), _crc(seq, payload), seq) + payload


@dataclass(frozen=True, slots=True)
class _Scan:
    """What reading one segment found: its good records and where it went bad."""

    records: tuple[tuple[int, int, int], ...]  # (seq, payload start, payload end)
    good_end: int  # offset just past the last good record
    bad_reason: str | None  # why the record at good_end is not valid, None if clean


def _parse_at(data: bytes, off: int) -> tuple[int, int, int] | str:
    """``(seq, payload_start, payload_end)`` of the record at ``off``, or why it is bad."""
    if len(data) - off < _FRAME.size:
        return f"short header ({len(data) - off} of {_FRAME.size} bytes)"
    magic, length, crc, seq = _FRAME.unpack_from(data, off)
    if magic != _MAGIC:
        return f"bad magic {magic:#010x}"
    start, end = off + _FRAME.size, off + _FRAME.size + length
    if end > len(data):
        return f"length {length} runs past the end of the file"
    if _crc(seq, memoryview(data)[start:end]) != crc:
        return "crc mismatch"
    return seq, start, end


def _scan(data: bytes, path: Path, prev_seq: int) -> _Scan:
    """Read records from the start of ``data`` until the end or the first bad one."""
    records: list[tuple[int, int, int]] = []
    off = 0
    while off < len(data):
        got = _parse_at(data, off)
        if isinstance(got, str):
            return _Scan(tuple(records), off, got)
        seq = got[0]
        if seq <= prev_seq:
            raise CollectionError(
                f"WAL segment {path} at offset {off}: seq {seq} does not follow {prev_seq}; "
                "the log is out of order (two writers?); restore the shard from a replica"
            )
        records.append(got)
        prev_seq, off = seq, got[2]
    return _Scan(tuple(records), off, None)


def _valid_record_after(data: bytes, off: int, prev_seq: int) -> int | None:
    """Offset of a valid record (seq > prev_seq) anywhere after ``off``, else None."""
    magic = struct.pack("<I", _MAGIC)
    pos = data.find(magic, off + 1)
    while pos != -1:
        got = _parse_at(data, pos)
        if not isinstance(got, str) and got[0] > prev_seq:
            return pos
        pos = data.find(magic, pos + 1)
    return None


def _read_segment(path: Path, prev_seq: int, *, is_last: bool) -> tuple[bytes, _Scan]:
    """Read and validate one segment; a bad record is allowed only as a torn tail."""
    data = path.read_bytes()
    scan = _scan(data, path, prev_seq)
    if scan.bad_reason is None:
        return data, scan
    last = scan.records[-1][0] if scan.records else prev_seq
    where = f"WAL segment {path} is corrupt at offset {scan.good_end} ({scan.bad_reason})"
    if not is_last:
        raise CollectionError(
            f"{where} and later segments exist: acknowledged records would be lost; "
            "restore the shard from a replica or rebuild it from its source"
        )
    after = _valid_record_after(data, scan.good_end, last)
    if after is not None:
        raise CollectionError(
            f"{where} but a valid record follows at offset {after}: this is damage to "
            "acknowledged data, not a torn write; restore the shard from a replica"
        )
    return data, scan


class WriteAheadLog:
    """The append-only, checksummed log of one shard (see the module docstring).

    Args:
        path: the WAL directory (the shard passes ``shard_dir / "wal"``); created if absent.
        segment_bytes: a segment is closed and a new one started before it would pass this.
        read_only: read the log without writing anything (see the module docstring).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        read_only: bool = False,
    ) -> None:
        if segment_bytes < _FRAME.size + 1:
            raise InputError(f"segment_bytes must be > {_FRAME.size}, got {segment_bytes}")
        self.path = Path(path)
        self.segment_bytes = segment_bytes
        self.read_only = read_only
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._size = 0
        self._dir_dirty = False
        self._unsynced = False  # the active segment holds appends not yet fsynced
        self._broken: str | None = None
        if self.path.exists() and not self.path.is_dir():
            raise CollectionError(f"WAL path {self.path} exists and is not a directory")
        if not self.path.is_dir() and not read_only:
            self.path.mkdir(parents=True, exist_ok=True)
            fsync_dir(self.path.parent)
        self._segments = self._list_segments() if self.path.is_dir() else []
        self._first_seqs: dict[Path, int] = {}
        self._last_seq = self._recover()

    # -- opening -------------------------------------------------------------------

    def _list_segments(self) -> list[Path]:
        found = [
            (int(m.group(1)), p)
            for p in self.path.iterdir()
            if (m := _SEGMENT_RE.match(p.name)) and p.is_file()
        ]
        return [p for _, p in sorted(found)]

    def _recover(self) -> int:
        """Validate every segment, drop a torn tail, and return the last seq (0 if none)."""
        last = 0
        for i, seg in enumerate(self._segments):
            is_last = i == len(self._segments) - 1
            _, scan = _read_segment(seg, last, is_last=is_last)
            if scan.records:
                self._first_seqs[seg] = scan.records[0][0]
                last = scan.records[-1][0]
            if scan.bad_reason is not None and not self.read_only:
                self._truncate_tail(seg, scan)
        return last

    def _truncate_tail(self, seg: Path, scan: _Scan) -> None:
        dropped = seg.stat().st_size - scan.good_end
        log.warning(
            "WAL %s: dropping a torn last record at offset %d (%s, %d bytes)",
            seg,
            scan.good_end,
            scan.bad_reason,
            dropped,
        )
        fd = os.open(seg, os.O_WRONLY)
        try:
            os.ftruncate(fd, scan.good_end)
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- writing -------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        """The highest seq appended (or truncated through), 0 for an empty log."""
        return self._last_seq

    def segments(self) -> list[Path]:
        """The segment files, oldest first."""
        with self._lock:
            return list(self._segments)

    def append(self, seq: int, payload: bytes, fsync: bool = True) -> None:
        """Append one record; with ``fsync`` it is durable when this returns.

        Raises:
            InputError: ``seq`` is not greater than :attr:`last_seq`, or too large.
            CollectionError: the write or fsync failed; nothing of the record remains. A
                failed write (a full disk) is cut off and the log takes appends again; after
                a failed fsync it refuses appends until reopened (the page cache is no
                longer trusted).
        """
        if self.read_only:
            raise ReadOnlyError(f"WAL {self.path} is open read-only")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq > _MAX_SEQ:
            raise InputError(f"WAL seq must be an int below 2**64, got {seq!r}")
        record = encode_record(seq, payload)
        with self._lock:
            if self._broken is not None:
                raise CollectionError(f"WAL {self.path} is unusable after {self._broken}; reopen")
            if seq <= self._last_seq:
                raise InputError(f"WAL seq {seq} must exceed the last seq {self._last_seq}")
            failed = f"WAL {self.path}: append of seq {seq} failed"
            try:
                fd = self._active_fd(len(record))
            except OSError as e:  # no segment to write to (EMFILE, ENOSPC): nothing written
                raise CollectionError(f"{failed}: {e}") from e
            faults.point("wal.append")
            try:
                _write_all(fd, record)
            except OSError as e:
                # a short write (ENOSPC, EDQUOT): cut it off; if that works the log is exactly
                # as before and takes appends again once the disk has room
                if not _try_truncate(fd, self._size):
                    self._broken = f"a failed append of seq {seq} that could not be cut off"
                raise CollectionError(f"{failed}: {e}") from e
            if fsync:
                faults.point("wal.fsync")
                try:
                    self._sync_locked(fd)
                except OSError as e:
                    # after a failed fsync the page cache is no longer trusted (fsyncgate):
                    # cut the record off so a reopen cannot apply a write reported as failed
                    _try_truncate(fd, self._size)
                    self._broken = f"a failed fsync of seq {seq}: {e}"
                    raise CollectionError(f"{failed}: {e}") from e
            else:
                self._unsynced = True
            self._first_seqs.setdefault(self._segments[-1], seq)
            self._size += len(record)
            self._last_seq = seq

    def sync(self) -> None:
        """fsync everything appended so far (group commit after ``fsync=False`` appends)."""
        with self._lock:
            if self._fd is not None:
                self._sync_locked(self._fd)

    def _sync_locked(self, fd: int) -> None:
        _fsync_file(fd)
        self._unsynced = False
        if self._dir_dirty:
            fsync_dir(self.path)
            self._dir_dirty = False

    def _active_fd(self, record_len: int) -> int:
        """The fd of the segment to write to, rotating first if the record would not fit."""
        if self._fd is None and self._segments:
            self._fd = os.open(self._segments[-1], os.O_WRONLY | os.O_APPEND)
            self._size = os.fstat(self._fd).st_size
        fits = self._size == 0 or self._size + record_len <= self.segment_bytes
        if self._fd is not None and fits:
            return self._fd
        return self._rotate()

    def _rotate(self) -> int:
        """Close the active segment and create the next one (its dir entry is synced later)."""
        if self._fd is not None:
            if self._unsynced:  # keep sync() meaning "everything so far" across rotation
                self._sync_locked(self._fd)
            os.close(self._fd)
            self._fd = None
        last = self._segments[-1] if self._segments else None
        index = int(last.stem) + 1 if last is not None else 1
        seg = self.path / f"{index:06d}.log"
        fd = os.open(seg, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        self._fd, self._size = fd, 0
        self._segments.append(seg)
        self._dir_dirty = True
        return fd

    # -- reading and truncating -----------------------------------------------------

    def replay(self, after_seq: int = 0) -> Iterator[tuple[int, bytes]]:
        """Yield ``(seq, payload)`` for every record with ``seq > after_seq``, in order.

        Each segment is validated whole before its records are yielded; corruption
        raises :class:`CollectionError` (a torn tail was already dropped at open).
        """
        with self._lock:
            segments = list(self._segments)
            active_size = self._size if self._fd is not None else None
        last = 0
        for i, seg in enumerate(segments):
            nxt = self._first_seqs.get(segments[i + 1]) if i + 1 < len(segments) else None
            if nxt is not None and nxt <= after_seq + 1:
                last = nxt - 1  # every record here is <= after_seq: skip reading it
                continue
            data, scan = _read_segment(seg, last, is_last=i == len(segments) - 1)
            limit = active_size if active_size is not None and i == len(segments) - 1 else None
            for seq, start, end in scan.records:
                if limit is not None and end > limit:
                    break
                last = seq
                if seq > after_seq:
                    yield seq, data[start:end]

    def truncate_through(self, seq: int) -> None:
        """Delete the segments whose records all have ``seq' <= seq`` (after a checkpoint).

        The active segment is closed first when it is wholly covered, so the next append
        starts a new segment. Segments are deleted oldest first and the directory fsynced.
        Afterwards :attr:`last_seq` is at least ``seq``.
        """
        if self.read_only:
            raise ReadOnlyError(f"WAL {self.path} is open read-only")
        with self._lock:
            if self._segments and self._last_seq <= seq and self._has_records_locked():
                self._rotate()
            doomed = [
                seg
                for seg, nxt in zip(self._segments, self._segments[1:], strict=False)
                if self._first_seqs.get(nxt, self._last_seq + 1) <= seq + 1
            ]
            for seg in doomed:
                faults.point("wal.truncate")
                seg.unlink()
                self._segments.remove(seg)
                self._first_seqs.pop(seg, None)
            if doomed or self._dir_dirty:
                fsync_dir(self.path)
                self._dir_dirty = False
            self._last_seq = max(self._last_seq, seq)

    def _has_records_locked(self) -> bool:
        if self._fd is not None:
            return self._size > 0
        return self._segments[-1].stat().st_size > 0

    def close(self) -> None:
        """fsync what ``fsync=False`` appends left unsynced, and close the active segment."""
        with self._lock:
            if self._fd is not None:
                if self._unsynced:
                    self._sync_locked(self._fd)
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> WriteAheadLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _try_truncate(fd: int, size: int) -> bool:
    """Best effort: cut a half-written record off after a failed append; whether it worked."""
    try:
        os.ftruncate(fd, size)
        _fsync_file(fd)
    except OSError as e:
        log.error("WAL: could not cut a failed append back to %d bytes: %s", size, e)
        return False
    return True
