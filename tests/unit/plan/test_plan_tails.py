"""The tail arithmetic against closed forms: order statistics, Erlang C, list scheduling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ragfleet.plan.tails import (
    Dist,
    FanOut,
    Queue,
    Shape,
    erlang_c,
    expected_max_uniform,
    makespan,
    quantiles,
)

N = 200_000


def uniform(a: float, b: float) -> Dist:
    """U(a, b) as a Dist: p50 (a+b)/2, p99 a+0.99(b−a), shape from a dense uniform grid."""
    x = np.linspace(a, b, 10_001)
    return Dist((a + b) / 2, a + 0.99 * (b - a), Shape.from_samples(x))


def test_expected_max_uniform_formula() -> None:
    assert expected_max_uniform(2.0, 6.0, 1) == pytest.approx(4.0)
    assert expected_max_uniform(2.0, 6.0, 3) == pytest.approx(2.0 + 4.0 * 3 / 4)
    with pytest.raises(ValueError, match="k must be"):
        expected_max_uniform(0.0, 1.0, 0)


@pytest.mark.parametrize("k", [1, 2, 4, 8, 64])
def test_fanout_mean_is_expected_max_of_k_uniforms(k: int) -> None:
    a, b = 3.0, 11.0
    lat = FanOut(k, uniform(a, b)).sample(np.random.default_rng(k), N)
    assert lat.mean() == pytest.approx(expected_max_uniform(a, b, k), rel=5e-3)
    # The p99 of the max of k uniforms: a + (b − a)·0.99^(1/k).
    assert np.quantile(lat, 0.99) == pytest.approx(a + (b - a) * 0.99 ** (1 / k), rel=5e-3)


def test_fanout_adds_fixed_and_per_shard_costs() -> None:
    base = FanOut(4, Dist.fixed(2.0)).sample(np.random.default_rng(0), 1000)
    costly = FanOut(4, Dist.fixed(2.0), fixed_ms=0.5, per_shard_ms=0.25)
    np.testing.assert_allclose(costly.sample(np.random.default_rng(0), 1000), base + 1.5)


def test_hedging_cuts_the_tail_and_never_the_median() -> None:
    """A hedge sent at the p95 answers at min(L, h + c + L'): the p99 drops, p50 stays."""
    shard = Dist.lognormal(1.0, 10.0)
    rng = np.random.default_rng(1)
    plain = FanOut(1, shard).sample(rng, N)
    hedged = FanOut(1, shard, hedge_cost_ms=0.1).sample(np.random.default_rng(1), N)
    assert np.quantile(hedged, 0.5) == pytest.approx(np.quantile(plain, 0.5), rel=0.02)
    assert np.quantile(hedged, 0.99) < 0.8 * np.quantile(plain, 0.99)
    # Exact: for L above h the hedged time is min(L, h + c + L'); so P(T > t) for t > h is
    # P(L > t)·P(L' > t − h − c).
    h = shard.quantile(0.95)
    t = h + 3.0
    lp = FanOut(1, shard).sample(np.random.default_rng(2), N)
    want = np.mean(lp > t) * np.mean(lp > t - h - 0.1)
    assert np.mean(hedged > t) == pytest.approx(want, abs=2e-3)


def test_makespan_is_list_scheduling() -> None:
    jobs = np.array([[3.0, 1.0, 2.0, 2.0], [1.0, 1.0, 1.0, 1.0]])
    # cores=2: core A takes 3, B takes 1 then 2 (free at 3), then 2 goes to the first free.
    np.testing.assert_allclose(makespan(jobs, 2), [5.0, 2.0])
    np.testing.assert_allclose(makespan(jobs, 1), jobs.sum(axis=1))
    np.testing.assert_allclose(makespan(jobs, 8), jobs.max(axis=1))
    with pytest.raises(ValueError, match="cores"):
        makespan(jobs, 0)


def test_shared_cores_take_the_sum_over_cores() -> None:
    lat = FanOut(8, Dist.fixed(1.0), cores=2, slowdown=1.5).sample(np.random.default_rng(0), 10)
    np.testing.assert_allclose(lat, 8 / 2 * 1.5)


def test_erlang_c_closed_forms() -> None:
    # M/M/1: P_wait = ρ.
    for rho in (0.1, 0.5, 0.9):
        assert erlang_c(1, rho) == pytest.approx(rho)
    # M/M/2 with A erlangs: C = A² / (2 + A) / (1 + A + A²/(2 − A)) · ... in closed form
    # C(2, A) = A² / (A² + (2 − A)(1 + A)) · ... ; evaluate the textbook sum directly.
    for a in (0.5, 1.0, 1.7):
        top = a**2 / 2 * 2 / (2 - a)
        assert erlang_c(2, a) == pytest.approx(top / (1 + a + top))
    assert erlang_c(4, 4.0) == 1.0
    assert erlang_c(4, 0.0) == 0.0


def test_queue_wait_quantile_matches_samples() -> None:
    q = Queue(servers=2, rate_qps=300.0, service_ms=5.0)  # ρ = 0.75
    assert q.utilisation == pytest.approx(0.75)
    waits = q.sample_wait(np.random.default_rng(0), N)
    assert np.mean(waits > 0) == pytest.approx(q.p_wait(), abs=5e-3)
    assert np.quantile(waits, 0.99) == pytest.approx(q.wait_quantile(0.99), rel=0.03)
    # The M/M/1 mean wait is ρ/(μ − λ).
    m1 = Queue(1, 100.0, 5.0)
    w = m1.sample_wait(np.random.default_rng(1), N)
    assert w.mean() == pytest.approx(0.5 / (1 / 5.0 - 0.1), rel=0.02)


def test_saturated_queue_is_infinite_not_nan() -> None:
    q = Queue(1, 1000.0, 2.0)
    assert q.wait_quantile(0.99) == math.inf
    p50, p99 = quantiles(FanOut(2, Dist.fixed(1.0), queue=q).sample(np.random.default_rng(0), 50))
    assert p99 == math.inf and p50 == math.inf


def test_shape_reproduces_its_p50_and_p99() -> None:
    x = np.random.default_rng(0).gamma(2.0, 3.0, 5000)
    shape = Shape.from_samples(x)
    d = Dist(10.0, 40.0, shape)
    s = d.sample(np.random.default_rng(1), N)
    assert np.quantile(s, 0.5) == pytest.approx(10.0, rel=0.01)
    assert np.quantile(s, 0.99) == pytest.approx(40.0, rel=0.01)
    with pytest.raises(ValueError, match="20 samples"):
        Shape.from_samples([1.0, 2.0])
    with pytest.raises(ValueError, match="p50 <= p99"):
        Dist(5.0, 4.0, shape)


def test_lognormal_shape_is_lognormal() -> None:
    d = Dist.lognormal(2.0, 8.0)
    s = d.sample(np.random.default_rng(0), N)
    sigma = math.log(4.0) / 2.3263478740408408
    assert np.quantile(s, 0.5) == pytest.approx(2.0, rel=0.01)
    assert np.quantile(s, 0.99) == pytest.approx(8.0, rel=0.02)
    assert s.mean() == pytest.approx(2.0 * math.exp(sigma**2 / 2), rel=0.02)
