"""Open-loop HTTP load: requests sent at a fixed arrival rate, whatever the server does.

A closed-loop driver (``C`` clients, each waiting for its answer) slows down with the
server, so a stalled server is sent fewer requests and the stall never shows in the
percentiles: coordinated omission (Tene, "How NOT to measure latency", 2015; wrk2). Here
request ``i`` has an intended send time ``t_i`` fixed before the run: constant arrivals
``t_i = i / λ``, or Poisson arrivals ``t_i = Σ_{j≤i} e_j`` with ``e_j ~ Exp(λ)``
(Hegde et al. model web traffic so; k6's ``constant-arrival-rate``, vegeta's ``-rate``).
Each request is sent at ``t_i`` on its own task, and its latency is measured from ``t_i``,
not from when it left: if the driver or its connection pool falls behind, the delay is
counted against the server, as a user would feel it. The run is bounded by ``duration_s``
and ``max_requests`` (sending), by ``max_outstanding`` (requests in flight: more are not
sent and count as ``dropped``) and by ``timeout_s`` (each request).

A sweep of rates gives the latency–throughput curve. Its knee (:func:`knee`) is the
highest offered rate up to which the server keeps up (all served, its queue drained soon
after the window) at a p99 within ``factor`` times the lightest load's, at that rate and
every lower one; past it requests only queue. Little's law
(``L = λ·W``) turns the knee into an admission limit: ``limit = ⌈λ_knee · W_target⌉``
requests in flight, where ``W_target`` is the latency target (by default the knee's p99).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ragfleet._optional import require
from ragfleet.errors import InputError
from ragfleet.eval.latency import StageLatencies, percentiles
from ragfleet.eval.load import Endpoint, Outcomes

Arrivals = Literal["poisson", "constant"]
MAX_RATE = 100_000.0
MAX_REQUESTS = 1_000_000


@dataclass(frozen=True)
class OpenLoopConfig:
    """One run at ``rate`` requests/s for ``duration_s`` against ``url`` (a collection's
    URL, ``http://host:port/v1/collections/NAME``)."""

    url: str
    rate: float
    duration_s: float
    endpoint: Endpoint = "search"
    key: str | None = None
    k: int = 10
    mode: str = "hybrid"
    budget_ms: float = 1000.0
    arrivals: Arrivals = "poisson"
    max_requests: int = 100_000
    max_outstanding: int = 1024
    timeout_s: float = 30.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.rate <= MAX_RATE:
            raise InputError(f"rate must be in (0, {MAX_RATE:g}] requests/s, got {self.rate}")
        if not 0 < self.duration_s <= 3600:
            raise InputError(f"duration must be in (0, 3600] s, got {self.duration_s}")
        if not 1 <= self.max_requests <= MAX_REQUESTS:
            raise InputError(f"max_requests must be in [1, {MAX_REQUESTS}]")
        if not 1 <= self.max_outstanding <= 10_000 or not 0 < self.timeout_s <= 600:
            raise InputError("max_outstanding must be in [1, 10000] and timeout in (0, 600] s")
        if self.arrivals not in ("poisson", "constant"):
            raise InputError(f"arrivals must be poisson or constant, got {self.arrivals!r}")
        if self.endpoint not in ("search", "ask"):
            raise InputError(f"endpoint must be search or ask, got {self.endpoint!r}")

    def body(self, query: str) -> dict[str, Any]:
        if self.endpoint == "ask":
            return {"question": query, "budget_ms": self.budget_ms}
        return {"query": query, "k": self.k, "mode": self.mode}

    def window_s(self, n_scheduled: int) -> float:
        """The span the schedule covers: ``duration_s``, or less when ``max_requests`` cut
        it (``n / rate``): the denominator of the offered and served rates."""
        if n_scheduled < self.max_requests:
            return self.duration_s
        return min(self.duration_s, n_scheduled / self.rate)

    def schedule(self) -> np.ndarray:
        """Intended send times, seconds from the start: below ``duration_s``, at most
        ``max_requests`` of them."""
        n = min(self.max_requests, math.ceil(self.rate * self.duration_s * 1.5) + 16)
        if self.arrivals == "constant":
            t = np.arange(n) / self.rate
        else:
            gaps = np.random.default_rng(self.seed).exponential(1 / self.rate, n)
            t = np.cumsum(gaps) - gaps[0]
        return t[t < self.duration_s]


@dataclass
class OpenLoopRun(Outcomes):
    """What one run measured. ``latencies_ms`` are of served (2xx) requests, from their
    intended send time; ``lag_ms`` is how late each request actually left."""

    config: OpenLoopConfig
    sent: int = 0
    dropped: int = 0
    seconds: float = 0.0
    window_s: float = 0.0  # the schedule's span (OpenLoopConfig.window_s)
    latencies_ms: list[float] = field(default_factory=list)
    lag_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    stages: StageLatencies = field(default_factory=StageLatencies)

    @property
    def offered(self) -> float:
        """Requests per second the schedule asked for (what was scheduled, over its span)."""
        return (self.sent + self.dropped) / self._window

    @property
    def throughput(self) -> float:
        """Served requests per second, over the run's window or until the last answer came,
        whichever is longer (a server that falls behind drains its queue after the window)."""
        return self.ok / max(self.seconds, self._window)

    @property
    def _window(self) -> float:
        return self.window_s or self.config.duration_s

    @property
    def kept_up(self) -> bool:
        """The server kept up with the schedule: every request sent and served (none
        dropped, shed, failed or timed out: their latencies would be missing from the
        percentiles), and the answers outstanding when the window closed came within
        ``10 % of the window + 5 × the fastest answer`` (the service time without a queue).
        An overloaded server is still draining the queue it built: ``(λ/μ − 1)·T`` seconds
        after a window of ``T``."""
        if not self.latencies_ms or self.ok != self.sent + self.dropped:
            return False
        drain = self.seconds - self._window
        return drain <= 0.1 * self._window + 5 * min(self.latencies_ms) / 1e3

    def to_dict(self) -> dict[str, Any]:
        c = self.config
        lag = percentiles(self.lag_ms) if self.lag_ms else None
        return {
            "endpoint": c.endpoint, "arrivals": c.arrivals, "rate": c.rate,
            "duration_s": c.duration_s, "offered_qps": round(self.offered, 2),
            "throughput_qps": round(self.throughput, 2), "sent": self.sent,
            "dropped": self.dropped, "ok": self.ok, "shed_429": self.shed,
            "errors": self.errors, "statuses": dict(self.statuses),
            "seconds": round(self.seconds, 3), "kept_up": self.kept_up,
            "latency_ms": self.latency(),
            "send_lag_ms": lag, "stages_ms": self.stages.summary(),
        }  # fmt: skip


async def _send(
    client: Any, url: str, body: dict[str, Any], intended: float, timeout: float,
    run: OpenLoopRun,
) -> None:  # fmt: skip
    run.lag_ms.append((time.perf_counter() - intended) * 1e3)
    try:  # timeout_s bounds the whole request (httpx's own timeout is per read)
        res = await asyncio.wait_for(client.post(url, json=body), timeout)
    except Exception as e:  # a transport failure or timeout is an error of the run, counted
        run.statuses[type(e).__name__] += 1
        return
    run.statuses[str(res.status_code)] += 1
    if 200 <= res.status_code < 300:
        run.latencies_ms.append((time.perf_counter() - intended) * 1e3)
        run.stages.add(res.json().get("timings_ms", {}))


async def run_open_loop(cfg: OpenLoopConfig, queries: Sequence[str]) -> OpenLoopRun:
    """Send ``cfg``'s schedule of requests, the queries in turn, and wait for the answers."""
    httpx = require("httpx", "serve")
    if not queries:
        raise InputError("no queries to send")
    headers = {"Authorization": f"Bearer {cfg.key}"} if cfg.key else {}
    limits = httpx.Limits(max_connections=cfg.max_outstanding, max_keepalive_connections=64)
    url = f"{cfg.url.rstrip('/')}/{cfg.endpoint}"
    run, cycle = OpenLoopRun(cfg), itertools.cycle(queries)
    tasks: set[asyncio.Task[None]] = set()
    schedule = cfg.schedule()
    wide = cfg.timeout_s + 1.0  # asyncio.wait_for in _send is the bound; httpx's is per read
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=wide) as client:
        t0 = time.perf_counter()
        for offset in schedule:
            intended = t0 + float(offset)
            delay = intended - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(tasks) >= cfg.max_outstanding:
                run.dropped += 1
                continue
            body = cfg.body(next(cycle))
            task = asyncio.create_task(_send(client, url, body, intended, cfg.timeout_s, run))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            run.sent += 1
        if tasks:  # each is bounded by timeout_s; this bound is a backstop
            _, late = await asyncio.wait(set(tasks), timeout=cfg.timeout_s + 1.0)
            for task in late:
                task.cancel()
                run.statuses["Cancelled"] += 1
        run.seconds = time.perf_counter() - t0
        run.window_s = cfg.window_s(len(schedule))
    return run


