"""The entry schema, the ledger and the adaptive batch, without Redis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ragfleet.errors import ConfigError, InputError
from ragfleet.feed.address import StreamAddress
from ragfleet.feed.batching import AdaptiveBatch, BatchPolicy
from ragfleet.feed.entry import PoisonEntry, decode, encode
from ragfleet.feed.ledger import Ledger
from ragfleet.types import Document


def test_round_trip_and_key() -> None:
    doc = Document("d1", "some text", "A title", {"lang": "en"})
    e = decode("1700000000123-4", encode("upsert", document=doc, version=7))
    assert (e.op, e.doc_id, e.document, e.version) == ("upsert", "d1", doc, 7)
    assert e.key == (7, 1700000000123, 4)
    assert e.published_ms == 1700000000123
    d = decode("5-0", encode("delete", doc_id="d1"))
    assert (d.op, d.doc_id, d.document, d.key) == ("delete", "d1", None, (0, 5, 0))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({"schema": 2, "op": "delete", "id": "x"}).encode(), "schema 2"),
        (json.dumps({"schema": 1, "op": "move", "id": "x"}).encode(), "op must be"),
        (json.dumps({"schema": 1, "op": "delete", "id": ""}).encode(), "non-empty string id"),
        (json.dumps({"schema": 1, "op": "delete", "id": "x", "version": -1}).encode(), "version"),
        (json.dumps({"schema": 1, "op": "delete", "id": "x", "version": True}).encode(), "version"),
        (json.dumps({"schema": 1, "op": "upsert"}).encode(), "needs a 'doc'"),
        (
            json.dumps({"schema": 1, "op": "upsert", "doc": {"id": "x", "text": " "}}).encode(),
            "no text",
        ),
        (
            json.dumps({"schema": 1, "op": "upsert", "doc": {"id": "x", "txt": "a"}}).encode(),
            "unknown document field",
        ),
        (
            json.dumps({"schema": 1, "op": "upsert", "doc": {"id": 3, "text": "a"}}).encode(),
            "doc_id",
        ),
        (
            json.dumps(
                {"schema": 1, "op": "upsert", "doc": {"id": "x", "text": "a", "metadata": [1]}}
            ).encode(),
            "metadata",
        ),
        (None, "no 'data' field"),
    ],
)
def test_poison_entries_say_why(data: bytes | None, reason: str) -> None:
    with pytest.raises(PoisonEntry, match=reason):
        decode("1-0", data)


def test_publish_side_refuses_what_a_worker_would_dead_letter() -> None:
    with pytest.raises(InputError, match="no text"):
        encode("upsert", document=Document("x", ""))
    with pytest.raises(InputError, match="delete entry needs"):
        encode("delete", doc_id="")


@pytest.mark.parametrize(
    "bad", ["http://h:1?stream=s", "redis://h:1/0", "redis://h:1/0?stream=a b", "redis://?stream=s"]
)
def test_addresses_are_checked(bad: str) -> None:
    with pytest.raises(InputError):
        StreamAddress.parse(bad)


def test_address_parts() -> None:
    a = StreamAddress.parse("redis://:pw@127.0.0.1:6379/2?stream=docs")
    assert (a.url, a.stream, a.dead, a.fresh("g")) == (
        "redis://:pw@127.0.0.1:6379/2", "docs", "docs:dead", "docs:fresh:g",
    )  # fmt: skip


def test_ledger_keys_never_move_back(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.sqlite")
    led.record({"a": ((0, 10, 0), False), "b": ((0, 5, 1), True)})
    led.record({"a": ((0, 9, 9), True), "b": ((0, 5, 2), False)})  # a: older, ignored
    assert led.keys(["a", "b", "c"]) == {"a": (0, 10, 0), "b": (0, 5, 2)}
    led.record({"a": ((1, 1, 0), False)})  # a higher source version wins over stream order
    led.close()
    again = Ledger(tmp_path / "l.sqlite")  # durable
    assert again.keys(["a"]) == {"a": (1, 1, 0)} and len(again) == 2
    again.close()


def test_ledger_reads_many_ids(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.sqlite")
    led.record({f"d{i}": ((0, i, 0), False) for i in range(1500)})
    assert len(led.keys(f"d{i}" for i in range(0, 1500, 1))) == 1500
    led.close()


def test_aimd_grows_on_full_fast_batches_and_halves_on_slow_ones() -> None:
    p = BatchPolicy(floor=4, ceiling=40, step=8, target_s=0.5, max_tokens=1000)
    b = AdaptiveBatch(p)
    assert b.size == 4
    assert b.observe(4, 0.1, 10) == 12  # full and fast: + step
    assert b.observe(3, 0.1, 10) == 12  # not full: the size says nothing
    assert [b.observe(b.size, 0.1, 10) for _ in range(5)] == [20, 28, 36, 40, 40]
    assert b.observe(40, 0.9, 10) == 20  # slow: halve
    assert b.observe(20, 0.1, 5000) == 10  # over the token budget: halve
    assert [b.observe(b.size, 9.0, 0) for _ in range(3)] == [5, 4, 4]  # never below the floor


@given(st.lists(st.tuples(st.integers(0, 600), st.floats(0, 3), st.integers(0, 2000)), max_size=50))
def test_aimd_stays_between_floor_and_ceiling(steps: list[tuple[int, float, int]]) -> None:
    p = BatchPolicy(floor=3, ceiling=100, step=7, target_s=1.0, max_tokens=1000)
    b = AdaptiveBatch(p)
    for n, s, t in steps:
        assert p.floor <= b.observe(n, s, t) <= p.ceiling


def test_bad_policies_are_refused() -> None:
    with pytest.raises(ConfigError):
        BatchPolicy(floor=10, ceiling=5)
    with pytest.raises(ConfigError):
        BatchPolicy(target_s=0)
