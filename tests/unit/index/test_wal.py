"""WriteAheadLog: framing, torn tails at every byte, corruption, rotation, truncation."""

from __future__ import annotations

import os
import struct
import threading
import zlib
from pathlib import Path

import pytest

from ragfleet.errors import CollectionError, InputError
from ragfleet.index.wal import WriteAheadLog, encode_record

HEADER = 20  # magic u32 | length u32 | crc32 u32 | seq u64


def payload(seq: int) -> bytes:
    """A deterministic payload whose length varies with seq (1..40 bytes)."""
    return (f"<{seq}>" * 40).encode()[: 1 + seq * 7 % 40]


def fill(path: Path, seqs: range, **kw: int) -> WriteAheadLog:
    wal = WriteAheadLog(path, **kw)
    for s in seqs:
        wal.append(s, payload(s))
    return wal


def replayed(path: Path, after: int = 0, **kw: int) -> list[tuple[int, bytes]]:
    with WriteAheadLog(path, **kw) as wal:
        return list(wal.replay(after))


def test_record_framing_is_magic_length_crc_seq_payload() -> None:
    rec = encode_record(7, b"abc")
    magic, length, crc, seq = struct.unpack_from("<IIIQ", rec)
    assert rec[:4] == b"RFW1" and magic == 0x31574652
    assert (length, seq, rec[HEADER:]) == (3, 7, b"abc")
    assert crc == zlib.crc32(b"abc", zlib.crc32(struct.pack("<Q", 7)))


def test_append_then_replay_in_order_and_after_seq(tmp_path: Path) -> None:
    fill(tmp_path / "wal", range(1, 11)).close()
    assert replayed(tmp_path / "wal") == [(s, payload(s)) for s in range(1, 11)]
    assert [s for s, _ in replayed(tmp_path / "wal", after=7)] == [8, 9, 10]
    assert replayed(tmp_path / "wal", after=10) == []
    assert (tmp_path / "wal" / "000001.log").stat().st_size == sum(
        HEADER + len(payload(s)) for s in range(1, 11)
    )


def test_empty_and_missing_directory(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "a" / "wal")
    assert wal.last_seq == 0 and list(wal.replay()) == [] and wal.segments() == []
    wal.append(1, b"")
    assert list(wal.replay()) == [(1, b"")]


def test_reopen_continues_and_seq_must_increase(tmp_path: Path) -> None:
    fill(tmp_path, range(1, 4)).close()
    wal = WriteAheadLog(tmp_path)
    assert wal.last_seq == 3
    with pytest.raises(InputError, match="must exceed the last seq 3"):
        wal.append(3, b"dup")
    with pytest.raises(InputError, match="below 2"):
        wal.append(2**64, b"")
    wal.append(10, b"gap ok")  # strictly increasing, not necessarily contiguous
    assert [s for s, _ in wal.replay()] == [1, 2, 3, 10]


def test_torn_tail_at_every_byte_offset_of_the_last_record(tmp_path: Path) -> None:
    src = tmp_path / "src"
    fill(src, range(1, 6)).close()
    data = (src / "000001.log").read_bytes()
    last_start = len(data) - HEADER - len(payload(5))
    for cut in range(last_start, len(data)):  # every proper prefix of the last record
        wal_dir = tmp_path / f"cut{cut}"
        wal_dir.mkdir()
        (wal_dir / "000001.log").write_bytes(data[:cut])
        wal = WriteAheadLog(wal_dir)
        assert [s for s, _ in wal.replay()] == [1, 2, 3, 4], cut
        assert (wal_dir / "000001.log").stat().st_size == last_start  # garbage cut off
        wal.append(5, b"again")
        wal.close()
        assert replayed(wal_dir) == [*((s, payload(s)) for s in range(1, 5)), (5, b"again")]


@pytest.mark.parametrize("garbage", [b"\0" * 64, b"\xff" * 7, b"RFW1" + b"\x01" * 30])
def test_garbage_after_the_last_record_is_a_torn_tail(tmp_path: Path, garbage: bytes) -> None:
    fill(tmp_path, range(1, 4)).close()
    with open(tmp_path / "000001.log", "ab") as f:
        f.write(garbage)
    assert [s for s, _ in replayed(tmp_path)] == [1, 2, 3]


