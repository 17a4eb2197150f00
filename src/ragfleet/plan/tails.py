"""Tail latency of a fan-out: the maximum of K shard latencies, by Monte-Carlo.

A query that scatters to K shards waits for the slowest, so its latency is
``max(L_1 … L_K)`` plus the scatter/merge cost. For i.i.d. ``L_i ~ U(a, b)`` the expected
maximum has the closed form ``a + (b − a)·K/(K + 1)`` (the K-th order statistic of K
uniforms has mean ``K/(K+1)``), which the tests use as an oracle; measured shard latencies
are not uniform — they are skewed with a long tail — so the planner draws from the
measured distribution instead of assuming a normal one (Dean & Barroso, "The Tail at
Scale", CACM 2013, for why the tail of the maximum grows with K).

Three effects the simple maximum misses are modelled explicitly:

- **Hedging** (Dean & Barroso): a request still unanswered after ``h`` (the shard's p95)
  is sent to a second replica; the shard answers at ``min(L, h + c + L')`` with ``L'`` an
  independent draw and ``c`` the measured cost of sending the hedge.
- **Shared cores**: K shards on one node with C < K cores run as list scheduling — each
  free core takes the next shard — so the wall time is the makespan, not the maximum.
- **Queueing**: a replica serving λ queries/s on c cores with mean service time 1/μ waits,
  in an M/M/c queue, with probability ``P_wait`` = Erlang C(c, λ/μ), an exponential time of
  rate ``cμ − λ`` (Kleinrock, *Queueing Systems* vol. 1, §3.5).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float64]
_Z99 = 2.3263478740408408  # Φ⁻¹(0.99)


def _probit(u: float) -> float:
    """Φ⁻¹(u), the standard normal quantile (``statistics.NormalDist``)."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(u)


