"""ReplicatedShard: least-loaded choice, hedging after p95, failover, and deadlines."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from ragfleet.cluster.replicated import HedgeConfig, LatencyWindow, ReplicatedShard
from ragfleet.errors import ConfigError, InputError
from ragfleet.index.docstore import StoredChunk
from ragfleet.index.shard import ShardQuery, ShardResult
from ragfleet.index.sparse.bm25 import ShardTermStats

Q = ShardQuery(k=1)


class Replica:
    """A ShardClient double: answers with its own name after ``delay`` s, or raises."""

    def __init__(self, name: str, delay: float = 0.0, shard_id: int = 0) -> None:
        self.name, self.delay, self._shard_id = name, delay, shard_id
        self.fail = False
        self.gate: threading.Event | None = None
        self.calls = 0

    @property
    def shard_id(self) -> int:
        return self._shard_id

    def search(self, q: ShardQuery) -> ShardResult:
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(5)
        time.sleep(self.delay)
        if self.fail:
            raise ConnectionError(f"replica {self.name} is down")
        return ShardResult(self._shard_id, [], [])

    def term_stats(self, terms: Sequence[str]) -> ShardTermStats:
        raise NotImplementedError

    def fetch(self, rows: Sequence[int]) -> dict[int, StoredChunk]:
        return {}

    def stats(self) -> dict[str, object]:
        return {"name": self.name}


def timed(shard: ReplicatedShard, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.monotonic()
        shard.search(Q)
        out.append(time.monotonic() - t0)
    return out


def test_latency_window_quantile_is_numpys_over_the_last_values() -> None:
    w = LatencyWindow(4)
    for v in [9.0, 1.0, 2.0, 3.0, 4.0]:  # 9.0 falls out of the window
        w.add(v)
    assert w.quantile(0.95) == pytest.approx(float(np.quantile([1.0, 2.0, 3.0, 4.0], 0.95)))


def test_hedge_delay_is_initial_until_min_samples_then_p95() -> None:
    cfg = HedgeConfig(min_samples=3, window=8, initial_hedge_s=0.5)
    shard = ReplicatedShard([Replica("a"), Replica("b")], cfg)
    assert shard.hedge_delay() == 0.5
    for v in (0.01, 0.02, 0.03):
        shard.latency.add(v)
    assert shard.hedge_delay() == pytest.approx(float(np.quantile([0.01, 0.02, 0.03], 0.95)))
    shard.close()


def test_outstanding_steers_away_from_a_busy_replica() -> None:
    a, b = Replica("a"), Replica("b")
    a.gate, b.gate = threading.Event(), threading.Event()
    shard = ReplicatedShard([a, b], HedgeConfig(hedge=False))
    busy_call = threading.Thread(target=shard.search, args=(Q,))
    busy_call.start()
    while a.calls + b.calls == 0:
        time.sleep(0.001)
    busy, idle = (a, b) if a.calls else (b, a)
    assert idle.gate is not None and busy.gate is not None
    idle.gate.set()
    for _ in range(10):
        shard.search(Q)  # busy has 1 outstanding, idle 0: power of two choices picks idle
    assert (busy.calls, idle.calls) == (1, 10)
    busy.gate.set()
    busy_call.join()
    shard.close()


def test_hedging_bounds_latency_of_a_slow_replica() -> None:
    slow, fast = Replica("slow", delay=0.4), Replica("fast", delay=0.005)
    cfg = HedgeConfig(initial_hedge_s=0.02, min_samples=4, seed=1)
    shard = ReplicatedShard([slow, fast], cfg)
    lat = timed(shard, 20)
    assert slow.calls >= 1 and shard.hedges >= 1  # the slow replica was tried and hedged
    assert max(lat) < 0.2  # never waited for the slow replica: hedge delay + fast
    shard.close()


def test_without_hedging_the_slow_replica_shows_in_the_tail() -> None:
    slow, fast = Replica("slow", delay=0.3), Replica("fast", delay=0.005)
    shard = ReplicatedShard([slow, fast], HedgeConfig(hedge=False, seed=1))
    lat = timed(shard, 10)
    assert shard.hedges == 0 and slow.calls >= 1
    assert max(lat) >= 0.3
    shard.close()


def test_failing_replica_is_retried_elsewhere_and_marked_down() -> None:
    bad, good = Replica("bad"), Replica("good")
    bad.fail = True
    shard = ReplicatedShard([bad, good], HedgeConfig(hedge=False, down_s=0.3, seed=0))
    for _ in range(10):
        shard.search(Q)  # never raises
    assert bad.calls == 1 and shard.errors == 1  # down after its first error
    time.sleep(0.35)
    bad.fail = False
    for _ in range(20):
        shard.search(Q)
    assert bad.calls > 1  # rejoined once the down period passed
    shard.close()


def test_every_replica_failing_raises_the_error() -> None:
    a, b = Replica("a"), Replica("b")
    a.fail = b.fail = True
    shard = ReplicatedShard([a, b], HedgeConfig(hedge=False))
    with pytest.raises(ConnectionError, match="is down"):
        shard.search(Q)
    assert a.calls == b.calls == 1
    shard.close()


def test_replicas_of_different_shards_are_refused() -> None:
    with pytest.raises(ConfigError, match="same shard"):
        ReplicatedShard([Replica("a", shard_id=0), Replica("b", shard_id=1)])
    with pytest.raises(ConfigError, match="at least one"):
        ReplicatedShard([])
    with pytest.raises(ConfigError, match="quantile"):
        HedgeConfig(quantile=1.0)


class Stalled:
    """Wraps a real shard; ``search`` hangs until released (a shard past its deadline)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.release = threading.Event()

    @property
    def shard_id(self) -> int:
        return int(self.inner.shard_id)

    def search(self, q: ShardQuery) -> ShardResult:
        self.release.wait(10)
        return self.inner.search(q)  # type: ignore[no-any-return]

    def term_stats(self, terms: Sequence[str]) -> ShardTermStats:
        return self.inner.term_stats(terms)  # type: ignore[no-any-return]

    def fetch(self, rows: Sequence[int]) -> dict[int, StoredChunk]:
        return self.inner.fetch(rows)  # type: ignore[no-any-return]

    def stats(self) -> dict[str, object]:
        return self.inner.stats()  # type: ignore[no-any-return]