def test_bit_flip_anywhere_in_the_last_record_drops_it(tmp_path: Path) -> None:
    src = tmp_path / "src"
    fill(src, range(1, 4)).close()
    data = (src / "000001.log").read_bytes()
    last_start = len(data) - HEADER - len(payload(3))
    for pos in range(last_start, len(data)):
        wal_dir = tmp_path / f"flip{pos}"
        wal_dir.mkdir()
        flipped = bytearray(data)
        flipped[pos] ^= 1 << (pos % 8)
        (wal_dir / "000001.log").write_bytes(bytes(flipped))
        assert [s for s, _ in replayed(wal_dir)] == [1, 2], pos


@pytest.mark.parametrize("field_offset", [0, 4, 8, 12, HEADER])  # magic, len, crc, seq, payload
def test_bit_flip_in_a_middle_record_raises(tmp_path: Path, field_offset: int) -> None:
    fill(tmp_path, range(1, 6)).close()
    seg = tmp_path / "000001.log"
    data = bytearray(seg.read_bytes())
    second = HEADER + len(payload(1))
    data[second + field_offset] ^= 0x04
    seg.write_bytes(bytes(data))
    with pytest.raises(CollectionError, match=rf"000001\.log is corrupt at offset {second}"):
        WriteAheadLog(tmp_path)
    assert seg.read_bytes() == bytes(data)  # never truncated away


def test_corruption_in_an_earlier_segment_raises_even_at_its_end(tmp_path: Path) -> None:
    fill(tmp_path, range(1, 9), segment_bytes=100).close()
    first = tmp_path / "000001.log"
    data = first.read_bytes()
    first.write_bytes(data[:-1])  # the last record of a NON-last segment is torn
    with pytest.raises(CollectionError, match="later segments exist"):
        WriteAheadLog(tmp_path, segment_bytes=100)


def test_out_of_order_records_raise(tmp_path: Path) -> None:
    (tmp_path / "000001.log").write_bytes(encode_record(5, b"a") + encode_record(4, b"b"))
    with pytest.raises(CollectionError, match="does not follow"):
        WriteAheadLog(tmp_path)


def test_segment_rotation_at_the_size_limit(tmp_path: Path) -> None:
    limit = 120
    wal = fill(tmp_path, range(1, 31), segment_bytes=limit)
    segs = wal.segments()
    assert [p.name for p in segs] == [f"{i:06d}.log" for i in range(1, len(segs) + 1)]
    assert len(segs) > 5
    assert all(p.stat().st_size <= limit for p in segs)
    wal.append(31, b"x" * 500)  # bigger than a segment: gets a segment of its own
    assert wal.segments()[-1].stat().st_size == HEADER + 500
    wal.close()
    assert [s for s, _ in replayed(tmp_path, segment_bytes=limit)] == list(range(1, 32))
    assert [s for s, _ in replayed(tmp_path, after=17)] == list(range(18, 32))


def test_truncate_through_deletes_covered_segments_only(tmp_path: Path) -> None:
    wal = fill(tmp_path, range(1, 31), segment_bytes=120)
    before = wal.segments()
    wal.truncate_through(12)
    after = wal.segments()
    assert after == before[len(before) - len(after) :]  # a suffix: oldest deleted
    assert not any(p.exists() for p in before[: len(before) - len(after)])
    seqs = [s for s, _ in wal.replay()]
    assert seqs[-1] == 30 and seqs == list(range(seqs[0], 31)) and seqs[0] <= 13
    assert seqs[0] > 1  # something was reclaimed
    assert [s for s, _ in wal.replay(after_seq=12)] == list(range(13, 31))


def test_truncate_through_everything_rotates_to_a_fresh_segment(tmp_path: Path) -> None:
    wal = fill(tmp_path, range(1, 6))
    wal.truncate_through(5)
    assert [p.name for p in wal.segments()] == ["000002.log"]
    assert list(wal.replay()) == []
    wal.append(6, b"six")
    wal.close()
    assert replayed(tmp_path) == [(6, b"six")]
    wal = WriteAheadLog(tmp_path)
    wal.truncate_through(6)
    wal.truncate_through(6)  # idempotent
    assert wal.last_seq == 6 and list(wal.replay()) == []


