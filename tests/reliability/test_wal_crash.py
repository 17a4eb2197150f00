"""Real crashes: a child process writes durably and is SIGKILLed at random moments.

The child prints each sequence number only after ``append`` (or ``commit_checkpoint``)
returned, i.e. after it was acknowledged. After every kill the parent reopens the log
(recovering a torn tail if the kill tore one) and checks that every acknowledged record
is there, in order, with its exact bytes, and nothing follows a gap. The next trial's
child continues the same log, so recovery is followed by further crashing appends.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ragfleet.index.manifest import ShardManifest, gc_unreferenced
from ragfleet.index.wal import WriteAheadLog

pytestmark = pytest.mark.slow

SRC = Path(__file__).resolve().parents[2] / "src"
SEGMENT_BYTES = 4096  # small, so that kills also land around segment rotation

COMMON = '''
import hashlib, json, sys
from pathlib import Path

def payload(seq):
    """Deterministic bytes, 1..600 long: a torn or mixed record cannot pass for it."""
    digest = hashlib.sha256(str(seq).encode()).digest()
    return (digest * 19)[: 1 + int.from_bytes(digest[:2], "little") % 600]

def say(*words):
    sys.stdout.write(" ".join(map(str, words)) + "\\n")
    sys.stdout.flush()
'''

WAL_CHILD = (
    COMMON
    + """
from ragfleet.index.wal import WriteAheadLog
wal = WriteAheadLog(sys.argv[1], segment_bytes=int(sys.argv[2]))
seq = wal.last_seq
say("ready", seq)
while True:
    seq += 1
    wal.append(seq, payload(seq))
    say("a", seq)
    if seq % 25 == 0:
        wal.truncate_through(seq - 10)
        say("t", seq - 10)
"""
)

CHECKPOINT_CHILD = (
    COMMON
    + """
from ragfleet.index.manifest import (
    ShardManifest, checkpoint_name, commit_checkpoint, gc_unreferenced)
from ragfleet.index.wal import WriteAheadLog
shard = Path(sys.argv[1])
wal = WriteAheadLog(shard / "wal", segment_bytes=int(sys.argv[2]))
state, number, seq, m = [], 0, wal.last_seq, None
if (shard / "manifest.json").exists():
    m = ShardManifest.load(shard)
    state = json.loads(m.path(shard, "state").read_bytes())
    number, seq = m.generation, max(seq, m.checkpoint_seq)
state += [s for s, _ in wal.replay(after_seq=m.checkpoint_seq if m else 0)]
gc_unreferenced(shard, m)  # orphans of a checkpoint that crashed before its commit
say("ready", seq)
while True:
    seq += 1
    wal.append(seq, payload(seq))
    state.append(seq)
    say("a", seq)
    if seq % 3 == 0:
        say("b", seq)
        number += 1
        new = {"state": shard / checkpoint_name("state", number, ".json"),
               "pad": shard / checkpoint_name("pad", number)}
        new["state"].write_text(json.dumps(state))
        new["pad"].mkdir()
        for i in range(3):
            (new["pad"] / f"part{i}.bin").write_bytes(payload(seq + i) * 20)
        m = ShardManifest(shard_id=0, generation=number, n_rows=len(state),
                          n_live=len(state), contract_fingerprint="fp", checkpoint_seq=seq)
        m = commit_checkpoint(shard, new, m)
        say("c", seq)
        gc_unreferenced(shard, m)
        wal.truncate_through(seq)
"""
)


def payload(seq: int) -> bytes:
    """Same as the child's."""
    digest = hashlib.sha256(str(seq).encode()).digest()
    return (digest * 19)[: 1 + int.from_bytes(digest[:2], "little") % 600]


def crash_child(
    script: str, target: Path, rng: random.Random, max_lines: int, max_wait_s: float
) -> tuple[int, list[tuple[str, int]]]:
    """Run ``script``; after it printed a random number of lines (so that the amount of
    work does not depend on the machine's load) and a random extra delay, SIGKILL it.

    Returns the seq it started after and the complete ``(kind, seq)`` lines it printed
    (its acknowledgements).
    """
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    stderr_path = target.parent / f"{target.name}.stderr"
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", script, str(target), str(SEGMENT_BYTES)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
        )
    assert proc.stdout is not None
    with proc.stdout:
        ready = proc.stdout.readline()
        seen = [proc.stdout.readline() for _ in range(rng.randint(0, max_lines) * bool(ready))]
        time.sleep(rng.uniform(0.0, max_wait_s))
        proc.send_signal(signal.SIGKILL)
        out = b"".join(seen) + proc.stdout.read()  # same buffered reader: nothing is lost
    proc.wait(timeout=10)
    assert ready.startswith(b"ready"), stderr_path.read_text()
    assert proc.returncode == -signal.SIGKILL, stderr_path.read_text()
    lines = [line.split() for line in out.decode().splitlines(keepends=True) if line.endswith("\n")]
    return int(ready.split()[1]), [(kind, int(seq)) for kind, seq in lines]


