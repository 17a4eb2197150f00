"""Result cache under a Zipf workload: hit rate and hit/miss latency, in-process vs Redis.

A stream of N requests draws SciFact test queries (the 300 ids of qrels/test.tsv) with
P(rank r) ∝ r^-s (s = 1.1). A request builds the result key, reads the cache and, on a hit,
deserialises the ~5 KB JSON results; on a miss it calls ``compute(query) -> bytes`` (default:
sleep 10 ms, standing in for a search, then build a realistic payload), stores and parses it.
The baseline, measured in the same run, is no cache (every request computes). For an
unbounded cache the expected hit rate is 1 - E[distinct]/N with
E[distinct] = Σ_i 1 - (1 - p_i)^N, reported beside the measured one.
A last phase kills redis-server (SIGKILL) a third of the way through the stream and
restarts it at two thirds, counting requests that failed (the goal is zero).

    python -m benchmarks.cache_zipf [--quick] [--redis-url redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ragfleet.cache import CacheBackend, MemoryCache, RedisCache, result_key

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data" / "scifact"
RESULTS = ROOT / "benchmarks" / "results"
SCRIPT = ROOT / "scripts" / "redis-server.sh"
PARAMS = {"mode": "hybrid", "k": 10, "filters": None, "reranker": None, "generator": None}
GOAL_P50_HIT_MS = {"memory": 1.0, "redis": 2.0}


def load_queries(data_dir: Path = DATA) -> tuple[list[str], str]:
    """The SciFact test query texts (ids in qrels/test.tsv), or 300 synthetic strings."""
    queries, qrels = data_dir / "queries.jsonl", data_dir / "qrels" / "test.tsv"
    if not (queries.exists() and qrels.exists()):
        return [f"synthetic query number {i} about topic {i % 17}" for i in range(300)], "synthetic"
    with qrels.open() as f:
        next(f)
        ids = {line.split("\t")[0] for line in f if line.strip()}
    with queries.open() as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r["text"] for r in rows if r["_id"] in ids], "scifact-test"


def zipf_probs(n_items: int, s: float) -> np.ndarray:
    """p_r = r^-s / Σ_j j^-s for ranks r = 1..n_items."""
    w = np.arange(1, n_items + 1, dtype=np.float64) ** -s
    return np.asarray(w / w.sum())


def expected_hit_rate(p: np.ndarray, n: int) -> float:
    """1 - E[distinct]/n for an unbounded cache, E[distinct] = Σ_i 1 - (1 - p_i)^n."""
    return float(1.0 - np.sum(1.0 - (1.0 - p) ** n) / n)


def make_payload(query: str, k: int = 10) -> bytes:
    """A realistic search response: k hits with ~320 characters of text each (~5 KB JSON)."""
    words = query.split() or ["empty"]
    hits = [
        {
            "doc_id": str(zlib.crc32(f"{query}|{i}".encode())),
            "chunk_id": f"{zlib.crc32(f'{query}|{i}'.encode())}#{i % 3}",
            "text": " ".join(words[j % len(words)] for j in range(i, i + 60))[:320],
            "score": 1.0 / (i + 1),
            "scores": {"dense": 0.8 - 0.01 * i, "sparse": 12.5 - i, "fused": 1.0 / (61 + i)},
            "ranks": {"dense": i + 1, "sparse": i + 2},
        }
        for i in range(k)
    ]
    body = {"query": query, "hits": hits, "coverage": 1.0, "timings_ms": {"search": 10.0}}
    return json.dumps(body).encode()


def simulated_compute(delay_s: float) -> Callable[[str], bytes]:
    """A stand-in for search: sleep ``delay_s``, then return :func:`make_payload`."""

    def compute(query: str) -> bytes:
        time.sleep(delay_s)
        return make_payload(query)

    return compute


def serve(cache: CacheBackend | None, query: str, compute: Callable[[str], bytes]) -> bool:
    """One request through the cache; returns whether it was a hit."""
    key = result_key("bench:results", query, PARAMS, 1)
    cached = cache.get(key) if cache is not None else None
    if cached is not None:
        json.loads(cached)
        return True
    value = compute(query)
    if cache is not None:
        cache.set(key, value)
    json.loads(value)
    return False


def run_stream(
    cache: CacheBackend | None,
    stream: Sequence[str],
    compute: Callable[[str], bytes],
    on_request: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Serve every query of ``stream``; latency and hit rate, failures counted, never raised."""
    lat: dict[bool, list[float]] = {True: [], False: []}
    failed = 0
    for i, query in enumerate(stream):
        if on_request is not None:
            on_request(i)
        t0 = time.perf_counter()
        try:
            hit = serve(cache, query, compute)
        except Exception:  # the benchmark counts what a service would have failed
            failed += 1
            continue
        lat[hit].append(time.perf_counter() - t0)
    return summarise(lat[True], lat[False], failed)


