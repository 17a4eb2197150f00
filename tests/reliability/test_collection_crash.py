"""Crash test of the collection write path (issue 5, the main proof).

A writer process (forked from the zygote in ``crash_writer.py``, which holds the real int8
encoder, so a trial does not pay a model load) upserts and deletes batches of documents —
new ones, changed ones, deleted ones — with a checkpoint every two batches, and is
SIGKILLed at a random moment, ``TRIALS`` times on one collection. After every kill the
collection is reopened and checked against the acknowledged batches:

* every acknowledged document holds exactly its acknowledged chunks (ids and texts as
  the chunker makes them; doc hash of that version): nothing half-written, no duplicates;
* the one batch in flight at the kill left each of its documents wholly old or wholly new;
* searches return only live chunks of the acknowledged versions (never a tombstone), and
  find every document by its unique tag word;
* every ``REBUILD_EVERY`` trials: top-10 dense and sparse results equal those of a clean
  rebuild of the acknowledged set.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ragfleet.collection import Collection
from ragfleet.config import ChunkerConfig, CollectionConfig, ShardingConfig
from ragfleet.index.manifest import ShardManifest
from ragfleet.index.shard import CheckpointPolicy
from ragfleet.ingest.chunking import make_chunker
from ragfleet.ingest.hashing import document_hash
from ragfleet.types import Document

TRIALS = 50
REBUILD_EVERY = 10
WRITER = Path(__file__).with_name("crash_writer.py")
QUERIES = ["river castle engine", "glacier market violin", "comet saddle pepper garden"]
Expected = dict[str, str]  # doc_id → text of its acknowledged version


def _config() -> CollectionConfig:
    return CollectionConfig(
        sharding=ShardingConfig(n_shards=2), chunker=ChunkerConfig.parse("window:16:4")
    )


def _start_zygote() -> subprocess.Popen[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(WRITER)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def _kill_at_random(proc: subprocess.Popen[str], line: str, log: Path, rng: random.Random) -> None:
    """Start a writer; once it has had ``0..3`` batches acknowledged, wait a random
    0-0.6 s more (a point anywhere in the next batch: embedding, log append, apply,
    checkpoint) and SIGKILL it."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    pid = int(proc.stdout.readline())
    acks = rng.randint(0, 3)
    deadline = time.monotonic() + 60
    while log.read_text("utf-8").count('"ack"') < acks and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 0.6))
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return  # it finished every batch first
    while True:  # the zygote reaps it (SIGCHLD ignored); wait until it is gone
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.005)