def check_log(wal: WriteAheadLog, after: int, acked: list[int], newest: int) -> list[int]:
    """Replayed seqs: exact payloads, contiguous, covering every acked seq > ``after``, and
    at most one record past ``newest`` (the kill may interrupt one acknowledgement)."""
    got = list(wal.replay(after_seq=after))
    seqs = [s for s, _ in got]
    for seq, data in got:
        assert data == payload(seq), f"seq {seq} replayed with wrong bytes"
    if seqs:
        assert seqs == list(range(seqs[0], seqs[-1] + 1)), "a gap in the replayed log"
        assert seqs[0] <= after + 1, f"records {after + 1}..{seqs[0] - 1} were lost"
    must = [s for s in acked if s > after]
    assert set(must) <= set(seqs), f"acknowledged seqs lost: {sorted(set(must) - set(seqs))}"
    assert (seqs[-1] if seqs else after) <= max(newest, after) + 1, (seqs[-1:], newest)
    return seqs


def test_sigkill_during_appends_never_loses_an_acknowledged_record(tmp_path: Path) -> None:
    rng = random.Random(20241123)
    acked: list[int] = []
    floor = 0  # records <= floor may be gone: a truncate_through(floor) may have run
    for _ in range(50):
        start, lines = crash_child(WAL_CHILD, tmp_path, rng, max_lines=30, max_wait_s=0.01)
        acked += [s for kind, s in lines if kind == "a"]
        newest = max([start] + [s for kind, s in lines if kind == "a"])
        # the child truncates through seq - 10 right after acknowledging seq % 25 == 0
        floor = max([floor] + [s - 10 for s in acked if s % 25 == 0])
        with WriteAheadLog(tmp_path, segment_bytes=SEGMENT_BYTES) as wal:
            seqs = check_log(wal, floor, acked, newest)
            assert wal.last_seq == (seqs[-1] if seqs else wal.last_seq)
    assert len(acked) > 300, "the child barely wrote: the test did not exercise much"
    segments = [int(p.stem) for p in tmp_path.glob("*.log")]
    assert floor > 0 and max(segments) > 1, "the log never rotated: rotation was not exercised"


def test_sigkill_during_checkpoints_leaves_a_loadable_consistent_shard(tmp_path: Path) -> None:
    rng = random.Random(7)
    acked: list[int] = []
    acked_ckpt = 0
    killed_in_checkpoint = 0
    for _ in range(25):
        start, lines = crash_child(CHECKPOINT_CHILD, tmp_path, rng, max_lines=30, max_wait_s=0.02)
        acked += [s for kind, s in lines if kind == "a"]
        newest = max([start] + [s for kind, s in lines if kind == "a"])
        acked_ckpt = max([acked_ckpt] + [s for kind, s in lines if kind == "c"])
        killed_in_checkpoint += bool(lines) and lines[-1][0] == "b"
        if not (tmp_path / "manifest.json").exists():
            assert acked_ckpt == 0
            continue
        m = ShardManifest.load(tmp_path, verify=True)  # every referenced file intact
        assert m.checkpoint_seq >= acked_ckpt
        state = json.loads(m.path(tmp_path, "state").read_bytes())
        assert state == list(range(1, m.checkpoint_seq + 1))
        with WriteAheadLog(tmp_path / "wal", segment_bytes=SEGMENT_BYTES) as wal:
            seqs = check_log(wal, m.checkpoint_seq, acked, newest)
        assert state + seqs == list(range(1, len(state) + len(seqs) + 1))
        gc_unreferenced(tmp_path, m)
        names = {p.name for p in tmp_path.iterdir()}
        assert names == {"manifest.json", "wal", *(e.name for e in m.files.values())}
    print(f"{killed_in_checkpoint} of 25 kills landed inside a checkpoint; last {acked_ckpt}")
    assert acked_ckpt > 0 and killed_in_checkpoint >= 3, (acked_ckpt, killed_in_checkpoint)
