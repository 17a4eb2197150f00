"""What each replica of a shard has done, and whether it is healthy, for health checks and
metrics.

A replica is **healthy** while its last call succeeded (or it has not been called yet),
and **unhealthy** from a failed call until a later call succeeds. A failed replica is not
abandoned: :class:`~ragfleet.cluster.replicated.ReplicatedShard` keeps it out of the
rotation for ``down_s`` seconds, then tries it again, and its next answer makes it healthy
(a Ray actor that was restarted comes back this way; one that stays dead stays unhealthy).

:class:`ReplicaCounters` is updated by the replicated shard under its own lock;
:class:`ReplicaState` is the read-only snapshot a server reads at scrape time, so the
cluster code knows nothing of Prometheus or HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReplicaState:
    """One replica at one instant.

    Args:
        replica: its index in the shard's replica list (0: the owner of a writable fleet).
        healthy: its last call succeeded, or it has not been called yet.
        calls: calls finished (answered or failed; callers' errors not counted).
        failures: calls that failed (each one retried on another replica).
        inflight: calls running on it now.
        seconds: total wall time of its finished calls.
        down_for_s: seconds it stays out of the rotation (0: in it).
    """

    replica: int
    healthy: bool
    calls: int
    failures: int
    inflight: int
    seconds: float
    down_for_s: float


class ReplicaCounters:
    """Calls, failures, time and last outcome per replica (the caller holds a lock)."""

    def __init__(self, n: int) -> None:
        self.calls = [0] * n
        self.failures = [0] * n
        self.seconds = [0.0] * n
        self.failed_last = [False] * n

    def finished(self, i: int, seconds: float, *, failed: bool) -> None:
        """Record one finished call of replica ``i``."""
        self.calls[i] += 1
        self.seconds[i] += seconds
        self.failures[i] += int(failed)
        self.failed_last[i] = failed

    def state(self, i: int, inflight: int, down_for_s: float) -> ReplicaState:
        return ReplicaState(
            replica=i,
            healthy=not self.failed_last[i],
            calls=self.calls[i],
            failures=self.failures[i],
            inflight=inflight,
            seconds=self.seconds[i],
            down_for_s=max(0.0, down_for_s),
        )
