"""``ragfleet ingest-worker`` killed with SIGKILL at random moments while entries are
published: after a final worker drains the stream, no acknowledged change is lost, none is
applied twice, and the collection equals a clean build of the newest documents."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.reliability.procs import ENV, RAGFLEET
from tests.unit.cache.conftest import RedisServer, redis_server, start_redis

from ragfleet.collection import Collection
from ragfleet.config import CollectionConfig, ShardingConfig
from ragfleet.feed import StreamAddress, feed_status, publish
from ragfleet.ingest.hashing import document_hash
from ragfleet.types import Document

__all__ = ["redis_server", "start_redis"]
KILLS = int(os.environ.get("RAGFLEET_FEED_KILLS", "4"))


def start_worker(path: Path, url: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(RAGFLEET), "ingest-worker", str(path), "--stream", url, "--group", "g",
         "--workers", "2", "--batch-max", "16", "--claim-idle-s", "0.5"],
        env=ENV, stdout=subprocess.DEVNULL, stderr=log.open("ab"),
    )  # fmt: skip


def live_state(col: Collection) -> tuple[dict[str, str], int]:
    hashes: dict[str, str] = {}
    chunks = 0
    for s in col.shards:
        hashes.update(s.doc_hashes())
        chunks += int(str(s.stats()["live_chunks"]))
    return hashes, chunks


def test_sigkill_loses_and_duplicates_nothing(
    redis_server: RedisServer, tmp_path: Path, encoder: Any
) -> None:
    rng = random.Random(7)
    path = tmp_path / "c"
    config = CollectionConfig(sharding=ShardingConfig(n_shards=2))
    Collection.create(path, config, encoder=encoder).close()
    url = f"{redis_server.url}?stream=kill{os.getpid()}"
    address = StreamAddress.parse(url)
    newest: dict[str, Document | None] = {}
    log = tmp_path / "worker.log"
    for round_ in range(KILLS):
        changes: list[Any] = []
        for i in rng.sample(range(80), 40):
            if rng.random() < 0.15:
                changes.append(("delete", f"d{i}"))
                newest[f"d{i}"] = None
            else:
                d = Document(f"d{i}", f"round {round_} text of {i} " * rng.randint(1, 30))
                changes.append(d)
                newest[d.doc_id] = d
        publish(address, changes)
        proc = start_worker(path, url, log)
        time.sleep(rng.uniform(1.0, 3.5))  # loading the model, then mid-batch
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    proc = start_worker(path, url, log)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        st = feed_status(address, "g")
        if st.lag_entries == 0 and st.pending == 0:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, log.read_text()[-2000:]
    assert (st.lag_entries, st.pending, st.dead_letters) == (0, 0, 0), st
    want = [d for d in newest.values() if d is not None]
    clean = Collection.build(tmp_path / "clean", want, config, encoder=encoder)
    with Collection.open(path, encoder=encoder) as col:
        got, chunks = live_state(col)
        assert got == {d.doc_id: document_hash(d) for d in want}
        assert (got, chunks) == live_state(clean)  # no chunk applied twice
        for q in ("round 3 text of 5", "text of 42", "round 0"):
            a = [h.chunk_id for h in col.search(q, k=5, mode="sparse").hits]
            b = [h.chunk_id for h in clean.search(q, k=5, mode="sparse").hits]
            assert a == b, q
    clean.close()
    assert json.loads(json.dumps(st.to_dict()))["group"] == "g"