def summarise(hits: list[float], misses: list[float], failed: int) -> dict[str, Any]:
    def pct(xs: list[float]) -> dict[str, float | int]:
        if not xs:
            return {"n": 0}
        ms = np.asarray(xs) * 1e3
        return {
            "n": len(xs),
            "p50": float(np.percentile(ms, 50)),
            "p99": float(np.percentile(ms, 99)),
            "mean": float(ms.mean()),
        }

    n = len(hits) + len(misses)
    return {
        "requests": n + failed,
        "failed": failed,
        "hit_rate": len(hits) / n if n else 0.0,
        "hit_ms": pct(hits),
        "miss_ms": pct(misses),
        "all_ms": pct(hits + misses),
    }


class RedisProcess:
    """A redis-server started by scripts/redis-server.sh (stopped by :meth:`stop`)."""

    def __init__(self, port: int | None = None) -> None:
        args = [str(SCRIPT), "start"] + ([str(port)] if port else [])
        out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=300)
        port_s, pid_s, self.dir = out.stdout.split()
        self.port, self.pid = int(port_s), int(pid_s)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)

    def stop(self) -> None:
        subprocess.run([str(SCRIPT), "stop", str(self.pid), self.dir], check=False)


def bench_backend(
    name: str, cache: CacheBackend, stream: Sequence[str], compute: Callable[[str], bytes]
) -> dict[str, Any]:
    """The stream through ``cache`` (cleared first), with its counters and the p50 goal."""
    cache.clear()
    res = run_stream(cache, stream, compute)
    res["stats"] = asdict(cache.stats())
    res["goal_p50_hit_ms"] = GOAL_P50_HIT_MS[name]
    res["goal_met"] = res["hit_ms"].get("p50", float("inf")) <= GOAL_P50_HIT_MS[name]
    cache.clear()
    return res


def bench_redis_kill(stream: Sequence[str], compute: Callable[[str], bytes]) -> dict[str, Any]:
    """SIGKILL our redis-server at request N/3, start a new one on its port at 2N/3."""
    servers = [RedisProcess()]
    cache = RedisCache(servers[0].url, retry_after_s=0.5)
    n = len(stream)

    def on_request(i: int) -> None:
        if i == n // 3:
            servers[0].kill()
        elif i == 2 * n // 3:
            servers.append(RedisProcess(servers[0].port))

    try:
        res = run_stream(cache, stream, compute, on_request)
    finally:
        for server in servers:
            server.stop()
        cache.close()
    res["killed_at"], res["restarted_at"] = n // 3, 2 * n // 3
    res["stats"] = asdict(cache.stats())
    return res


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=5000)
    p.add_argument("--zipf-s", type=float, default=1.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--delay-ms", type=float, default=10.0, help="simulated compute per miss")
    p.add_argument("--baseline-requests", type=int, default=500, help="no-cache requests")
    p.add_argument("--redis-url", default=None, help="use this Redis instead of starting one")
    p.add_argument("--no-kill", action="store_true", help="skip the kill-redis phase")
    p.add_argument("--quick", action="store_true", help="1000 requests, 2 ms compute")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.quick:
        args.requests, args.delay_ms, args.baseline_requests = 1000, 2.0, 200
    return args


def main(
    argv: Sequence[str] | None = None, compute: Callable[[str], bytes] | None = None
) -> dict[str, Any]:
    """Run every phase, write ``cache_zipf.json`` and ``cache_zipf.png``; return the report.

    Args:
        argv: command-line arguments (``None``: ``sys.argv[1:]``).
        compute: the work a miss does, ``query -> JSON bytes``; default: simulated search.
    """
    args = parse_args(argv)
    compute = compute or simulated_compute(args.delay_ms / 1e3)
    queries, source = load_queries()
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(queries))  # which query gets which popularity rank
    p = zipf_probs(len(queries), args.zipf_s)
    stream = [queries[order[r]] for r in rng.choice(len(queries), size=args.requests, p=p)]
    report: dict[str, Any] = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "workload": {
            "source": source,
            "n_queries": len(queries),
            "distinct_requested": len(set(stream)),
            "expected_hit_rate": expected_hit_rate(p, args.requests),
            "payload_bytes_mean": float(np.mean([len(make_payload(q)) for q in queries])),
        },
        "backends": {"none": run_stream(None, stream[: args.baseline_requests], compute)},
    }
    report["backends"]["memory"] = bench_backend(
        "memory", MemoryCache(max_bytes=64 << 20), stream, compute
    )
    report["backends"]["redis"] = bench_redis(args, stream, compute)
    if not args.no_kill and args.redis_url is None:
        report["redis_kill"] = bench_redis_kill(stream, compute)
    base = report["backends"]["none"]["all_ms"]["mean"]
    for res in report["backends"].values():
        if "all_ms" in res:
            res["mean_speedup_vs_none"] = base / res["all_ms"]["mean"]
    write(report, args.out)
    return report