def _read_log(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The acknowledged batches, and the one in flight (intent without ack), if any."""
    intents: dict[int, dict[str, Any]] = {}
    acked: list[dict[str, Any]] = []
    for line in path.read_text("utf-8").splitlines():
        rec = json.loads(line)
        if "intent" in rec:
            intents[rec["intent"]] = rec
        else:
            acked.append(intents.pop(rec["ack"]))
    return acked, (next(iter(intents.values())) if intents else None)


def _apply(expected: dict[str, str | None], batch: dict[str, Any]) -> None:
    expected.update(batch["upsert"])
    for d in batch["delete"]:
        expected[d] = None


def _orphans(root: Path) -> int:
    """Checkpoint files no manifest references: the trace of a kill mid-checkpoint."""
    n = 0
    for shard in root.glob("shard-*"):
        live = (
            {e.name for e in ShardManifest.load(shard).files.values()}
            if (shard / "manifest.json").exists()
            else set()
        )
        n += sum(
            1
            for p in shard.iterdir()
            if re.match(r"^\.?(dense|sparse)\.\d{6}", p.name) and p.name not in live
        )
    return n


def _stored(col: Collection) -> dict[str, list[tuple[str, str, str]]]:
    by_doc: dict[str, list[tuple[str, str, str]]] = {}
    for shard in col.shards:
        for c in shard.live_chunks():
            by_doc.setdefault(c.doc_id, []).append((c.chunk_id, c.text, c.doc_hash))
    return {d: sorted(v) for d, v in by_doc.items()}


def _version_chunks(chunker: Any, doc_id: str, text: str | None) -> list[tuple[str, str, str]]:
    if text is None:
        return []
    doc = Document(doc_id, text)
    return sorted((c.chunk_id, c.text, document_hash(doc)) for c in chunker.chunk_many([doc]))


def _check_documents(
    col: Collection, expected: dict[str, str | None], in_flight: dict[str, Any] | None
) -> None:
    """Every document is its acknowledged version, or (in the batch in flight) wholly the
    old or wholly the new one; resolves the in-flight documents in ``expected``."""
    chunker = make_chunker(col.config.chunker, col.encoder.tokenizer)
    stored = _stored(col)
    new: dict[str, str | None] = {}
    if in_flight is not None:
        _apply(new, in_flight)
    for doc_id in set(stored) | {d for d, t in expected.items() if t} | set(new):
        found = stored.get(doc_id, [])
        choices = [expected.get(doc_id)] + ([new[doc_id]] if doc_id in new else [])
        match = [v for v in choices if _version_chunks(chunker, doc_id, v) == found]
        assert match, f"{doc_id}: stored chunks {found} match no version of {choices}"
        expected[doc_id] = match[0]
    ids = [cid for chunks in stored.values() for cid, _, _ in chunks]
    assert len(ids) == len(set(ids)), "duplicate live chunks"


def _check_search(col: Collection, expected: dict[str, str | None]) -> None:
    live = {d: t for d, t in expected.items() if t}
    chunker = make_chunker(col.config.chunker, col.encoder.tokenizer)
    texts = {c: t for d, v in live.items() for c, t, _ in _version_chunks(chunker, d, v)}
    tags = {d: re.search(r"zq\S+", t).group(0) for d, t in live.items()}  # type: ignore[union-attr]
    if not tags:
        return
    from ragfleet.search.request import SearchRequest

    results = col.search_batch(list(tags.values()), SearchRequest(k=3, mode="sparse"))
    for (doc_id, tag), res in zip(tags.items(), results, strict=True):
        assert res.hits and res.hits[0].doc_id == doc_id, f"{doc_id} not found by its tag {tag}"
    for res in results + col.search_batch(QUERIES, SearchRequest(k=10, mode="hybrid")):
        for h in res.hits:
            assert texts.get(h.chunk_id) == h.text, f"{h.chunk_id} is not a live acknowledged chunk"


def _top(col: Collection) -> list[list[tuple[str, float]]]:
    from ragfleet.search.request import SearchRequest

    out = []
    for mode in ("dense", "sparse"):
        for res in col.search_batch(QUERIES, SearchRequest(k=10, mode=mode)):  # type: ignore[arg-type]
            out.append([(h.chunk_id, h.score) for h in res.hits])
    return out


def _same_top(a: list[tuple[str, float]], b: list[tuple[str, float]]) -> None:
    assert [s for _, s in a] == pytest.approx([s for _, s in b], abs=1e-4)
    last = a[-1][1] if a else 0.0
    assert {c for c, s in a if s > last + 1e-4} == {c for c, s in b if s > last + 1e-4}


def _check_rebuild(
    col: Collection, expected: dict[str, str | None], tmp: Path, encoder: Any
) -> None:
    docs = [Document(d, t) for d, t in sorted(expected.items()) if t]
    if not docs:
        return
    clean = Collection.build(tmp, docs, _config(), encoder=encoder)
    try:
        for got, want in zip(_top(col), _top(clean), strict=True):
            _same_top(got, want)
    finally:
        clean.close()


@pytest.mark.slow
def test_sigkill_anywhere_in_the_write_path_loses_nothing_acknowledged(
    tmp_path: Path, encoder: Any
) -> None:
    root = tmp_path / "col"
    Collection.create(root, _config(), encoder=encoder).close()
    zygote = _start_zygote()
    rng = random.Random(5)
    expected: dict[str, str | None] = {}
    mid_checkpoint = acked_batches = 0
    try:
        for trial in range(TRIALS):
            log = tmp_path / f"trial-{trial}.log"
            log.touch()
            _kill_at_random(zygote, f"{root} {log} {1000 + trial}", log, rng)
            err = log.with_suffix(".err")
            assert not err.exists(), f"writer failed: {err.read_text('utf-8')}"
            acked, in_flight = _read_log(log)
            for batch in acked:
                _apply(expected, batch)
            acked_batches += len(acked)
            mid_checkpoint += _orphans(root) > 0
            col = Collection.open(root, encoder=encoder, policy=CheckpointPolicy(max_batches=2))
            try:
                _check_documents(col, expected, in_flight)
                _check_search(col, expected)
                if trial % REBUILD_EVERY == REBUILD_EVERY - 1:
                    _check_rebuild(col, expected, tmp_path / f"clean-{trial}", encoder)
            finally:
                col.close()
    finally:
        assert zygote.stdin is not None
        zygote.stdin.close()
        zygote.wait(timeout=30)
    print(
        f"\n{TRIALS} kills, {acked_batches} acknowledged batches, {mid_checkpoint} mid-checkpoint"
    )
    assert acked_batches > TRIALS  # the kills landed across the write path, not only at start
