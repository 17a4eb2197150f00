"""Model-based test of the change feed (Hypothesis stateful): random publishes (upserts,
deletes, with and without source versions), batches, stale redeliveries, a crash between the
write and the XACK, and process crashes (the collection abandoned and reopened, the worker
restarted under its name) — after draining, the collection holds exactly the newest entry of
every document, as a model of what was published says."""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from tests.unit.cache.conftest import RedisServer, redis_server, start_redis

from ragfleet.collection import Collection
from ragfleet.config import CollectionConfig, ShardingConfig
from ragfleet.feed import FeedWorker, StreamAddress, WorkerConfig, publish
from ragfleet.feed.batching import BatchPolicy
from ragfleet.feed.entry import FIELD, Key
from ragfleet.feed.ledger import Ledger
from ragfleet.ingest.hashing import document_hash
from ragfleet.types import Document

__all__ = ["redis_server", "start_redis"]
_runs = itertools.count()
DOCS = [f"doc-{i}" for i in range(6)] + ["odd id/ü#1"]


class CrashBeforeAck(Exception):
    """A fault injected between the durable write and the XACK (a kill there)."""


def run_machine(server: RedisServer, root: Path, encoder: Any) -> None:
    class FeedMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            n = next(_runs)
            self.address = StreamAddress.parse(f"{server.url}?stream=model{n}")
            self.path = root / f"c{n}"
            config = CollectionConfig(sharding=ShardingConfig(n_shards=2))
            Collection.create(self.path, config, encoder=encoder).close()
            self.client = self.address.client()
            self.newest: dict[str, tuple[Key, str | None]] = {}  # doc → (key, hash | deleted)
            self.all_ids: list[str] = []
            self._open()

        def _open(self) -> None:
            self.col = Collection.open(self.path, encoder=encoder)
            self.ledger = Ledger(self.path / "feed.sqlite")
            cfg = WorkerConfig("g", claim_every_s=3600, batch=BatchPolicy(floor=2, ceiling=4))
            self.worker = FeedWorker(self.col, self.address, cfg, self.ledger, name="w")

        def _publish(self, change: Any, version: int | None) -> None:
            publish(self.address, [change], versions=lambda c: version)
            entry_id = self.client.xrevrange(self.address.stream, count=1)[0][0].decode()
            ms, seq = entry_id.split("-")
            key = (version or 0, int(ms), int(seq))
            value = document_hash(change) if isinstance(change, Document) else None
            doc_id = change.doc_id if isinstance(change, Document) else change[1]
            if doc_id not in self.newest or key > self.newest[doc_id][0]:
                self.newest[doc_id] = (key, value)
            self.all_ids.append(entry_id)

        @rule(d=st.sampled_from(DOCS), text=st.sampled_from(["alpha beta", "gamma", "delta x"]),
              version=st.one_of(st.none(), st.integers(0, 3)))  # fmt: skip
        def upsert(self, d: str, text: str, version: int | None) -> None:
            self._publish(Document(d, f"{text} {d}"), version)

        @rule(d=st.sampled_from(DOCS), version=st.one_of(st.none(), st.integers(0, 3)))
        def delete(self, d: str, version: int | None) -> None:
            self._publish(("delete", d), version)

        @rule()
        def batch(self) -> None:
            self.worker.step(self.client, "w-0")

        @precondition(lambda self: self.all_ids)
        @rule(i=st.integers(0, 10_000))
        def redeliver_an_old_entry(self, i: int) -> None:
            entry_id = self.all_ids[i % len(self.all_ids)]
            fields = self.client.xrange(self.address.stream, entry_id, entry_id)[0][1]
            self.worker.process(self.client, [(entry_id, {FIELD: fields[FIELD]})])

        @rule()
        def crash_between_write_and_ack(self) -> None:
            def fail(*args: Any) -> None:
                raise CrashBeforeAck

            self.worker._ack = fail  # type: ignore[method-assign]
            with contextlib.suppress(CrashBeforeAck):
                self.worker.step(self.client, "w-0")
            self.crash()

        @rule()
        def crash(self) -> None:
            self.col.abandon()
            self.ledger.close()
            self._open()

        @invariant()
        def never_ahead_of_the_stream(self) -> None:
            live = self._live()
            for d, _h in live.items():  # whatever is live was published for that document
                assert d in self.newest, d

        def _live(self) -> dict[str, str]:
            out: dict[str, str] = {}
            for s in self.col.shards:
                out.update(s.doc_hashes())
            return out

        def teardown(self) -> None:
            for _ in range(200):  # drain
                self.worker.step(self.client, "w-0")
                info = self.client.xinfo_groups(self.address.stream)[0]
                if not int(info["lag"] or 0) and not int(info["pending"]):
                    break
            want = {d: h for d, (_, h) in self.newest.items() if h is not None}
            assert self._live() == want
            self.col.close()
            self.ledger.close()
            self.client.close()

    FeedMachine.TestCase.settings = settings(
        max_examples=12, stateful_step_count=25, deadline=None,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    FeedMachine.TestCase().runTest()


def test_feed_model(redis_server: RedisServer, tmp_path: Path, encoder: Any) -> None:
    pytest.importorskip("redis")
    run_machine(redis_server, tmp_path, encoder)