@dataclass(frozen=True)
class Knee:
    """Where the curve bends: the rate, its throughput and p99, and the admission limit
    Little's law gives for ``target_ms``."""

    rate: float
    throughput_qps: float
    p99_ms: float
    target_ms: float
    admission_limit: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate": self.rate, "throughput_qps": round(self.throughput_qps, 2),
            "p99_ms": round(self.p99_ms, 2), "target_ms": round(self.target_ms, 2),
            "admission_limit": self.admission_limit,
        }  # fmt: skip


def knee(
    runs: Sequence[OpenLoopRun], factor: float = 3.0, target_ms: float | None = None
) -> Knee | None:
    """The highest-rate run that, like every lighter run, kept up
    (:attr:`OpenLoopRun.kept_up`) with p99 ≤ ``factor`` × the lightest run's p99, and
    ``⌈throughput · target⌉`` in flight (Little's law; ``target_ms`` defaults to that run's
    p99). None when not even the lightest kept up."""
    ordered = sorted(runs, key=lambda r: r.config.rate)
    lightest = ordered[0].latency() if ordered else None
    if lightest is None:
        return None
    best = None
    for r in ordered:  # the first rate that fails ends the search: a lucky point past it
        lat = r.latency()  # is noise, not capacity to admit; nothing served is a failure
        if lat is None or not r.kept_up or lat["p99"] > factor * lightest["p99"]:
            break
        best = r
    if best is None:
        return None
    p99 = best.latency()["p99"]  # type: ignore[index]
    target = target_ms if target_ms is not None else p99
    limit = max(1, math.ceil(best.throughput * target / 1e3))
    return Knee(best.config.rate, best.throughput, p99, target, limit)


