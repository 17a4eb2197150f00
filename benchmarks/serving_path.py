"""The serving path at the cost of its parts (issue 19), side by side in one run on SciFact:

1. **One client.** ``Collection.search`` in this process and ``POST /search`` to a
   read-only server (its own process, uvicorn, one worker) over the same collection, calls
   interleaved one by one (hybrid and sparse, k=10), so both see the same box. The HTTP time
   is split into its parts: the pipeline (the response's ``timings_ms.total``), the service
   around it (the server's ``ragfleet_request_seconds`` minus the pipeline: authentication,
   admission, FastAPI's body validation, the hop to a worker thread, JSON) and the rest (the
   client library, the socket, uvicorn's HTTP parsing: client time minus server time).
2. **Saturation with the same worker threads.** ``C`` threads calling ``Collection.search``
   closed-loop against ``C`` HTTP clients (the server runs each search on a worker thread).
3. **Open loop** (:mod:`ragfleet.eval.openloop`): Poisson arrivals from a quarter of the
   closed-loop saturation to 1.5× past it, for ``/search`` and ``/ask``; latency from each
   request's intended send time; the knee and the admission limit Little's law gives.
4. **Micro-batching under open load**: greedy (the default), a 2 ms wait, and off, at 0.8×
   and 1.2× the ``/search`` saturation rate.

Writes benchmarks/results/serving_path.json and serving_path.png.

    python -m benchmarks.serving_path            # 1000 docs, 5 s per level
    python -m benchmarks.serving_path --quick    # 300 docs, 2 s per level
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import RESULTS, write_json
from benchmarks.http_load import build, server
from ragfleet.eval.load import LoadConfig, run_load
from ragfleet.eval.openloop import OpenLoopConfig, OpenLoopRun, knee, plot_open_loop, run_open_loop
from ragfleet.serve.settings import ServeSettings

MODES = ("hybrid", "sparse")
FRACTIONS = (0.25, 0.5, 0.7, 0.85, 1.0, 1.2, 1.5)


def _request_seconds(base: str, key: str) -> tuple[float, float]:
    """Sum and count of the server's ``ragfleet_request_seconds`` for ``/search``."""
    text = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {key}"}).text
    total = count = 0.0
    for line in text.splitlines():
        if '/search"' in line and line.startswith("ragfleet_request_seconds_sum"):
            total += float(line.split()[-1])
        elif '/search"' in line and line.startswith("ragfleet_request_seconds_count"):
            count += float(line.split()[-1])
    return total, count


class LeanClient:
    """One keep-alive connection through the standard library's ``http.client``: what the
    service costs a client without httpx's own ~0.6 ms a request (measured apart, not a
    replacement for :mod:`ragfleet.client`)."""

    def __init__(self, url: str, key: str) -> None:
        parts = urlsplit(url)
        self._path = parts.path
        self._conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
        self._headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def search(self, body: dict[str, Any]) -> dict[str, Any]:
        self._conn.request("POST", f"{self._path}/search", json.dumps(body), self._headers)
        res = self._conn.getresponse()
        out: dict[str, Any] = json.loads(res.read())
        if res.status != 200:
            raise RuntimeError(f"/search answered {res.status}: {out}")
        return out

    def close(self) -> None:
        self._conn.close()


