"""Replica health of the fleets a server serves: readiness counts and per-replica metrics.

A collection whose shards are :class:`~ragfleet.cluster.replicated.ReplicatedShard` (a
:class:`~ragfleet.fleet.Fleet`) is read here at request or scrape time; a plain
collection has no replicas and adds nothing.

* :func:`readiness` — shards and replicas in all, and how many are healthy: a shard with
  no healthy replica is *down*, and a server with a down shard is not ready (503,
  :func:`readyz_answer`). The counts name no collection (``/readyz`` needs no key).
* :class:`ReplicaCollector` — a Prometheus collector emitting, per
  ``{collection, shard, replica}``: ``ragfleet_replica_calls_total``,
  ``ragfleet_replica_failures_total``, ``ragfleet_replica_inflight``,
  ``ragfleet_replica_healthy`` (1 or 0) and the summary ``ragfleet_replica_seconds``
  (``_count`` and ``_sum`` of its calls' wall time).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ragfleet._optional import require
from ragfleet.cluster.replica_health import ReplicaState

Replicas = dict[tuple[str, int], list[ReplicaState]]


def replica_states(collections: Mapping[str, Any]) -> Replicas:
    """``{(collection, shard id): its replicas' states}`` over the replicated shards."""
    out: Replicas = {}
    for name, col in collections.items():
        for shard in getattr(col, "shards", ()):
            states = getattr(shard, "replica_states", None)
            if callable(states):
                out[(name, int(shard.shard_id))] = states()
    return out


@dataclass(frozen=True)
class Readiness:
    """Replicated shards and replicas in all, and how many of them serve."""

    shards: int
    shards_down: int
    replicas: int
    replicas_healthy: int


def readiness(collections: Mapping[str, Any]) -> Readiness:
    """The counts of :class:`Readiness`, over every collection's replicated shards."""
    groups = replica_states(collections).values()
    healthy = [sum(s.healthy for s in g) for g in groups]
    return Readiness(
        shards=len(healthy),
        shards_down=sum(1 for h in healthy if h == 0),
        replicas=sum(len(g) for g in groups),
        replicas_healthy=sum(healthy),
    )


def readyz_answer(ready: bool, collections: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """``/readyz``'s body and status: ``starting`` (503) until the server is ``ready``;
    then ``ready`` (200), with the :class:`Readiness` counts when fleets are served —
    ``degraded`` (200) while a replica is unhealthy, ``unavailable`` (503) once a shard
    has no healthy replica."""
    if not ready:
        return {"status": "starting"}, 503
    counts = readiness(collections)
    if not counts.shards:
        return {"status": "ready"}, 200
    status = "ready" if counts.replicas_healthy == counts.replicas else "degraded"
    if counts.shards_down:
        return {"status": "unavailable", "replicas": asdict(counts)}, 503
    return {"status": status, "replicas": asdict(counts)}, 200


class ReplicaCollector:
    """Per-replica series read from the collections at each scrape (see the module
    docstring); register it on the server's registry."""

    def __init__(self, collections: Mapping[str, Any]) -> None:
        self._collections = collections
        self._core = require("prometheus_client.core", "serve")

    def describe(self) -> list[Any]:
        return []  # unchecked: the series exist only once a fleet is served

    def collect(self) -> Iterator[Any]:
        core, labels = self._core, ["collection", "shard", "replica"]
        calls = core.CounterMetricFamily(
            "ragfleet_replica_calls", "calls a shard replica finished", labels=labels
        )
        failures = core.CounterMetricFamily(
            "ragfleet_replica_failures", "calls a shard replica failed", labels=labels
        )
        inflight = core.GaugeMetricFamily(
            "ragfleet_replica_inflight", "calls running on a shard replica", labels=labels
        )
        healthy = core.GaugeMetricFamily(
            "ragfleet_replica_healthy", "1 if the replica's last call succeeded", labels=labels
        )
        seconds = core.SummaryMetricFamily(
            "ragfleet_replica_seconds", "wall time of a shard replica's calls", labels=labels
        )
        for (name, shard), states in sorted(replica_states(self._collections).items()):
            for s in states:
                values = [name, str(shard), str(s.replica)]
                calls.add_metric(values, s.calls)
                failures.add_metric(values, s.failures)
                inflight.add_metric(values, s.inflight)
                healthy.add_metric(values, int(s.healthy))
                seconds.add_metric(values, s.calls, s.seconds)
        yield from (calls, failures, inflight, healthy, seconds)
