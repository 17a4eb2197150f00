"""The planner's arithmetic, checked by formulas on a hand-built calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ragfleet.errors import ConfigError
from ragfleet.plan import Calibration, Deployment, Workload, plan, predict_p99
from ragfleet.plan.model import search_stage

GIB = 1 << 30


def test_shards_are_at_least_what_ram_needs(cal: Calibration) -> None:
    work = Workload(vectors=1e9, qps=10, slo_ms=10_000)
    dep = Deployment(index="flat", node_ram_gib=64, ram_fill=0.7)
    p = plan(cal, work, dep)
    k_min = math.ceil(1e9 * 4 * 384 / (64 * GIB * 0.7))
    assert k_min == 32
    assert p.shards >= k_min
    assert p.shard_ram_gib * p.replicas_per_node <= 64 * 0.7 + 1e-9
    assert p.vectors_per_shard == pytest.approx(1e9 / p.shards)


def test_replicas_follow_utilisation(cal: Calibration) -> None:
    work = Workload(vectors=1e6, qps=2000, slo_ms=10_000)
    dep = Deployment(index="flat", shards=1, node_cores=16, max_utilisation=0.5)
    p = plan(cal, work, dep)
    # One 1M shard per node on 16 cores; mean service from the fit, p50 = 50 ms.
    shard = search_stage(cal, work, dep, 1).shard
    assert (shard.p50, shard.p99) == (pytest.approx(50.0), pytest.approx(60.0))
    service = shard.mean()
    need = 2000 * service / 1000 / (16 * 0.5)
    assert p.replicas == max(2, math.ceil(need))
    assert p.utilisation <= 0.5 + 1e-9
    assert p.cores_per_replica == 16 and p.replicas_per_node == 1


def test_min_replicas_and_fixed_layouts_are_kept(cal: Calibration) -> None:
    work = Workload(vectors=1e5, qps=1, slo_ms=100)
    assert plan(cal, work, Deployment(index="flat", min_replicas=3)).replicas == 3
    fixed = plan(cal, work, Deployment(index="flat", shards=7, replicas=5))
    assert (fixed.shards, fixed.replicas) == (7, 5)


def test_stages_sum_and_verdict(cal: Calibration) -> None:
    work = Workload(
        vectors=1e6, qps=10, slo_ms=200, rerank_candidates=50, generate_p50_ms=60,
        generate_p99_ms=120,
    )  # fmt: skip
    p = plan(cal, work, Deployment(index="hnsw32"))
    stages = {s.name: s for s in p.stages}
    assert list(stages) == ["embed", "search", "rerank", "generate"]
    assert stages["rerank"].p99_ms == pytest.approx(1.0 + 0.1 * 50)
    assert stages["embed"].p50_ms == pytest.approx(4.0, rel=0.02)
    assert stages["generate"].p99_ms == pytest.approx(120, rel=0.03)
    # The p99 of a sum is at most the sum of p99s and at least the largest one.
    assert max(s.p99_ms for s in p.stages) <= p.p99_ms <= sum(s.p99_ms for s in p.stages)
    assert p.meets_slo and p.dominant == "generate"
    tight = plan(cal, work, Deployment(index="hnsw32", shards=1, replicas=2))
    missed = plan(cal, Workload(vectors=1e6, qps=10, slo_ms=5), Deployment(index="hnsw32"))
    assert tight.meets_slo and not missed.meets_slo
    assert missed.p99_ms > 5


def test_fan_out_tail_grows_with_shards(cal: Calibration) -> None:
    work = Workload(vectors=1e7, qps=1, slo_ms=1000)
    dep = Deployment(index="hnsw32", rtt_p50_ms=0.5, rtt_p99_ms=2.0, hedge=False)
    p99 = [predict_p99(cal, work, dep, k) for k in (1, 4, 16, 64)]
    assert p99 == sorted(p99)


def test_hedging_never_hurts_the_tail(cal: Calibration) -> None:
    work = Workload(vectors=1e8, qps=5, slo_ms=1000)
    p = plan(cal, work, Deployment(index="flat", shards=64, replicas=2))
    stages = {s.name: s for s in p.stages}
    assert stages["search"].p99_ms <= p.unhedged_search_p99_ms + 1e-6


def test_embedding_cost_is_n_over_rate(cal: Calibration) -> None:
    work = Workload(vectors=1e9, qps=1, slo_ms=1000)
    dep = Deployment(index="flat", gpu_chunks_per_s=1500, gpu_hourly=3.0, embed_workers=8)
    e = plan(cal, work, dep).embedding
    assert e["gpu_hours"] == pytest.approx(1e9 / 1500 / 3600)
    assert e["gpu_cost"] == pytest.approx(e["gpu_hours"] * 3.0)
    assert e["wall_hours"] == pytest.approx(e["gpu_hours"] / 8)
    # The CPU's best batch is the one with the highest throughput (64: 100 texts/s).
    assert e["cpu_best_batch"] == 64
    assert e["cpu_machine_hours"] == pytest.approx(1e9 / 100 / 3600)


def test_a_miss_comes_with_what_to_change(cal: Calibration) -> None:
    p = plan(cal, Workload(vectors=1e8, qps=50, slo_ms=8), Deployment(index="flat"))
    assert not p.meets_slo
    assert any(c.startswith("use index hnsw32") for c in p.changes)


def test_saturated_replicas_are_reported(cal: Calibration) -> None:
    p = plan(cal, Workload(vectors=1e6, qps=1000, slo_ms=100),
             Deployment(index="flat", shards=1, replicas=1))  # fmt: skip
    assert p.p99_ms == math.inf and not p.meets_slo
    assert any("cannot keep up" in n for n in p.notes)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"vectors": -1, "qps": 1, "slo_ms": 1}, "vectors must be a positive"),
        ({"vectors": 1e14, "qps": 1, "slo_ms": 1}, "capped"),
        ({"vectors": 1, "qps": float("nan"), "slo_ms": 1}, "qps must be"),
        ({"vectors": 1, "qps": 1, "slo_ms": 1, "generate_p50_ms": 5}, "below its p50"),
    ],
)
def test_workload_bounds(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Workload(**kwargs)  # type: ignore[arg-type]


def test_deployment_bounds(cal: Calibration) -> None:
    with pytest.raises(ConfigError, match="ram fill"):
        Deployment(ram_fill=1.5)
    with pytest.raises(ConfigError, match="rtt"):
        Deployment(rtt_p50_ms=3, rtt_p99_ms=1)
    with pytest.raises(ConfigError, match="shards must be"):
        Deployment(shards=0)
    with pytest.raises(ConfigError, match="over the limit"):
        plan(cal, Workload(vectors=1e13, qps=1, slo_ms=1), Deployment(index="flat"))


def test_plans_are_deterministic(cal: Calibration) -> None:
    work = Workload(vectors=3e8, qps=300, slo_ms=300)
    a = plan(cal, work, Deployment(index="hnsw32")).to_dict()
    b = plan(cal, work, Deployment(index="hnsw32")).to_dict()
    assert a == b
    assert np.isfinite(a["p99_ms"])
