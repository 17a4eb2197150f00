"""HTTP service under load on SciFact: saturation QPS and p99 of /search (hybrid, k=10) and
/ask; HTTP overhead against in-process calls; micro-batching on vs off at concurrency 16;
overload at 2× saturation (admitted requests keep their p99, the rest get 429, 0 errors).

Overload is measured on one server whose admission limit is the knee of the /search sweep
(the fewest clients reaching 90 % of the best QPS): first with that many clients, then with
twice as many, back to back and twice as long as a sweep level, after 2 s of unrecorded
warm-up, so the two p99s compare like with like (same process, same box state).

The server runs as its own process (uvicorn, one worker) on loopback; the load generator
(closed loop, ``ragfleet.eval.load``) runs in this process. Writes
benchmarks/results/http_load.json and http_load.png.

    python -m benchmarks.http_load            # ~1000 SciFact docs, 5 s per level
    python -m benchmarks.http_load --quick    # 300 docs, 2 s per level
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e._server import free_port

from benchmarks._common import DATA, RESULTS, write_json
from ragfleet.eval.load import LoadConfig, LoadRun, run_load
from ragfleet.serve.factory import ENV, spec_json
from ragfleet.serve.settings import ServeSettings


def build(root: Path, n_docs: int) -> tuple[Path, list[str]]:
    """SciFact's first ``n_docs`` documents as a 2-shard collection under ``root`` (reused
    when it is already there) and every SciFact query."""
    from ragfleet.collection import Collection
    from ragfleet.config import CollectionConfig, ShardingConfig
    from ragfleet.embed.registry import load_encoder
    from ragfleet.ingest.beir import load_beir_corpus, load_beir_queries

    folder = DATA / "scifact"
    docs = [d for _, d in zip(range(n_docs), load_beir_corpus(folder), strict=False)]
    path = root / f"scifact-{n_docs}"
    if path.exists():
        return path, list(load_beir_queries(folder).values())
    config = CollectionConfig(sharding=ShardingConfig(n_shards=2))
    Collection.build(path, docs, config, encoder=load_encoder("minilm-int8")).close()
    return path, list(load_beir_queries(folder).values())


@contextmanager
def server(col: Path, keys: Path, settings: ServeSettings) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, ENV: spec_json([col], keys, settings), "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "ragfleet.serve.factory:from_env",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the server did not become ready in 60 s")
        yield f"{url}/v1/collections/{col.name}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def load(url: str, key: str, queries: list[str], c: int, seconds: float, endpoint: str) -> LoadRun:
    cfg = LoadConfig(url, c, seconds, endpoint, key, k=10, mode="hybrid", budget_ms=1000)  # type: ignore[arg-type]
    run = asyncio.run(run_load(cfg, queries))
    lat = run.latency() or {"p50": 0, "p99": 0}
    print(f"  {endpoint:<6} C={c:<3} qps={run.qps:7.1f} p50={lat['p50']:7.1f} "
          f"p99={lat['p99']:7.1f} 429={run.shed} errors={run.errors}", flush=True)  # fmt: skip
    return run


def in_process(col_path: Path, queries: list[str], seconds: float) -> dict[str, Any]:
    """Sequential ``Collection.search`` and ``Pipeline.ask``: per-call latency and QPS."""
    from ragfleet.collection import Collection
    from ragfleet.generate.extractive import Extractive
    from ragfleet.pipeline import Pipeline

    out: dict[str, Any] = {}
    with Collection.open(col_path) as col:
        pipe = Pipeline(col, generator=Extractive())  # lexical answers, as the server's default
        calls = {"search": lambda q: col.search(q, k=10, mode="hybrid"),
                 "ask": lambda q: pipe.ask(q, budget_ms=1000)}  # fmt: skip
        for name, fn in calls.items():
            ms: list[float] = []
            stop = time.perf_counter() + seconds
            while time.perf_counter() < stop:
                t = time.perf_counter()
                fn(queries[len(ms) % len(queries)])
                ms.append((time.perf_counter() - t) * 1e3)
            out[name] = {"p50_ms": float(np.percentile(ms, 50)), "qps": len(ms) / seconds}
    return out


def sweep(
    url: str, key: str, queries: list[str], levels: list[int], s: float, ep: str
) -> list[LoadRun]:
    return [load(url, key, queries, c, s, ep) for c in levels]


def saturation(runs: list[LoadRun]) -> LoadRun:
    return max(runs, key=lambda r: r.qps)


def knee(runs: list[LoadRun], share: float = 0.9) -> int:
    """The smallest concurrency whose QPS is within ``share`` of the best: past it, more
    requests in flight only queue. The admission limit for the overload test."""
    best = saturation(runs).qps
    return min(r.config.concurrency for r in runs if r.qps >= share * best)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--levels", default="1,2,4,8,16")
    ap.add_argument("--quick", action="store_true", help="300 docs, 2 s per level")
    ap.add_argument("--workdir", type=Path, help="keep the built collection here, reuse it")
    args = ap.parse_args()
    if args.quick:
        args.docs, args.seconds = 300, 2.0
    levels = [int(x) for x in args.levels.split(",")]
    from ragfleet.serve.auth import KeyStore, new_key

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        col, queries = build(args.workdir or root, args.docs)
        key, record = new_key("bench", ("read",))
        KeyStore([record]).save(root / "keys.json")
        keys = root / "keys.json"
        report: dict[str, Any] = {"docs": args.docs, "seconds_per_level": args.seconds,
                                  "cpu_count": os.cpu_count()}  # fmt: skip
        report["in_process"] = local = in_process(col, queries, args.seconds)
        wide = ServeSettings(rate_per_s=0, max_inflight=256)
        print("batching on, admission off", flush=True)
        with server(col, keys, wide) as url:
            runs = {
                ep: sweep(url, key, queries, levels, args.seconds, ep) for ep in ("search", "ask")
            }
        print("batching off", flush=True)
        with server(
            col, keys, ServeSettings(rate_per_s=0, max_inflight=256, batching=False)
        ) as url:
            unbatched = load(url, key, queries, 16, args.seconds, "search")
        cap = knee(runs["search"])
        long = 2 * args.seconds
        print(f"overload: {cap} then 2x{cap} clients, max_inflight={cap}, {long} s", flush=True)
        with server(col, keys, ServeSettings(rate_per_s=0, max_inflight=cap)) as url:
            load(url, key, queries, cap, 2.0, "search")  # warm the fresh server; not recorded
            at_cap = load(url, key, queries, cap, long, "search")
            over = load(url, key, queries, 2 * cap, long, "search")
    batched16 = next(r for r in runs["search"] if r.config.concurrency == 16)
    one = {ep: next(r for r in runs[ep] if r.config.concurrency == 1) for ep in runs}
    report["sweeps"] = {ep: [r.to_dict() for r in rs] for ep, rs in runs.items()}
    report["saturation"] = {
        ep: {"qps": saturation(rs).qps, "concurrency": saturation(rs).config.concurrency,
             "p99_ms": saturation(rs).latency()["p99"]}  # type: ignore[index]
        for ep, rs in runs.items()
    }  # fmt: skip
    report["http_overhead"] = {
        ep: {"http_p50_ms": one[ep].latency()["p50"], "in_process_p50_ms": local[ep]["p50_ms"],  # type: ignore[index]
             "latency_ratio": one[ep].latency()["p50"] / local[ep]["p50_ms"],  # type: ignore[index]
             "qps_ratio_c1": one[ep].qps / local[ep]["qps"]}
        for ep in runs
    }  # fmt: skip
    report["batching_c16"] = {
        "on_qps": batched16.qps, "off_qps": unbatched.qps, "ratio": batched16.qps / unbatched.qps,
        "on": batched16.to_dict(), "off": unbatched.to_dict(),
    }  # fmt: skip
    report["overload_2x"] = {
        "concurrency": 2 * cap, "max_inflight": cap, "seconds": long,
        "at_cap": at_cap.to_dict(), "run": over.to_dict(),
        "admitted_p99_ms": over.latency()["p99"], "at_cap_p99_ms": at_cap.latency()["p99"],  # type: ignore[index]
        "p99_ratio": over.latency()["p99"] / at_cap.latency()["p99"],  # type: ignore[index]
        "shed_429": over.shed, "errors": over.errors + at_cap.errors,
        "admitted_qps": over.qps, "at_cap_qps": at_cap.qps,
    }  # fmt: skip
    report["settings"] = asdict(wide)
    path = write_json("http_load", report)
    plot(runs, over, RESULTS / "http_load.png")
    print(json.dumps({k: report[k] for k in ("saturation", "http_overhead")}, indent=1))
    ov = report["overload_2x"]
    print(f"batching ratio {report['batching_c16']['ratio']:.2f}; overload p99 ratio "
          f"{ov['p99_ratio']:.2f}, 429s {over.shed}, errors {over.errors}")  # fmt: skip
    print(f"wrote {path}")


def plot(runs: dict[str, list[LoadRun]], over: LoadRun, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, (ep, rs) in zip(axes, runs.items(), strict=True):
        for p in ("p50", "p99"):
            ax.plot([r.qps for r in rs], [r.latency()[p] for r in rs], marker="o", label=p)  # type: ignore[index]
        for r in rs:
            ax.annotate(f"C={r.config.concurrency}", (r.qps, r.latency()["p99"]), fontsize=7)  # type: ignore[index]
        if ep == "search":
            ax.scatter([over.qps], [over.latency()["p99"]], marker="x", color="k", zorder=5,  # type: ignore[index]
                       label=f"2x overload admitted p99 ({over.shed} shed)")  # fmt: skip
        ax.set(xlabel="throughput (req/s)", ylabel="latency (ms)", title=f"/{ep} (closed loop)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
