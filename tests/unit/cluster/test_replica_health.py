"""Replica health of a ReplicatedShard: a failed replica is unhealthy until it answers
again, it is retried once its down period passes, and a caller's error counts against no
replica."""

from __future__ import annotations

import time

import pytest
from tests.unit.cluster.test_replicated import Q, Replica

from ragfleet.cluster.replicated import HedgeConfig, ReplicatedShard
from ragfleet.errors import InputError


def test_fresh_replicas_are_healthy_and_idle() -> None:
    shard = ReplicatedShard([Replica("a"), Replica("b")], HedgeConfig(hedge=False))
    states = shard.replica_states()
    assert [s.replica for s in states] == [0, 1]
    assert all(s.healthy and s.calls == s.failures == s.inflight == 0 for s in states)
    assert all(s.seconds == 0.0 and s.down_for_s == 0.0 for s in states)
    shard.close()


def test_calls_and_time_are_counted_per_replica() -> None:
    a, b = Replica("a", delay=0.01), Replica("b", delay=0.01)
    shard = ReplicatedShard([a, b], HedgeConfig(hedge=False))
    for _ in range(10):
        shard.search(Q)
    states = shard.replica_states()
    assert [s.calls for s in states] == [a.calls, b.calls] and sum(s.calls for s in states) == 10
    assert all(s.seconds >= 0.01 * s.calls for s in states)  # each call sleeps 10 ms
    assert shard.stats()["healthy_replicas"] == 2
    shard.close()


def test_a_failed_replica_is_unhealthy_until_it_answers_again() -> None:
    bad, good = Replica("bad"), Replica("good")
    bad.fail = True
    shard = ReplicatedShard([bad, good], HedgeConfig(hedge=False, down_s=0.2))
    for _ in range(5):
        shard.search(Q)  # never raises: failover to the good replica
    s0, s1 = shard.replica_states()
    assert not s0.healthy and s0.failures == s0.calls == 1 and 0 < s0.down_for_s <= 0.2
    assert s1.healthy and s1.failures == 0 and s1.calls == 5
    stats = shard.stats()
    assert stats["healthy_replicas"] == 1
    assert [r["healthy"] for r in stats["replica_states"]] == [False, True]  # type: ignore[attr-defined]
    time.sleep(0.25)  # down period over: it is tried again, not abandoned
    bad.fail = False
    for _ in range(20):
        shard.search(Q)
    s0 = shard.replica_states()[0]
    assert s0.healthy and s0.calls > 1 and s0.failures == 1 and s0.down_for_s == 0.0
    shard.close()


def test_a_callers_error_counts_against_no_replica() -> None:
    class Refusing(Replica):
        def search(self, q):  # type: ignore[no-untyped-def]
            raise InputError("bad query")

    shard = ReplicatedShard([Refusing("a"), Refusing("b")], HedgeConfig(hedge=False))
    with pytest.raises(InputError):
        shard.search(Q)
    assert all(s.healthy and s.calls == s.failures == 0 for s in shard.replica_states())
    shard.close()
