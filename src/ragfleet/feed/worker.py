"""The feed consumer: a Redis Streams consumer group applied to a collection's shard owners.

Each of ``workers`` threads is one consumer of the group and holds at most one batch, so at
most ``workers × ceiling`` entries are in flight (memory stays bounded under a burst; the
rest wait in the stream). A batch:

1. ``XREADGROUP … >`` (new entries), or every ``claim_every_s`` ``XAUTOCLAIM`` of entries
   another consumer has held for ``claim_idle_ms`` without acknowledging (a dead worker's);
2. decode; a poison entry (not JSON, bad document) goes to ``<stream>:dead`` with its reason;
3. per document keep the newest entry, drop those the :class:`~ragfleet.feed.ledger.Ledger`
   has already seen a newer key for, upsert and delete the rest through the target (a
   Collection or a writable Fleet: the shard owners, whose WAL is fsynced on return);
4. record the keys in the ledger, then ``XACK`` every entry of the batch (with the dead
   letters in the same ``MULTI``).

A fault (disk, Redis) leaves the batch unacknowledged: it is redelivered by ``XAUTOCLAIM``.
One process holds the collection's writer lock, so several worker *processes* on one
collection run one at a time (a second waits for the lock: a hot standby); several threads
in it share the target, serialised per document by striped locks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ragfleet.errors import InputError
from ragfleet.feed.address import StreamAddress, check_group
from ragfleet.feed.batching import AdaptiveBatch, BatchPolicy, estimate_tokens
from ragfleet.feed.entry import FIELD, FeedEntry, PoisonEntry, decode
from ragfleet.feed.ledger import Ledger
from ragfleet.feed.metrics import FeedMetrics
from ragfleet.types import Document

log = logging.getLogger(__name__)
STRIPES = 64
FRESH_SAMPLES = 2000
Raw = tuple[str, dict[bytes, bytes]]


class Writable(Protocol):
    def upsert(self, docs: Sequence[Document], **options: Any) -> Any: ...
    def delete(self, doc_ids: Sequence[str]) -> int: ...


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """``claim_idle_ms``: how long an entry may stay unacknowledged with its consumer
    before another takes it over (longer than the slowest batch)."""

    group: str
    workers: int = 1
    batch: BatchPolicy = field(default_factory=BatchPolicy)
    block_ms: int = 200
    claim_idle_ms: int = 30_000
    claim_every_s: float = 2.0
    retry_pause_s: float = 0.5
    start_id: str = "0"

    def __post_init__(self) -> None:
        check_group(self.group)
        if not 1 <= self.workers <= 64:
            raise InputError(f"workers must be between 1 and 64, got {self.workers}")
        if self.claim_idle_ms < 100 or self.block_ms < 1:
            raise InputError("claim_idle_ms must be >= 100 and block_ms >= 1")


@dataclass
class BatchResult:
    applied: int = 0
    stale: int = 0
    dead: int = 0
    acked: int = 0


class FeedWorker:
    """Consume ``address`` into ``target``; :meth:`start` the threads, :meth:`stop` them."""

    def __init__(self, target: Writable, address: StreamAddress, config: WorkerConfig,
                 ledger: Ledger, *, name: str | None = None) -> None:  # fmt: skip
        self.target, self.address, self.config, self.ledger = target, address, config, ledger
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.batch = AdaptiveBatch(config.batch)
        self.metrics = FeedMetrics.get(address.stream, config.group)
        self._stripes = [threading.Lock() for _ in range(STRIPES)]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_claim = 0.0
        self._claim_mutex = threading.Lock()
        self._resumed: set[str] = set()
        self.errors: list[str] = []
        client = address.client()
        try:
            ensure_group(client, address.stream, config.group, config.start_id)
        finally:
            client.close()

    # -- running --------------------------------------------------------------------------
    def start(self) -> None:
        for i in range(self.config.workers):
            t = threading.Thread(target=self._run, args=(f"{self.name}-{i}",),
                                 name=f"feed-{i}", daemon=True)  # fmt: skip
            t.start()
            self._threads.append(t)

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout_s)
        self._threads.clear()

    def _run(self, consumer: str) -> None:
        client = self.address.client(timeout_s=10.0 + self.config.block_ms / 1000)
        try:
            while not self._stop.is_set():
                try:
                    self.step(client, consumer)
                except Exception as e:  # a fault: the batch stays pending, retried later
                    self.errors.append(f"{type(e).__name__}: {e}")
                    del self.errors[:-20]
                    log.warning("feed %s: batch failed, will retry: %s", consumer, e)
                    self.metrics.faults.inc()
                    self._stop.wait(self.config.retry_pause_s)
        finally:
            client.close()

    def step(self, client: Any, consumer: str) -> BatchResult:
        """Read (or reclaim) one batch and process it; returns what it did."""
        raw = self._claim(client, consumer)
        if not raw:
            # first what this consumer name was given before a restart, then new entries
            own = consumer not in self._resumed
            reply = client.xreadgroup(
                self.config.group, consumer, {self.address.stream: "0" if own else ">"},
                count=self.batch.size, block=None if own else self.config.block_ms,
            )  # fmt: skip
            raw = [(_s(i), f) for _, entries in reply or [] for i, f in entries if f]
            if own and not raw:
                self._resumed.add(consumer)
        if not raw:
            return BatchResult()
        result = self.process(client, raw)
        self._observe_lag(client)  # one round trip a batch: the gauges stay current
        return result

    def _claim(self, client: Any, consumer: str) -> list[Raw]:
        now = time.monotonic()
        with self._claim_mutex:
            if now - self._last_claim < self.config.claim_every_s:
                return []
            self._last_claim = now
        self._observe_lag(client)
        reply = client.xautoclaim(
            self.address.stream, self.config.group, consumer, self.config.claim_idle_ms,
            "0-0", count=self.batch.size,
        )  # fmt: skip
        claimed = [(_s(i), f) for i, f in reply[1] if f is not None]
        if len(reply) > 2 and reply[2]:  # entries deleted from the stream while pending
            client.xack(self.address.stream, self.config.group, *reply[2])
        if claimed:
            self.metrics.reclaimed.inc(len(claimed))
        return claimed

    def _observe_lag(self, client: Any) -> None:
        for g in client.xinfo_groups(self.address.stream):
            if _s(g.get("name", b"")) == self.config.group:
                self.metrics.lag.set(int(g.get("lag") or 0))
                self.metrics.pending.set(int(g.get("pending") or 0))

    # -- one batch ------------------------------------------------------------------------
    def process(self, client: Any, raw: Sequence[Raw]) -> BatchResult:
        t0 = time.perf_counter()
        good: list[FeedEntry] = []
        dead: list[tuple[str, str, bytes]] = []
        for entry_id, fields in raw:
            data = fields.get(FIELD)
            try:
                good.append(decode(entry_id, data))
            except PoisonEntry as why:
                dead.append((entry_id, str(why), data or b""))
        newest: dict[str, FeedEntry] = {}
        for e in good:
            if e.doc_id not in newest or e.key > newest[e.doc_id].key:
                newest[e.doc_id] = e
        result = BatchResult(stale=len(good) - len(newest))
        with self._locked(newest):
            known = self.ledger.keys(newest)
            todo = {d: e for d, e in newest.items() if d not in known or e.key > known[d]}
            result.stale += len(newest) - len(todo)
            dead += self._apply(todo)
            self.ledger.record({d: (e.key, e.op == "delete") for d, e in todo.items()})
        result.applied = len(todo) - len({d for d, _, _ in dead if d in todo})
        result.dead = len(dead)
        self._ack(client, [i for i, _ in raw], dead, good)
        result.acked = len(raw)
        seconds = time.perf_counter() - t0
        tokens = sum(estimate_tokens(e.document.text) for e in good if e.document is not None)
        self.batch.observe(len(raw), seconds, tokens)
        self.metrics.observe_batch(result.applied, result.stale, result.dead, seconds,
                                   self.batch.size)  # fmt: skip
        return result

    def _apply(self, todo: dict[str, FeedEntry]) -> list[tuple[str, str, bytes]]:
        """Write ``todo``; a document the target refuses (InputError) is dead-lettered
        alone, the rest written one at a time. Returns the dead letters as
        ``(doc_id-tagged entry id, reason, b"")``."""
        ups = [e.document for e in todo.values() if e.document is not None]
        dels = [d for d, e in todo.items() if e.op == "delete"]
        dead: list[tuple[str, str, bytes]] = []
        if dels:
            self.target.delete(dels)
        if not ups:
            return dead
        try:
            self.target.upsert(ups)
        except InputError:
            for doc in ups:
                try:
                    self.target.upsert([doc])
                except InputError as e:
                    dead.append((doc.doc_id, f"refused by the collection: {e}", b""))
        return dead

    def _ack(self, client: Any, ids: list[str], dead: list[tuple[str, str, bytes]],
             good: list[FeedEntry]) -> None:  # fmt: skip
        now_ms = time.time() * 1000
        by_doc = {e.doc_id: e.entry_id for e in good}
        pipe = client.pipeline(transaction=True)
        for where, why, data in dead:
            entry_id = by_doc.get(where, where)  # a refused document: its entry
            pipe.xadd(self.address.dead, {b"entry": entry_id, b"group": self.config.group,
                                          b"reason": why[:2000], b"data": data},
                      maxlen=100_000, approximate=True)  # fmt: skip
        pipe.xack(self.address.stream, self.config.group, *ids)
        fresh = [max(0.0, now_ms - e.published_ms) / 1000 for e in good]
        if fresh:
            key = self.address.fresh(self.config.group)
            pipe.lpush(key, *[f"{int(now_ms)}:{f:.4f}" for f in fresh[-FRESH_SAMPLES:]])
            pipe.ltrim(key, 0, FRESH_SAMPLES - 1)
        pipe.execute()
        for f in fresh:
            self.metrics.freshness.observe(f)

    @contextlib.contextmanager
    def _locked(self, doc_ids: dict[str, FeedEntry]) -> Iterator[None]:
        """Hold the stripes of ``doc_ids`` (in order: no deadlock between threads)."""
        stripes = sorted({hash(d) % STRIPES for d in doc_ids})
        with contextlib.ExitStack() as stack:
            for s in stripes:
                stack.enter_context(self._stripes[s])
            yield


def ensure_group(client: Any, stream: str, group: str, start_id: str = "0") -> None:
    """Create the consumer group (and the stream) unless it exists."""
    try:
        client.xgroup_create(stream, group, id=start_id, mkstream=True)
    except Exception as e:
        if "BUSYGROUP" not in str(e):
            raise


def _s(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