def test_truncate_through_a_checkpoint_ahead_of_the_log_raises_the_floor(tmp_path: Path) -> None:
    wal = fill(tmp_path, range(1, 3))
    wal.truncate_through(100)
    assert wal.last_seq == 100
    with pytest.raises(InputError):
        wal.append(50, b"stale")
    wal.append(101, b"next")
    assert list(wal.replay()) == [(101, b"next")]


def test_fsync_false_and_sync(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, segment_bytes=100)
    for s in range(1, 20):
        wal.append(s, payload(s), fsync=False)
    wal.sync()
    wal.close()
    assert replayed(tmp_path) == [(s, payload(s)) for s in range(1, 20)]


def test_concurrent_appends_never_interleave_bytes(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, segment_bytes=4096)
    counter = iter(range(1, 10**6))
    counter_lock = threading.Lock()
    ok: list[int] = []

    def worker() -> None:
        for _ in range(60):
            with counter_lock:
                seq = next(counter)
            try:
                wal.append(seq, payload(seq), fsync=False)
                ok.append(seq)
            except InputError:  # a later seq won the race: refused, never half-written
                pass

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wal.close()
    got = replayed(tmp_path)
    assert [s for s, _ in got] == sorted(ok) and len(got) == len(ok) > 0
    assert all(p == payload(s) for s, p in got)


def test_replay_sees_a_snapshot_and_appends_after_replay_work(tmp_path: Path) -> None:
    wal = fill(tmp_path, range(1, 4))
    it = wal.replay()
    assert next(it)[0] == 1
    wal.append(4, b"four")  # appended after replay started: not in this replay
    assert [s for s, _ in it] == [2, 3]
    assert [s for s, _ in wal.replay()] == [1, 2, 3, 4]


def test_unknown_files_in_the_wal_dir_are_ignored(tmp_path: Path) -> None:
    fill(tmp_path, range(1, 3)).close()
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "12.log").write_text("short name, not a segment")
    assert [s for s, _ in replayed(tmp_path)] == [1, 2]


def test_invalid_segment_size(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="segment_bytes"):
        WriteAheadLog(tmp_path, segment_bytes=HEADER)
    (tmp_path / "file").write_text("x")
    with pytest.raises(CollectionError, match="not a directory"):
        WriteAheadLog(tmp_path / "file")


def test_a_torn_first_record_of_a_new_segment(tmp_path: Path) -> None:
    fill(tmp_path, range(1, 9), segment_bytes=100).close()
    n = len(list(tmp_path.glob("*.log")))
    new = tmp_path / f"{n + 1:06d}.log"  # crash right after rotation, mid first record
    new.write_bytes(encode_record(9, b"nine")[:7])
    wal = WriteAheadLog(tmp_path, segment_bytes=100)
    assert wal.last_seq == 8 and new.stat().st_size == 0
    assert [s for s, _ in wal.replay()] == list(range(1, 9))
    wal.append(9, b"nine")
    assert wal.segments()[-1] == new
    assert list(wal.replay(after_seq=8)) == [(9, b"nine")]


def test_a_failed_append_poisons_the_log_until_reopened(tmp_path: Path) -> None:
    wal = fill(tmp_path, range(1, 4))
    assert wal._fd is not None
    os.close(wal._fd)  # the next write fails with EBADF, as a dying disk would fail it
    with pytest.raises(CollectionError, match="append of seq 4 failed"):
        wal.append(4, b"four")
    with pytest.raises(CollectionError, match="unusable"):
        wal.append(5, b"five")
    wal._fd = None  # it was closed above; reopening must not close it twice
    assert replayed(tmp_path) == [(s, payload(s)) for s in range(1, 4)]
    wal = WriteAheadLog(tmp_path)
    wal.append(4, b"four")
    assert [s for s, _ in wal.replay()] == [1, 2, 3, 4]