def one_client(col: Any, url: str, key: str, queries: list[str], n: int) -> dict[str, Any]:
    """Interleaved in-process, HTTP (httpx) and HTTP (``http.client``) searches, and where
    the httpx time goes."""
    base = url.split("/v1/")[0]
    out: dict[str, Any] = {}
    lean = LeanClient(url, key)
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        for mode in MODES:
            body = lambda q, m=mode: {"query": q, "k": 10, "mode": m}  # noqa: E731
            for q in queries[:20]:  # warm every side
                col.search(q, k=10, mode=mode)
                client.post(f"{url}/search", json=body(q))
                lean.search(body(q))
            local, remote, pipeline, bare = [], [], [], []
            s0, c0 = _request_seconds(base, key)
            for i in range(n):
                q = queries[i % len(queries)]
                t = time.perf_counter()
                col.search(q, k=10, mode=mode)
                local.append((time.perf_counter() - t) * 1e3)
                t = time.perf_counter()
                res = client.post(f"{url}/search", json=body(q))
                remote.append((time.perf_counter() - t) * 1e3)
                pipeline.append(res.json()["timings_ms"]["total"])
                t = time.perf_counter()
                lean.search(body(q))
                bare.append((time.perf_counter() - t) * 1e3)
            s1, c1 = _request_seconds(base, key)  # over both clients' requests
            served_ms = (s1 - s0) / (c1 - c0) * 1e3
            p50 = lambda xs: float(np.percentile(xs, 50))  # noqa: E731
            out[mode] = {
                "in_process_p50_ms": p50(local), "http_p50_ms": p50(remote),
                "http_minus_in_process_p50_ms": p50(remote) - p50(local),
                "in_process_p99_ms": float(np.percentile(local, 99)),
                "http_p99_ms": float(np.percentile(remote, 99)),
                "http_lean_p50_ms": p50(bare),
                "http_lean_minus_in_process_p50_ms": p50(bare) - p50(local),
                "http_lean_p99_ms": float(np.percentile(bare, 99)),
                "parts_mean_ms": {
                    "pipeline": float(np.mean(pipeline)),
                    "service_around_pipeline": served_ms - float(np.mean(pipeline)),
                    "client_socket_and_http_parsing": float(np.mean(remote)) - served_ms,
                    "in_process_search": float(np.mean(local)),
                },
            }  # fmt: skip
            print(f"  {mode}: in-process p50 {p50(local):.2f} ms, HTTP {p50(remote):.2f} ms "
                  f"(+{p50(remote) - p50(local):.2f}), http.client {p50(bare):.2f} ms "
                  f"(+{p50(bare) - p50(local):.2f}); parts {out[mode]['parts_mean_ms']}",
                  flush=True)  # fmt: skip
    lean.close()
    return out


def threads_qps(fn: Callable[[str], Any], queries: list[str], c: int, seconds: float) -> float:
    """Calls per second of ``c`` threads each calling ``fn`` closed-loop for ``seconds``."""
    done = [0] * c
    stop = time.perf_counter() + seconds

    def worker(j: int) -> None:
        i = j
        while time.perf_counter() < stop:
            fn(queries[i % len(queries)])
            i += c
            done[j] += 1

    threads = [threading.Thread(target=worker, args=(j,)) for j in range(c)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.perf_counter() - t0)


def saturation(
    col: Any, url: str, key: str, queries: list[str], levels: list[int], seconds: float
) -> dict[str, Any]:
    rows = []
    for c in levels:
        local = threads_qps(lambda q: col.search(q, k=10, mode="hybrid"), queries, c, seconds)
        cfg = LoadConfig(url, c, seconds, "search", key, k=10, mode="hybrid")
        http = asyncio.run(run_load(cfg, queries))
        rows.append({"threads": c, "in_process_qps": local, "http_qps": http.qps,
                     "ratio": http.qps / local, "http_errors": http.errors})  # fmt: skip
        print(f"  C={c}: in-process {local:.1f} QPS, HTTP {http.qps:.1f} QPS "
              f"({http.qps / local:.2f}x)", flush=True)  # fmt: skip
    best = max(rows, key=lambda r: r["http_qps"])
    return {"levels": rows, "best": best}


def sweep(
    url: str, key: str, queries: list[str], endpoint: str, top: float, s: float
) -> list[OpenLoopRun]:
    """Open-loop runs at FRACTIONS of ``top`` requests/s."""
    runs = []
    for f in FRACTIONS:
        rate = max(1.0, round(top * f, 1))
        cfg = OpenLoopConfig(url, rate, s, endpoint, key, k=10, mode="hybrid", seed=int(f * 100))  # type: ignore[arg-type]
        run = asyncio.run(run_open_loop(cfg, queries))
        lat = run.latency() or {"p50": 0.0, "p99": 0.0}
        print(f"  /{endpoint} rate {rate:7.1f}: served {run.throughput:7.1f}/s p50 "
              f"{lat['p50']:8.1f} p99 {lat['p99']:8.1f} ms, 429 {run.shed}, errors {run.errors}",
              flush=True)  # fmt: skip
        runs.append(run)
    return runs


