"""Closed-loop HTTP load: ``C`` clients, each sending its next request when the last ends.

Offered load is set by the concurrency ``C``; throughput is what the server sustains
(``QPS = completed / duration``). Per run: QPS, p50/p95/p99 of the requests that were
served (2xx), per pipeline stage from each response's ``timings_ms``, the number shed
with 429 and the errors (any other status or a transport failure). Percentiles are those
of :mod:`ragfleet.eval.latency`. A client told 429 waits its ``Retry-After`` before the
next request, as :class:`ragfleet.client.Client` does.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ragfleet._optional import require
from ragfleet.errors import InputError
from ragfleet.eval.latency import LatencySummary, StageLatencies, percentiles

Endpoint = Literal["search", "ask"]


@dataclass(frozen=True)
class LoadConfig:
    """One run: ``concurrency`` clients for ``duration_s`` against ``url`` (a collection's
    URL, ``http://host:port/v1/collections/NAME``)."""

    url: str
    concurrency: int
    duration_s: float
    endpoint: Endpoint = "search"
    key: str | None = None
    k: int = 10
    mode: str = "hybrid"
    budget_ms: float = 1000.0
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not 1 <= self.concurrency <= 10_000 or not 0 < self.duration_s <= 3600:
            raise InputError("concurrency must be in [1, 10000] and duration in (0, 3600] s")
        if self.endpoint not in ("search", "ask"):
            raise InputError(f"endpoint must be search or ask, got {self.endpoint!r}")

    def body(self, query: str) -> dict[str, Any]:
        if self.endpoint == "ask":
            return {"question": query, "budget_ms": self.budget_ms}
        return {"query": query, "k": self.k, "mode": self.mode}


class Outcomes:
    """What a load run counts, closed or open loop: the latencies of served (2xx)
    requests and every status (or transport failure) seen."""

    latencies_ms: list[float]
    statuses: Counter[str]

    @property
    def ok(self) -> int:
        return len(self.latencies_ms)

    @property
    def shed(self) -> int:
        return self.statuses["429"]

    @property
    def errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if not s.startswith("2") and s != "429")

    def latency(self) -> LatencySummary | None:
        return percentiles(self.latencies_ms) if self.latencies_ms else None


@dataclass
class LoadRun(Outcomes):
    """What one run measured."""

    config: LoadConfig
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    stages: StageLatencies = field(default_factory=StageLatencies)

    @property
    def qps(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        c = self.config
        return {
            "endpoint": c.endpoint, "concurrency": c.concurrency, "duration_s": c.duration_s,
            "seconds": round(self.seconds, 3), "ok": self.ok, "shed_429": self.shed,
            "errors": self.errors, "statuses": dict(self.statuses), "qps": round(self.qps, 2),
            "latency_ms": self.latency(), "stages_ms": self.stages.summary(),
        }  # fmt: skip


def read_queries(path: Path) -> list[str]:
    """Queries from a text file (one a line) or JSONL (``text`` or ``query`` field)."""
    if not path.is_file():
        raise InputError(f"queries file {path} does not exist")
    lines = [ln for ln in path.read_text("utf-8").splitlines() if ln.strip()]
    if path.suffix == ".jsonl":
        try:
            rows = [json.loads(ln) for ln in lines]
            lines = [str(r.get("text") or r.get("query") or "") for r in rows]
        except (json.JSONDecodeError, AttributeError) as e:
            raise InputError(f"{path}: each line must be a JSON object with 'text'") from e
    queries = [q for q in lines if q.strip()]
    if not queries:
        raise InputError(f"{path} holds no queries")
    return queries


async def _client_loop(
    client: Any, cfg: LoadConfig, queries: Any, stop: float, run: LoadRun
) -> None:
    url = f"{cfg.url.rstrip('/')}/{cfg.endpoint}"
    while time.perf_counter() < stop:
        body = cfg.body(next(queries))
        t = time.perf_counter()
        try:
            res = await client.post(url, json=body)
        except Exception as e:  # a transport failure is an error of the run, counted
            run.statuses[type(e).__name__] += 1
            continue
        ms = (time.perf_counter() - t) * 1e3
        run.statuses[str(res.status_code)] += 1
        if res.status_code == 429:  # a well-behaved client waits as it is told
            await asyncio.sleep(_retry_after(res.headers.get("retry-after", "1")))
        elif 200 <= res.status_code < 300:
            run.latencies_ms.append(ms)
            run.stages.add(res.json().get("timings_ms", {}))


def _retry_after(value: str) -> float:
    """Seconds of a ``Retry-After`` header: a number of seconds, capped at 60 (an HTTP
    date or garbage: 1 s)."""
    try:
        seconds = float(value)
    except ValueError:
        return 1.0
    return min(max(seconds, 0.0), 60.0) if math.isfinite(seconds) else 1.0


async def run_load(cfg: LoadConfig, queries: Sequence[str]) -> LoadRun:
    """Drive ``cfg.concurrency`` closed-loop clients for ``cfg.duration_s`` seconds."""
    httpx = require("httpx", "serve")
    if not queries:
        raise InputError("no queries to send")
    headers = {"Authorization": f"Bearer {cfg.key}"} if cfg.key else {}
    limits = httpx.Limits(
        max_connections=cfg.concurrency, max_keepalive_connections=cfg.concurrency
    )
    run = LoadRun(cfg)
    cycle = itertools.cycle(queries)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=cfg.timeout_s) as client:
        t0 = time.perf_counter()
        stop = t0 + cfg.duration_s
        await asyncio.gather(
            *(_client_loop(client, cfg, cycle, stop, run) for _ in range(cfg.concurrency))
        )
        run.seconds = time.perf_counter() - t0
    return run


def plot_load(runs: Sequence[LoadRun], path: Path, title: str = "") -> None:
    """p50 / p95 / p99 latency against achieved QPS, one point per concurrency."""
    require("matplotlib", "eval")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    served = [r for r in runs if r.latency() is not None]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for p in ("p50", "p95", "p99"):
        ys = [r.latency()[p] for r in served]  # type: ignore[index]
        ax.plot([r.qps for r in served], ys, marker="o", label=p)
    for r in served:
        ax.annotate(f"C={r.config.concurrency}", (r.qps, r.latency()["p99"]), fontsize=7)  # type: ignore[index]
    ax.set_xlabel("throughput (requests/s)")
    ax.set_ylabel("latency (ms)")
    ax.set_title(title or "latency vs offered load")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