def expected_max_uniform(a: float, b: float, k: int) -> float:
    """``E[max of k i.i.d. U(a, b)] = a + (b − a)·k/(k + 1)``."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return a + (b - a) * k / (k + 1)


@dataclass(frozen=True)
class Shape:
    """A latency distribution's shape, measured once and rescaled to any p50 and p99.

    ``z`` holds sorted samples normalised as ``z = (x − p50) / (p99 − p50)``, so z is 0 at
    the median and 1 at the p99. A distribution with median ``m`` and p99 ``t`` is then the
    location-scale member ``x = m + z·(t − m)``: its own p50 and p99 are ``m`` and ``t``
    exactly, and the rest of its tail (p99.9, the maximum of K draws) keeps the measured form.
    """

    z: tuple[float, ...]

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float] | npt.ArrayLike) -> Shape:
        """The shape of measured samples (at least 20; their p99 must exceed their p50)."""
        x = np.sort(np.asarray(samples_ms, dtype=np.float64))
        if x.size < 20:
            raise ValueError(f"a shape needs at least 20 samples, got {x.size}")
        p50, p99 = np.quantile(x, [0.5, 0.99])
        spread = float(p99 - p50)
        if spread <= 0:
            spread = max(float(p50) * 1e-3, 1e-9)
        return cls(tuple(float(v) for v in (x - p50) / spread))

    @classmethod
    def constant(cls) -> Shape:
        """A distribution with no spread (every draw at the median)."""
        return cls((0.0,) * 20)

    @classmethod
    def lognormal(cls, ratio: float, points: int = 1001) -> Shape:
        """The shape of a log-normal whose p99/p50 is ``ratio`` (> 1): with
        ``σ = ln(ratio)/z₀.₉₉``, ``z(u) = (e^{σ·Φ⁻¹(u)} − 1)/(ratio − 1)`` on an even grid of
        ``u`` (the ends, where Φ⁻¹ is infinite, at 1/(10·points) from 0 and 1). For inputs
        known only by two numbers (a network round trip, an LLM's generation time)."""
        if ratio <= 1.0:
            return cls.constant()
        sigma = math.log(ratio) / _Z99
        u = np.linspace(0.0, 1.0, points)
        u[0], u[-1] = 0.1 / points, 1.0 - 0.1 / points
        z = np.array([_probit(float(v)) for v in u])
        return cls(tuple(float(v) for v in (np.exp(sigma * z) - 1.0) / (ratio - 1.0)))

    def quantile(self, u: npt.ArrayLike) -> Samples:
        """The shape's quantile function at ``u`` ∈ [0, 1] (linear between samples)."""
        z = np.asarray(self.z)
        grid = np.linspace(0.0, 1.0, z.size)
        out: Samples = np.interp(np.asarray(u, dtype=np.float64), grid, z)
        return out


@dataclass(frozen=True)
class Dist:
    """A latency distribution in ms: a :class:`Shape` placed at ``p50`` with ``p99``."""

    p50: float
    p99: float
    shape: Shape

    def __post_init__(self) -> None:
        if not (self.p50 >= 0 and self.p99 >= self.p50):
            raise ValueError(f"need 0 <= p50 <= p99, got p50={self.p50} p99={self.p99}")

    def sample(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> Samples:
        """Draws, clipped at 0 (a shape's left tail can reach below zero when rescaled)."""
        z = self.shape.quantile(rng.random(size))
        return np.maximum(self.p50 + z * (self.p99 - self.p50), 0.0)

    def mean(self) -> float:
        """The mean, from the shape (for utilisation: mean service time)."""
        z = np.asarray(self.shape.z)
        return float(max(self.p50 + z.mean() * (self.p99 - self.p50), 0.0))

    def scaled(self, factor: float) -> Dist:
        """Every latency times ``factor``."""
        return Dist(self.p50 * factor, self.p99 * factor, self.shape)

    @classmethod
    def fixed(cls, ms: float) -> Dist:
        return cls(ms, ms, Shape.constant())

    @classmethod
    def lognormal(cls, p50: float, p99: float) -> Dist:
        """A log-normal known by its p50 and p99 (:meth:`Shape.lognormal`)."""
        return cls(p50, p99, Shape.lognormal(p99 / p50 if p50 > 0 else 1.0))

    def quantile(self, q: float) -> float:
        return float(self.p50 + self.shape.quantile(q) * (self.p99 - self.p50))


def makespan(jobs: Samples, cores: int) -> Samples:
    """Wall time of ``jobs[s, j]`` (sample s, shard j) run by list scheduling on ``cores``.

    Each free core takes the next job, in shard order. With ``cores >= K`` this is the
    row maximum.
    """
    if cores < 1:
        raise ValueError(f"cores must be >= 1, got {cores}")
    n, k = jobs.shape
    if cores >= k:
        return np.asarray(jobs.max(axis=1), dtype=np.float64)
    free = np.zeros((n, cores))
    rows = np.arange(n)
    for j in range(k):
        idx = free.argmin(axis=1)
        free[rows, idx] += jobs[:, j]
    return np.asarray(free.max(axis=1), dtype=np.float64)


def erlang_c(servers: int, offered: float) -> float:
    """Erlang C: the probability an arrival waits in M/M/c with ``offered`` = λ/μ erlangs.

    ``C(c, A) = (A^c/c!)·c/(c − A) / (Σ_{i<c} A^i/i! + (A^c/c!)·c/(c − A))``; 1 when the
    queue is unstable (``A >= c``). Computed with the stable Erlang-B recursion.
    """
    if servers < 1:
        raise ValueError(f"servers must be >= 1, got {servers}")
    if offered <= 0:
        return 0.0
    if offered >= servers:
        return 1.0
    b = 1.0
    for i in range(1, servers + 1):
        b = offered * b / (i + offered * b)
    rho = offered / servers
    return b / (1.0 - rho + rho * b)


@dataclass(frozen=True)
class Queue:
    """An M/M/c replica: ``servers`` cores, ``rate_qps`` arrivals, ``service_ms`` mean."""

    servers: int
    rate_qps: float
    service_ms: float

    @property
    def utilisation(self) -> float:
        return self.rate_qps * self.service_ms / 1000.0 / self.servers

    def p_wait(self) -> float:
        return erlang_c(self.servers, self.rate_qps * self.service_ms / 1000.0)

    def wait_quantile(self, q: float) -> float:
        """The q-quantile of the waiting time, ms: ``ln(P_wait/(1 − q)) / (cμ − λ)`` when
        ``P_wait > 1 − q``, else 0; infinite when unstable."""
        if self.utilisation >= 1.0:
            return math.inf
        p = self.p_wait()
        if p <= 1.0 - q:
            return 0.0
        drain_per_ms = self.servers / self.service_ms - self.rate_qps / 1000.0
        return math.log(p / (1.0 - q)) / drain_per_ms

    def sample_wait(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> Samples:
        """Waiting times, ms: 0 with probability 1 − P_wait, else exponential."""
        if self.utilisation >= 1.0:
            return np.full(size, math.inf)
        drain_per_ms = self.servers / self.service_ms - self.rate_qps / 1000.0
        waits = rng.exponential(1.0 / drain_per_ms, size)
        return np.where(rng.random(size) < self.p_wait(), waits, 0.0)


@dataclass(frozen=True)
class FanOut:
    """One query's scatter to ``shards`` shards of latency ``shard`` each.

    ``cores``: how many of the shards can run at once (``None``: every shard on its own
    cores, the distributed layout); ``slowdown``: each shard's latency multiplier when
    more than one runs on a node at a time (memory bandwidth shared; measured);
    ``hedge_cost_ms``: the extra time a hedge costs, or ``None`` for no hedging;
    ``hedge_quantile``: when to hedge; ``per_shard_ms``: the scatter/merge cost each shard
    adds on the coordinator, ``fixed_ms`` the rest; ``network``: a round trip added to each
    shard (``None`` on one node); ``queue``: the waiting time at each shard replica.
    """

    shards: int
    shard: Dist
    cores: int | None = None
    slowdown: float = 1.0
    hedge_cost_ms: float | None = None
    hedge_quantile: float = 0.95
    fixed_ms: float = 0.0
    per_shard_ms: float = 0.0
    network: Dist | None = None
    queue: Queue | None = None

    def sample(self, rng: np.random.Generator, n: int) -> Samples:
        """``n`` query latencies, ms."""
        k = self.shards
        if self.cores is None:
            # Shards on their own cores: the max of K i.i.d. per-shard times E is
            # Q_E(U^(1/K)), read off an empirical E of ``pool`` draws (exact in
            # distribution up to the pool's resolution; no tail beyond its largest draw).
            pool = np.sort(self._per_shard(rng, (max(n, 20_000), 1))[:, 0])
            u = rng.random(n) ** (1.0 / k)
            wall = np.interp(u, np.linspace(0.0, 1.0, pool.size), pool)
        else:
            wall = makespan(self._per_shard(rng, (n, k)), self.cores)
        return np.asarray(wall + self.fixed_ms + self.per_shard_ms * k, dtype=np.float64)

    def _per_shard(self, rng: np.random.Generator, size: tuple[int, int]) -> Samples:
        """One shard's time as the coordinator sees it: search (slowed when shards share a
        node), hedged after its quantile, plus its queue wait and round trip."""
        parallel = self.shards if self.cores is None else min(self.shards, self.cores)
        dist = self.shard.scaled(self.slowdown) if parallel > 1 else self.shard
        jobs = dist.sample(rng, size)
        if self.hedge_cost_ms is not None:
            h = dist.quantile(self.hedge_quantile)
            again = h + self.hedge_cost_ms + dist.sample(rng, size)
            jobs = np.where(jobs > h, np.minimum(jobs, again), jobs)
        if self.queue is not None:
            jobs = jobs + self.queue.sample_wait(rng, size)
        if self.network is not None:
            jobs = jobs + self.network.sample(rng, size)
        return jobs


def quantiles(samples: Samples) -> tuple[float, float]:
    """``(p50, p99)`` of samples; an infinite sample (a saturated queue) sorts last."""
    p50, p99 = np.quantile(np.nan_to_num(samples, posinf=np.finfo(np.float64).max), [0.5, 0.99])
    if p99 > 1e300:
        p99 = math.inf
    if p50 > 1e300:
        p50 = math.inf
    return float(p50), float(p99)


def compact(shape: Shape, points: int = 201) -> Shape:
    """``shape`` at ``points`` evenly spaced quantiles (a smaller file, the same curve)."""
    return Shape(tuple(float(v) for v in shape.quantile(np.linspace(0.0, 1.0, points))))