def test_stalled_shard_misses_the_deadline_and_is_named(collection_factory, encoder) -> None:  # type: ignore[no-untyped-def]
    from ragfleet.fleet import Fleet

    col = collection_factory(2)
    stalled = Stalled(col.shards[1])
    shards = [ReplicatedShard([col.shards[0]]), ReplicatedShard([stalled])]
    fleet = Fleet(shards, encoder, col.info, col.placement)
    try:
        t0 = time.monotonic()
        res = fleet.search("Who won Super Bowl 50?", k=5, mode="dense", timeout_ms=300)
        elapsed = time.monotonic() - t0
        assert res.coverage == 0.5 and res.missing_shards == (1,)
        assert res.hits and {h.shard for h in res.hits} == {0}
        assert elapsed < 0.3 + 0.5  # the deadline plus the local merge and fetch
        stalled.release.set()
        full = fleet.search("Who won Super Bowl 50?", k=5, mode="dense", timeout_ms=5000)
        assert full.coverage == 1.0 and full.missing_shards == ()
        want = col.search("Who won Super Bowl 50?", k=5, mode="dense")
        assert [h.chunk_id for h in full.hits] == [h.chunk_id for h in want.hits]
    finally:
        stalled.release.set()
        fleet.close()


def test_latency_aware_choice_stops_sending_first_attempts_to_a_slow_replica() -> None:
    slow, fast = Replica("slow", delay=0.05), Replica("fast", delay=0.001)
    shard = ReplicatedShard([slow, fast], HedgeConfig(hedge=False))
    timed(shard, 20)
    assert slow.calls == 1 and fast.calls == 19  # tried once (unmeasured), then avoided
    shard.close()


class Refusing(Replica):
    """A replica that rejects the request itself (as a shard does a bad request)."""

    def search(self, q: ShardQuery) -> ShardResult:
        self.calls += 1
        raise InputError("k must be between 1 and 10,000, got 0")


def test_a_caller_error_is_raised_at_once_and_marks_no_replica_down() -> None:
    a, b = Refusing("a"), Refusing("b")
    shard = ReplicatedShard([a, b], HedgeConfig(hedge=False))
    with pytest.raises(InputError, match="k must be"):
        shard.search(Q)
    assert a.calls + b.calls == 1  # not failed over: the other replica would refuse too
    assert shard.errors == 0 and max(shard._down_until) == 0.0
    shard.close()


def test_latency_window_quantile_matches_numpy_at_every_size_and_after_adds() -> None:
    rng = np.random.default_rng(3)
    w = LatencyWindow(16)
    seen: list[float] = []
    for _ in range(40):
        v = float(rng.exponential(0.01))
        w.add(v)
        seen.append(v)
        for q in (0.95, 0.95, 0.5, 0.999, 0.0):  # the same q twice: a cached value is read
            assert w.quantile(q) == pytest.approx(float(np.quantile(seen[-16:], q)), rel=1e-12)
        assert w.quantile(0.0) == pytest.approx(min(seen[-16:]), rel=1e-12)
