"""``ragfleet bench load``: closed-loop (``--concurrency``) or open-loop (``--rate``) HTTP
load against a running server, with JSON and a plot."""

from __future__ import annotations

import asyncio
import json
import math
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from ragfleet.cli._common import fail, user_errors


def load(
    url: Annotated[str, typer.Option(help="collection URL: http://HOST:PORT/v1/collections/NAME")],
    queries: Annotated[Path, typer.Option(help="queries: text lines or JSONL with 'text'")],
    concurrency: Annotated[
        list[int] | None, typer.Option(help="closed loop: clients; repeat to sweep")
    ] = None,
    rate: Annotated[
        list[float] | None,
        typer.Option(help="open loop: arrivals per second; repeat to sweep (overrides clients)"),
    ] = None,
    arrivals: Annotated[str, typer.Option(help="open loop: poisson | constant")] = "poisson",
    max_requests: Annotated[int, typer.Option(help="open loop: most requests per rate")] = 100_000,
    max_outstanding: Annotated[
        int, typer.Option(help="open loop: most requests in flight; more are dropped")
    ] = 1024,
    slo_ms: Annotated[
        float | None, typer.Option(help="open loop: latency target for the admission limit")
    ] = None,
    duration: Annotated[float, typer.Option(help="seconds per level")] = 10.0,
    key: Annotated[str | None, typer.Option(help="API key (default $RAGFLEET_API_KEY)")] = None,
    endpoint: Annotated[str, typer.Option(help="search | ask")] = "search",
    k: Annotated[int, typer.Option(help="hits per search")] = 10,
    mode: Annotated[str, typer.Option(help="dense | sparse | hybrid")] = "hybrid",
    out: Annotated[Path, typer.Option(help="writes load.json and load.png here")] = Path(
        "bench-load"
    ),
) -> None:
    """HTTP load: QPS, p50/p95/p99 overall and per stage, 429s and errors. With --rate, an
    open loop (latency from each request's intended send time), the knee of the curve and
    the admission limit Little's law gives for it."""
    from ragfleet.eval.load import read_queries

    with user_errors():
        texts = read_queries(queries)
        key = key or os.environ.get("RAGFLEET_API_KEY")
        report: Any
        if rate:
            if concurrency:
                fail("give --rate (open loop) or --concurrency (closed loop), not both")
            report = _open(url, texts, rate, duration, key, endpoint, k, mode,
                           arrivals, max_requests, max_outstanding, slo_ms, out)  # fmt: skip
        else:
            report = _closed(url, texts, concurrency or [8], duration, key, endpoint, k, mode, out)
    (out / "load.json").write_text(json.dumps(report, indent=2) + "\n")
    typer.echo(f"wrote {out / 'load.json'} and {out / 'load.png'}")


def _closed(
    url: str, texts: list[str], levels: list[int], duration: float, key: str | None,
    endpoint: str, k: int, mode: str, out: Path,
) -> list[dict[str, Any]]:  # fmt: skip
    from ragfleet.eval.load import LoadConfig, plot_load, run_load

    runs = []
    for c in levels:
        cfg = LoadConfig(url, c, duration, endpoint, key, k, mode)  # type: ignore[arg-type]
        run = asyncio.run(run_load(cfg, texts))
        lat = run.latency() or {"p50": 0.0, "p99": 0.0}
        typer.echo(
            f"C={c:<4} qps={run.qps:<9.1f} p50={lat['p50']:<8.1f} p99={lat['p99']:<8.1f} "
            f"429={run.shed:<6} errors={run.errors}"
        )
        runs.append(run)
    out.mkdir(parents=True, exist_ok=True)
    plot_load(runs, out / "load.png", title=f"{endpoint} {url}")
    return [r.to_dict() for r in runs]


def _open(
    url: str, texts: list[str], rates: list[float], duration: float, key: str | None,
    endpoint: str, k: int, mode: str, arrivals: str, max_requests: int,
    max_outstanding: int, slo_ms: float | None, out: Path,
) -> dict[str, Any]:  # fmt: skip
    from ragfleet.eval.openloop import OpenLoopConfig, knee, plot_open_loop, run_open_loop

    if slo_ms is not None and not (math.isfinite(slo_ms) and 0 < slo_ms <= 3_600_000):
        fail(f"--slo-ms must be a latency in (0, 3600000] ms, got {slo_ms}")
    point: Any = endpoint  # checked by OpenLoopConfig: every rate before the first request
    configs = [
        OpenLoopConfig(url, r, duration, point, key, k, mode, arrivals=arrivals,  # type: ignore[arg-type]
                       max_requests=max_requests, max_outstanding=max_outstanding)
        for r in sorted(rates)
    ]  # fmt: skip
    runs = []
    for cfg in configs:
        run = asyncio.run(run_open_loop(cfg, texts))
        lat = run.latency() or {"p50": 0.0, "p99": 0.0}
        typer.echo(
            f"rate={cfg.rate:<8g} served={run.throughput:<9.1f} p50={lat['p50']:<8.1f} "
            f"p99={lat['p99']:<9.1f} 429={run.shed:<6} errors={run.errors:<4} "
            f"dropped={run.dropped}"
        )
        runs.append(run)
    bend = knee(runs, target_ms=slo_ms)
    if bend is None:
        typer.echo("no knee: not even the lightest rate was kept up with; try lower rates")
    else:
        typer.echo(
            f"knee at {bend.rate:g}/s ({bend.throughput_qps:.1f} served, p99 {bend.p99_ms:.1f} "
            f"ms): admission limit ≈ {bend.throughput_qps:.1f}/s × {bend.target_ms:.0f} ms = "
            f"{bend.admission_limit} in flight (ragfleet serve --max-inflight)"
        )
    out.mkdir(parents=True, exist_ok=True)
    plot_open_loop({endpoint: runs}, out / "load.png", {endpoint: bend})
    return {"open_loop": [r.to_dict() for r in runs], "knee": bend.to_dict() if bend else None}