def ask_qps(url: str, key: str, queries: list[str], seconds: float) -> float:
    cfg = LoadConfig(url, 8, seconds, "ask", key, budget_ms=1000)
    return asyncio.run(run_load(cfg, queries)).qps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--calls", type=int, default=300, help="one-client calls per mode")
    ap.add_argument("--levels", default="1,2,4,8")
    ap.add_argument("--quick", action="store_true", help="300 docs, 2 s per level")
    ap.add_argument("--workdir", type=Path, help="keep the built collection here, reuse it")
    args = ap.parse_args()
    if args.quick:
        args.docs, args.seconds, args.calls = 300, 2.0, 150
    from ragfleet.collection import Collection
    from ragfleet.serve.auth import KeyStore, new_key

    report: dict[str, Any] = {"docs": args.docs, "seconds_per_level": args.seconds,
                              "cpu_count": os.cpu_count()}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path, queries = build(args.workdir or root, args.docs)
        key, record = new_key("bench", ("read", "admin"))
        KeyStore([record]).save(root / "keys.json")
        keys = root / "keys.json"
        settings = ServeSettings(rate_per_s=0, max_inflight=256, read_only=True)
        report["settings"] = asdict(settings)
        with Collection.open(path, read_only=True) as col, server(path, keys, settings) as url:
            print("one client, interleaved", flush=True)
            report["one_client"] = one_client(col, url, key, queries, args.calls)
            print("saturation with the same worker threads", flush=True)
            levels = [int(x) for x in args.levels.split(",")]
            report["saturation"] = sat = saturation(col, url, key, queries, levels, args.seconds)
            top = sat["best"]["http_qps"]
            print(f"open loop around {top:.1f} QPS", flush=True)
            curves = {"search": sweep(url, key, queries, "search", top, args.seconds)}
            ask_top = ask_qps(url, key, queries, args.seconds)
            curves["ask"] = sweep(url, key, queries, "ask", ask_top, args.seconds)
        knees = {ep: knee(runs) for ep, runs in curves.items()}
        report["open_loop"] = {
            ep: {"closed_loop_saturation_qps": top if ep == "search" else ask_top,
                 "runs": [r.to_dict() for r in runs],
                 "knee": knees[ep].to_dict() if knees[ep] else None}  # type: ignore[union-attr]
            for ep, runs in curves.items()
        }  # fmt: skip
        print("micro-batching under open load", flush=True)
        report["batching"] = batching(path, keys, key, queries, top, args.seconds)
    path_json = write_json("serving_path", report)
    plot_open_loop(curves, RESULTS / "serving_path.png", knees)
    for ep, k in knees.items():
        print(f"/{ep} knee: {k.to_dict() if k else None}")
    print(f"wrote {path_json}")


def batching(
    path: Path, keys: Path, key: str, queries: list[str], top: float, s: float
) -> dict[str, Any]:
    """Open-loop /search at 0.8x and 1.2x ``top`` on three servers: greedy batching, a 2 ms
    wait for company, no batching."""
    out: dict[str, Any] = {}
    variants: dict[str, dict[str, Any]] = {
        "greedy": {"batching": True, "batch_wait_ms": 0.0},
        "wait_2ms": {"batching": True, "batch_wait_ms": 2.0},
        "off": {"batching": False},
    }
    for name, kw in variants.items():
        settings = ServeSettings(rate_per_s=0, max_inflight=256, read_only=True, **kw)
        with server(path, keys, settings) as url:
            rows = {}
            for f in (0.8, 1.2):
                cfg = OpenLoopConfig(url, round(top * f, 1), s, "search", key, mode="hybrid")
                run = asyncio.run(run_open_loop(cfg, queries))
                rows[f"{f}x"] = run.to_dict()
                lat = run.latency() or {"p50": 0.0, "p99": 0.0}
                print(f"  {name:<8} {f}x: served {run.throughput:6.1f}/s p50 {lat['p50']:7.1f} "
                      f"p99 {lat['p99']:8.1f} ms", flush=True)  # fmt: skip
            out[name] = rows
    return out


if __name__ == "__main__":
    main()
