"""The capacity model: shards, replicas, nodes and the latency budget of a deployment.

``plan(calibration, workload, deployment)`` is pure (a seeded Monte-Carlo, no I/O):

1. **RAM** decides the fewest shards: ``K_min = ⌈N·B / (M·f)⌉`` for N vectors of B bytes
   each (the spec's measured bytes per vector in RAM, scaled by dim) on nodes of M bytes
   filled to f.
2. **Latency** per shard is the calibrated fit at ``N/K`` vectors (``a + b·ln n`` for
   graphs, ``a + b·n`` for scans) with the measured shape of its distribution; the search
   stage is the fan-out's maximum over K shards by Monte-Carlo (:class:`FanOut`), with the
   network round trip, hedging after the shard's p95 and the replica's M/M/c queue wait.
3. **Throughput** decides replicas: a replica with c cores and mean service time s serves
   at utilisation ``ρ = λ·s/c``; ``R = max(R_min, ⌈Q·s/(c·ρ_max)⌉)`` for Q queries/s.
4. **The budget** sums the stages at the tail: p99 of embed + search + rerank + generate,
   drawn independently and added sample by sample (not the sum of p99s, which overstates).
5. K is swept from ``K_min`` upwards; the plan takes the one meeting the SLO on the fewest
   nodes, else the lowest p99, and says which single change would help most.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from ragfleet.errors import ConfigError
from ragfleet.plan.calibration import Calibration, SpecCalibration
from ragfleet.plan.tails import Dist, FanOut, Queue, Samples, quantiles

GIB = 2**30
MAX_VECTORS = 1e13
STAGES = ("embed", "search", "rerank", "generate")

#: Round trip inside one data centre, from "Numbers everyone should know" (Dean, 2009):
#: 0.5 ms; the p99 default of 2 ms is four times that (cloud providers' same-zone tails).
#: One machine cannot measure either; pass your own with --rtt-p50-ms / --rtt-p99-ms.
RTT_P50_MS = 0.5
RTT_P99_MS = 2.0


@dataclass(frozen=True)
class Workload:
    """What the deployment must do: N vectors of ``dim``, Q queries/s, p99 ≤ SLO."""

    vectors: float
    qps: float
    slo_ms: float
    dim: int = 384
    rerank_candidates: int = 0
    generate_p50_ms: float = 0.0
    generate_p99_ms: float = 0.0

    def __post_init__(self) -> None:
        _positive(vectors=self.vectors, qps=self.qps, slo_ms=self.slo_ms, dim=self.dim)
        for name, v, top in (
            ("vectors", self.vectors, MAX_VECTORS),
            ("qps", self.qps, 1e9),
            ("slo_ms", self.slo_ms, 3.6e6),
            ("dim", self.dim, 65_536),
            ("rerank_candidates", self.rerank_candidates, 10_000),
        ):
            if v > top:
                raise ConfigError(f"{name.replace('_', ' ')} is capped at {top:g}, got {v:g}")
        if self.rerank_candidates < 0:
            raise ConfigError(f"rerank candidates must be >= 0, got {self.rerank_candidates}")
        if not 0 <= self.generate_p50_ms <= max(self.generate_p99_ms, self.generate_p50_ms):
            raise ConfigError("generate p50 must be >= 0")
        if self.generate_p99_ms < self.generate_p50_ms:
            raise ConfigError(
                f"generate p99 ({self.generate_p99_ms} ms) is below its p50 "
                f"({self.generate_p50_ms} ms)"
            )


@dataclass(frozen=True)
class Deployment:
    """How it may be deployed: the index spec, hardware, and what one machine cannot measure.

    ``shards`` / ``replicas``: fixed, or ``None`` to let the planner choose
    (``min_replicas`` at least, for availability). GPU numbers are for bulk embedding.
    """

    index: str | None = None
    shards: int | None = None
    replicas: int | None = None
    min_replicas: int = 2
    node_ram_gib: float = 64.0
    node_cores: int = 16
    ram_fill: float = 0.7
    max_utilisation: float = 0.6
    hedge: bool = True
    rtt_p50_ms: float = RTT_P50_MS
    rtt_p99_ms: float = RTT_P99_MS
    gpu_chunks_per_s: float = 1500.0
    gpu_hourly: float = 3.0
    embed_workers: int = 8
    max_shards: int = 1 << 16
    samples: int = 20_000
    seed: int = 0

    def __post_init__(self) -> None:
        _positive(
            node_ram_gib=self.node_ram_gib,
            node_cores=self.node_cores,
            gpu_chunks_per_s=self.gpu_chunks_per_s,
            embed_workers=self.embed_workers,
            max_shards=self.max_shards,
            samples=self.samples,
            min_replicas=self.min_replicas,
        )
        for name, v in (("shards", self.shards), ("replicas", self.replicas)):
            if v is not None and v < 1:
                raise ConfigError(f"{name} must be >= 1, got {v}")
        if not 0 < self.ram_fill <= 1 or not 0 < self.max_utilisation < 1:
            raise ConfigError("ram fill must be in (0, 1] and max utilisation in (0, 1)")
        if not 0 <= self.rtt_p50_ms <= self.rtt_p99_ms:
            raise ConfigError("need 0 <= rtt p50 <= rtt p99")
        if self.gpu_hourly < 0:
            raise ConfigError(f"gpu hourly price must be >= 0, got {self.gpu_hourly}")


@dataclass(frozen=True)
class Stage:
    name: str
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class Plan:
    """A sized deployment and its predicted latency; :meth:`to_dict` for JSON."""

    index: str
    shards: int
    replicas: int
    vectors_per_shard: float
    shard_ram_gib: float
    replicas_per_node: int
    cores_per_replica: int
    shard_nodes: int
    router_cores: float
    encoder_cores: float
    nodes: int
    ram_per_node_gib: float
    utilisation: float
    stages: tuple[Stage, ...]
    p50_ms: float
    p99_ms: float
    slo_ms: float
    single_shard_p99_ms: float
    unhedged_search_p99_ms: float
    embedding: dict[str, float]
    changes: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def meets_slo(self) -> bool:
        return self.p99_ms <= self.slo_ms

    @property
    def dominant(self) -> str:
        return max(self.stages, key=lambda s: s.p99_ms).name

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "meets_slo": self.meets_slo, "dominant": self.dominant}


def plan(cal: Calibration, work: Workload, dep: Deployment) -> Plan:
    """The deployment for ``work`` under ``dep``, with the first changes to try."""
    best = _best(cal, work, dep)
    return replace(best, changes=tuple(_changes(cal, work, dep, best)))


def search_stage(cal: Calibration, work: Workload, dep: Deployment, shards: int) -> FanOut:
    """The search stage of ``shards`` shards with the replica count the load needs."""
    return _layout(cal, _spec(cal, dep), work, dep, shards).fanout


def predict_p99(cal: Calibration, work: Workload, dep: Deployment, shards: int) -> float:
    """End-to-end p99 at exactly ``shards`` shards (for plots over corpus size)."""
    return _evaluate(cal, work, replace(dep, shards=shards), shards).p99_ms


# -- internals -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    shards: int
    replicas: int
    per_node: int
    cores: int
    nodes: int
    shard_ram: float
    fanout: FanOut
    queue: Queue


def _positive(**values: float) -> None:
    for name, v in values.items():
        if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise ConfigError(f"{name.replace('_', ' ')} must be a positive number, got {v!r}")


def _spec(cal: Calibration, dep: Deployment) -> SpecCalibration:
    if dep.index is not None:
        return cal.spec(dep.index)
    return min(cal.specs, key=lambda s: s.ram_bytes_per_vector)


def _bytes_per_vector(spec: SpecCalibration, dim: int) -> float:
    return spec.ram_bytes_per_vector * dim / spec.dim


def _min_shards(spec: SpecCalibration, work: Workload, dep: Deployment) -> int:
    usable = dep.node_ram_gib * GIB * dep.ram_fill
    return max(1, math.ceil(work.vectors * _bytes_per_vector(spec, work.dim) / usable))


def _layout(
    cal: Calibration, spec: SpecCalibration, work: Workload, dep: Deployment, shards: int
) -> _Layout:
    n = work.vectors / shards
    dist = spec.dist(n, work.dim)
    shard_ram = n * _bytes_per_vector(spec, work.dim)
    usable = dep.node_ram_gib * GIB * dep.ram_fill
    # Distinct shards per node (never two copies of one shard: one bigger replica queues
    # better than two small ones, M/M/c pooling), each with an equal share of the cores.
    per_node = max(1, min(int(usable // max(shard_ram, 1.0)), dep.node_cores, shards))
    cores = max(1, dep.node_cores // per_node)
    slowdown = spec.slowdown if per_node > 1 else 1.0
    service = dist.mean() * slowdown
    need = work.qps * service / 1000.0 / (cores * dep.max_utilisation)
    replicas = dep.replicas or max(dep.min_replicas, math.ceil(need))
    queue = Queue(cores, work.qps / replicas, max(service, 1e-6))
    distributed = shards > 1 or replicas > 1
    fanout = FanOut(
        shards=shards,
        shard=dist,
        slowdown=slowdown,
        hedge_cost_ms=cal.hedge_cost_ms if dep.hedge and replicas >= 2 else None,
        fixed_ms=cal.scatter_fixed_ms if distributed else 0.0,
        per_shard_ms=cal.scatter_per_shard_ms if distributed else 0.0,
        network=Dist.lognormal(dep.rtt_p50_ms, dep.rtt_p99_ms) if dep.rtt_p99_ms > 0 else None,
        queue=queue,
    )
    nodes = math.ceil(shards * replicas / per_node)
    return _Layout(shards, replicas, per_node, cores, nodes, shard_ram, fanout, queue)


def _shard_counts(k_min: int, k_max: int) -> Iterator[int]:
    """``k_min``, then about √2 apart up to ``k_max``."""
    seen: set[int] = set()
    x = float(k_min)
    while x <= k_max:
        k = round(x)
        if k not in seen:
            seen.add(k)
            yield k
        x *= math.sqrt(2.0)


def _best(cal: Calibration, work: Workload, dep: Deployment) -> Plan:
    spec = _spec(cal, dep)
    if dep.shards is not None:
        return _evaluate(cal, work, dep, dep.shards)
    k_min = _min_shards(spec, work, dep)
    if k_min > dep.max_shards:
        raise ConfigError(
            f"{work.vectors:.3g} vectors of {spec.spec} need {k_min} shards of "
            f"{dep.node_ram_gib:g} GiB nodes, over the limit of {dep.max_shards}; "
            "use a compressed spec or larger nodes"
        )
    plans = [_evaluate(cal, work, dep, k) for k in _shard_counts(k_min, dep.max_shards)]
    meeting = [p for p in plans if p.meets_slo]
    if meeting:
        return min(meeting, key=lambda p: (p.nodes + p.router_cores / dep.node_cores, p.p99_ms))
    return min(plans, key=lambda p: p.p99_ms)


def _evaluate(cal: Calibration, work: Workload, dep: Deployment, shards: int) -> Plan:
    spec = _spec(cal, dep)
    lay = _layout(cal, spec, work, dep, shards)
    fan = lay.fanout
    rng = np.random.default_rng(dep.seed)
    n = dep.samples
    notes: list[str] = []
    embed = _embed(cal, rng, n, notes)
    search = fan.sample(rng, n)
    rerank = np.full(
        n,
        cal.rerank_fixed_ms + cal.rerank_per_candidate_ms * work.rerank_candidates
        if work.rerank_candidates
        else 0.0,
    )
    generate = (
        Dist.lognormal(work.generate_p50_ms, work.generate_p99_ms).sample(rng, n)
        if work.generate_p99_ms > 0
        else np.zeros(n)
    )
    parts = {"embed": embed, "search": search, "rerank": rerank, "generate": generate}
    total = embed + search + rerank + generate
    p50, p99 = quantiles(total)
    unhedged = replace(fan, hedge_cost_ms=None).sample(np.random.default_rng(dep.seed), n)
    single = fan.shard
    embed_mean = float(embed.mean())
    if lay.queue.utilisation > dep.max_utilisation + 1e-9:
        notes.append(
            f"replica utilisation {lay.queue.utilisation:.2f} is over "
            f"{dep.max_utilisation:.2f}: queueing dominates the tail"
        )
    if not np.isfinite(p99):
        notes.append("the replicas cannot keep up (utilisation >= 1): add replicas")
    router = work.qps * (fan.fixed_ms + fan.per_shard_ms * shards) / 1000.0 / dep.max_utilisation
    encoder = work.qps * embed_mean / 1000.0 / dep.max_utilisation
    extra = math.ceil((router + encoder) / dep.node_cores) if router + encoder > 0 else 0
    return Plan(
        index=spec.spec,
        shards=shards,
        replicas=lay.replicas,
        vectors_per_shard=work.vectors / shards,
        shard_ram_gib=lay.shard_ram / GIB,
        replicas_per_node=lay.per_node,
        cores_per_replica=lay.cores,
        shard_nodes=lay.nodes,
        router_cores=router,
        encoder_cores=encoder,
        nodes=lay.nodes + extra,
        ram_per_node_gib=lay.per_node * lay.shard_ram / GIB,
        utilisation=lay.queue.utilisation,
        stages=tuple(Stage(s, *quantiles(parts[s])) for s in STAGES),
        p50_ms=p50,
        p99_ms=p99,
        slo_ms=work.slo_ms,
        single_shard_p99_ms=single.p99,
        unhedged_search_p99_ms=quantiles(unhedged)[1],
        embedding=_embedding(cal, work, dep),
        notes=tuple(notes),
    )


def _embed(cal: Calibration, rng: np.random.Generator, n: int, notes: list[str]) -> Samples:
    if cal.encoder is None:
        notes.append("no encoder in the calibration: query embedding counted as 0 ms")
        return np.zeros(n)
    return cal.encoder.query().sample(rng, n)


def _embedding(cal: Calibration, work: Workload, dep: Deployment) -> dict[str, float]:
    """Bulk embedding: GPU-hours ``N / r / 3600``, cost × price, wall-clock over K workers;
    and the same on the calibrated CPU at its best batch size."""
    gpu_hours = work.vectors / dep.gpu_chunks_per_s / 3600.0
    out = {
        "gpu_hours": gpu_hours,
        "gpu_cost": gpu_hours * dep.gpu_hourly,
        "wall_hours": gpu_hours / dep.embed_workers,
        "workers": float(dep.embed_workers),
    }
    if cal.encoder is not None:
        best = cal.encoder.best()
        out["cpu_machine_hours"] = work.vectors / best.texts_per_s / 3600.0
        out["cpu_best_batch"] = float(best.batch)
    return out


def _changes(cal: Calibration, work: Workload, dep: Deployment, base: Plan) -> Iterator[str]:
    """Single changes that lower p99 (when the SLO is missed) or nodes (when it is met),
    best first, each evaluated by the same model."""
    alts: list[tuple[str, Deployment, Workload]] = []
    if base.dominant == "search" or not base.meets_slo:
        alts.append(("turn hedging " + ("off" if dep.hedge else "on"),
                     replace(dep, hedge=not dep.hedge), work))  # fmt: skip
        for s in cal.specs:
            if s.spec != base.index:
                alts.append((f"use index {s.spec}", replace(dep, index=s.spec), work))
        if dep.shards is not None:
            for k in (dep.shards * 2, max(1, dep.shards // 2)):
                alts.append((f"use {k} shards", replace(dep, shards=k), work))
        r = base.replicas + max(1, base.replicas // 2)
        alts.append((f"use {r} replicas", replace(dep, replicas=r), work))
        alts.append(("nodes with twice the RAM",
                     replace(dep, node_ram_gib=dep.node_ram_gib * 2), work))  # fmt: skip
    if work.rerank_candidates > 1:
        c = work.rerank_candidates // 2
        alts.append((f"rerank {c} candidates", dep, replace(work, rerank_candidates=c)))
    scored: list[tuple[float, float, str]] = []
    for label, d, w in alts:
        try:
            p = _best(cal, w, d)
        except ConfigError:
            continue
        if not base.meets_slo and p.p99_ms < base.p99_ms * 0.98:
            scored.append(
                (p.p99_ms, float(p.nodes), f"{label}: p99 {p.p99_ms:.1f} ms, {p.nodes} nodes")
            )
        elif base.meets_slo and p.meets_slo and p.nodes < base.nodes:
            scored.append(
                (float(p.nodes), p.p99_ms, f"{label}: {p.nodes} nodes, p99 {p.p99_ms:.1f} ms")
            )
    for *_, text in sorted(scored):
        yield text
    if not base.meets_slo and base.dominant != "search":
        yield f"the {base.dominant} stage dominates the tail: make it faster"