def bench_redis(
    args: argparse.Namespace, stream: Sequence[str], compute: Callable[[str], bytes]
) -> dict[str, Any]:
    """The stream through Redis: ``--redis-url`` or a server we start (and stop)."""
    server = None
    try:
        url = args.redis_url
        if url is None:
            server = RedisProcess()
            url = server.url
        cache = RedisCache(url, prefix="ragfleet-bench:", socket_timeout_s=1.0)
        return bench_backend("redis", cache, stream, compute)
    except (subprocess.SubprocessError, OSError) as e:
        return {"skipped": f"no redis-server: {e}"}
    finally:
        if server is not None:
            server.stop()


def write(report: dict[str, Any], out: Path) -> None:
    """``cache_zipf.json`` and a two-panel plot: latency percentiles and hit rates."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "cache_zipf.json").write_text(json.dumps(report, indent=2) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = {k: v for k, v in report["backends"].items() if "all_ms" in v}
    fig, (ax_lat, ax_hit) = plt.subplots(1, 2, figsize=(11, 4))
    series = [("hit_ms", "p50"), ("hit_ms", "p99"), ("miss_ms", "p50"), ("miss_ms", "p99")]
    x = np.arange(len(measured))
    for j, (kind, q) in enumerate(series):
        ys = [v[kind].get(q, np.nan) for v in measured.values()]
        ax_lat.bar(x + (j - 1.5) * 0.2, ys, 0.2, label=f"{kind[:-3]} {q}")
    ax_lat.set_xticks(x, list(measured))
    ax_lat.set_yscale("log")
    ax_lat.set_ylabel("latency per request (ms)")
    ax_lat.axhline(1.0, color="grey", ls=":", lw=1)
    ax_lat.legend(fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    cfg, wl = report["config"], report["workload"]
    ax_lat.set_title(
        f"Zipf s={cfg['zipf_s']}, {cfg['requests']} requests, {wl['n_queries']} queries"
    )
    rates = {k: v["hit_rate"] for k, v in measured.items()}
    if "redis_kill" in report:
        rates["redis (killed)"] = report["redis_kill"]["hit_rate"]
        ax_hit.annotate(
            f"failed requests: {report['redis_kill']['failed']}",
            (len(rates) - 1, rates["redis (killed)"]),
            ha="center",
            va="bottom",
        )
    ax_hit.bar(list(rates), list(rates.values()), color="tab:green")
    ax_hit.axhline(report["workload"]["expected_hit_rate"], color="k", ls="--", label="expected")
    ax_hit.set_ylim(0, 1)
    ax_hit.set_ylabel("hit rate")
    ax_hit.legend()
    fig.tight_layout()
    fig.savefig(out / "cache_zipf.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    main(sys.argv[1:])