def plot_open_loop(
    curves: dict[str, Sequence[OpenLoopRun]], path: Any, knees: dict[str, Knee | None]
) -> None:
    """Per curve (label → runs of a sweep): p50 and p99 from the intended send time against
    the offered rate, throughput on a second panel, the knee marked on both."""
    require("matplotlib", "eval")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat, thr) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, runs in curves.items():
        served = sorted((r for r in runs if r.latency() is not None), key=lambda r: r.config.rate)
        rates = [r.config.rate for r in served]
        (line,) = lat.plot(rates, [r.latency()["p99"] for r in served], marker="o",  # type: ignore[index]
                           label=f"{label} p99")  # fmt: skip
        lat.plot(rates, [r.latency()["p50"] for r in served], marker=".", ls="--",  # type: ignore[index]
                 color=line.get_color(), label=f"{label} p50")  # fmt: skip
        thr.plot(rates, [r.throughput for r in served], marker="o", label=label)
        k = knees.get(label)
        if k is not None:
            lat.axvline(k.rate, color=line.get_color(), alpha=0.4, ls=":")
            lat.annotate(f"knee {k.rate:g}/s → limit {k.admission_limit}", (k.rate, k.p99_ms),
                         fontsize=7, color=line.get_color())  # fmt: skip
            thr.axvline(k.rate, color=line.get_color(), alpha=0.4, ls=":")
    top = max((r.config.rate for runs in curves.values() for r in runs), default=1.0)
    thr.plot([0, top], [0, top], color="grey", lw=0.8, label="offered")
    lat.set_yscale("log")
    lat.set_xlabel("offered rate (requests/s)")
    lat.set_ylabel("latency from intended send (ms)")
    thr.set_xlabel("offered rate (requests/s)")
    thr.set_ylabel("throughput (requests/s)")
    for ax in (lat, thr):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("open-loop load: latency and throughput against offered rate")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
