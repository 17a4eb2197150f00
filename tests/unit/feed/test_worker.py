"""FeedWorker against a real redis-server and a real collection: acknowledged only after the
write, stale redeliveries skipped, dead letters with reasons, a dead consumer's entries
reclaimed, status and lag."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from ragfleet.collection import Collection
from ragfleet.feed import FeedWorker, StreamAddress, WorkerConfig, feed_status, publish
from ragfleet.feed.batching import BatchPolicy
from ragfleet.feed.entry import FIELD
from ragfleet.feed.ledger import Ledger
from ragfleet.feed.publish import group_lag
from ragfleet.ingest.hashing import document_hash
from ragfleet.types import Document


def live(col: Collection) -> dict[str, str]:
    out: dict[str, str] = {}
    for s in col.shards:
        out.update(s.doc_hashes())
    return out


def make_worker(col: Collection, url: str, tmp_path: Any, **config: Any) -> FeedWorker:
    address = StreamAddress.parse(url)
    config.setdefault("claim_every_s", 0.0)
    cfg = WorkerConfig("g", **config)
    return FeedWorker(col, address, cfg, Ledger(tmp_path / f"{address.stream}.sqlite"))


def drain(w: FeedWorker, consumer: str = "c0", rounds: int = 50) -> None:
    client = w.address.client()
    try:
        for _ in range(rounds):
            w.step(client, consumer)
            info = next(iter(client.xinfo_groups(w.address.stream)))
            if not int(info["lag"] or 0) and not int(info["pending"]):
                return
        raise AssertionError("the group did not drain")
    finally:
        client.close()


def doc(i: int, v: int = 0) -> Document:
    return Document(f"d{i}", f"document {i} version {v} about topic {i % 7}", f"T{i}")


def test_upserts_updates_and_deletes_reach_the_collection(
    fresh_collection: Collection, stream_url: Callable[[], str], tmp_path: Any
) -> None:
    url = stream_url()
    w = make_worker(fresh_collection, url, tmp_path)
    a = StreamAddress.parse(url)
    publish(a, [doc(i) for i in range(20)])
    publish(a, [doc(3, 1), ("delete", "d4"), ("delete", "never-was")])
    drain(w)
    want = {f"d{i}": document_hash(doc(i)) for i in range(20) if i != 4}
    want["d3"] = document_hash(doc(3, 1))
    assert live(fresh_collection) == want
    hits = fresh_collection.search("document 3 version 1", k=1, mode="sparse")
    assert hits.hits[0].doc_id == "d3"  # read-your-writes once acknowledged
    st = feed_status(a, "g")
    assert (st.lag_entries, st.pending, st.dead_letters, st.length) == (0, 0, 0, 23)
    assert st.freshness_p50_s is not None and st.freshness_p50_s >= 0


def test_a_stale_redelivery_is_acknowledged_without_effect(
    fresh_collection: Collection, stream_url: Callable[[], str], tmp_path: Any
) -> None:
    url = stream_url()
    w = make_worker(fresh_collection, url, tmp_path)
    a = StreamAddress.parse(url)
    client = a.client()
    body = {"schema": 1, "op": "upsert", "doc": {"id": "x", "text": "old text"}}
    old = client.xadd(a.stream, {FIELD: json.dumps(body).encode()})
    publish(a, [Document("x", "new text")])
    publish(a, [Document("y", "why"), ("delete", "y")])
    drain(w)
    # a dead worker's copy of the old entry comes back after the newer one was applied
    w.process(client, [(old.decode(), {FIELD: client.xrange(a.stream, old, old)[0][1][FIELD]})])
    assert live(fresh_collection) == {"x": document_hash(Document("x", "new text"))}
    # a source version beats stream order: version 5 stays over a later version 2
    publish(a, [Document("z", "five")], versions=lambda c: 5)
    publish(a, [Document("z", "two")], versions=lambda c: 2)
    drain(w)
    assert live(fresh_collection)["z"] == document_hash(Document("z", "five"))
    client.close()


def test_poison_entries_go_to_the_dead_letter_stream_without_blocking(
    fresh_collection: Collection, stream_url: Callable[[], str], tmp_path: Any
) -> None:
    url = stream_url()
    w = make_worker(fresh_collection, url, tmp_path)
    a = StreamAddress.parse(url)
    client = a.client()
    client.xadd(a.stream, {FIELD: b"{oops"})
    client.xadd(a.stream, {b"other": b"1"})
    client.xadd(a.stream, {FIELD: json.dumps({"schema": 9, "op": "delete", "id": "q"}).encode()})
    publish(a, [doc(1)])
    drain(w)
    assert set(live(fresh_collection)) == {"d1"}
    dead = client.xrange(a.dead)
    reasons = [f[b"reason"].decode() for _, f in dead]
    assert len(reasons) == 3
    assert "not JSON" in reasons[0] and "no 'data' field" in reasons[1] and "schema 9" in reasons[2]
    assert dead[0][1][b"data"] == b"{oops" and dead[0][1][b"group"] == b"g"
    assert feed_status(a, "g").dead_letters == 3
    client.close()


def test_a_dead_consumers_entries_are_reclaimed(
    fresh_collection: Collection, stream_url: Callable[[], str], tmp_path: Any
) -> None:
    url = stream_url()
    w = make_worker(fresh_collection, url, tmp_path, claim_idle_ms=200)
    a = StreamAddress.parse(url)
    publish(a, [doc(i) for i in range(5)])
    client = a.client()
    taken = client.xreadgroup("g", "dead-one", {a.stream: ">"}, count=100)  # then it dies
    assert len(taken[0][1]) == 5
    assert w.step(client, "c0").acked == 0  # too soon to take over
    assert feed_status(a, "g").pending == 5
    time.sleep(0.3)
    assert w.step(client, "c0").applied == 5
    assert set(live(fresh_collection)) == {f"d{i}" for i in range(5)}
    assert feed_status(a, "g").pending == 0
    client.close()


def test_threads_drain_a_burst_and_publish_waits_on_lag(
    fresh_collection: Collection, stream_url: Callable[[], str], tmp_path: Any
) -> None:
    url = stream_url()
    w = make_worker(fresh_collection, url, tmp_path, workers=3,
                    batch=BatchPolicy(floor=2, ceiling=16))  # fmt: skip
    a = StreamAddress.parse(url)
    changes: list[Any] = [doc(i, v) for v in range(3) for i in range(40)]
    changes += [("delete", f"d{i}") for i in range(0, 40, 5)]
    w.start()
    try:
        report = publish(a, changes, max_lag=20, pipeline=10)
        deadline = time.monotonic() + 120
        client = a.client()
        while time.monotonic() < deadline:
            info = client.xinfo_groups(a.stream)[0]
            if not int(info["lag"] or 0) and not int(info["pending"]):
                break
            time.sleep(0.05)
        client.close()
    finally:
        w.stop()
    assert report.published == len(changes) and w.errors == []
    want = {f"d{i}": document_hash(doc(i, 2)) for i in range(40) if i % 5}
    assert live(fresh_collection) == want
    assert 2 <= w.batch.size <= 16


def test_lag_and_status_of_an_unknown_group(stream_url: Callable[[], str]) -> None:
    from ragfleet.errors import InputError

    a = StreamAddress.parse(stream_url())
    client = a.client()
    assert group_lag(client, a.stream) == 0  # no stream yet
    client.close()
    with pytest.raises(InputError, match="no consumer group"):
        feed_status(a, "nobody")
