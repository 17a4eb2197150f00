"""Streaming ingest from a Redis Streams change feed: freshness, query latency during
ingest, a 10x burst, and SIGKILLed workers.

    python -m benchmarks.streaming [--docs 1200] [--seconds 20] [--kills 20]

1. Bulk throughput: ``Collection.upsert`` of the first documents of the demo corpus
   (SQuAD dev paragraphs) — the baseline, measured in this run.
2. Steady: entries published at half that rate for ``--seconds``, consumed by a FeedWorker
   (2 threads) on the same collection while a query thread searches; freshness is publish →
   the first sparse query that finds the document's unique marker (every 5th document).
   Query p50/p99 during ingest against the same queries idle.
3. Burst: 10x the steady rate for a quarter of the time; lag (entries) sampled every
   100 ms, drain time, peak RSS of this process.
4. Kills: ``tests/reliability/test_feed_kill.py`` with RAGFLEET_FEED_KILLS=--kills (a real
   ``ragfleet ingest-worker`` SIGKILLed at random moments; 0 lost, 0 duplicated, equal to a
   clean build).

Writes benchmarks/results/streaming.json and streaming.png.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import REPO, RESULTS, write_json
from benchmarks.cache_zipf import RedisProcess
from ragfleet.collection import Collection
from ragfleet.config import CollectionConfig, ShardingConfig
from ragfleet.embed.registry import load_encoder
from ragfleet.feed import FeedWorker, StreamAddress, WorkerConfig, feed_status, publish
from ragfleet.feed.ledger import Ledger
from ragfleet.types import Document

QUERIES = ["who won the super bowl", "when did the war end", "what is the capital city",
           "how many people live there", "which river flows through"]  # fmt: skip


def corpus(n: int, tag: str) -> list[Document]:
    out = []
    with (REPO / "data" / "demo" / "corpus.jsonl").open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            d = json.loads(line)
            out.append(Document(f"{tag}{i}", f"{d['text']} zq{tag}{i}x", d.get("title", "")))
            if len(out) == n:
                break
    return out


def pct(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    a = np.asarray(values)
    p50, p99 = (float(np.percentile(a, q)) for q in (50, 99))
    return {"n": len(values), "p50": p50, "p99": p99}


def query_latencies(col: Collection, stop: threading.Event, out: list[float]) -> None:
    i = 0
    while not stop.is_set():
        t = time.perf_counter()
        col.search(QUERIES[i % len(QUERIES)], k=10)
        out.append((time.perf_counter() - t) * 1000)
        i += 1
        time.sleep(0.02)


def publish_at(address: StreamAddress, docs: list[Document], rate: float,
               sent: dict[str, float]) -> None:  # fmt: skip
    t0 = time.monotonic()
    for i, d in enumerate(docs):
        wait = t0 + i / rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        sent[d.doc_id] = time.time()
        publish(address, [d])


def watch_fresh(col: Collection, docs: list[Document], sent: dict[str, float],
                done: threading.Event, out: list[float]) -> None:  # fmt: skip
    for d in docs[::5]:
        while d.doc_id not in sent and not done.is_set():
            time.sleep(0.002)
        marker = f"zq{d.doc_id}x"
        while True:
            hits = col.search(marker, k=1, mode="sparse").hits
            if hits and hits[0].doc_id == d.doc_id:
                out.append((time.time() - sent[d.doc_id]) * 1000)
                break
            if done.is_set() and time.time() - sent.get(d.doc_id, time.time()) > 120:
                break
            time.sleep(0.005)


def phase(col: Collection, address: StreamAddress, docs: list[Document], rate: float,
          sample_lag: bool = False) -> dict[str, Any]:  # fmt: skip
    sent: dict[str, float] = {}
    stop, done = threading.Event(), threading.Event()
    lat: list[float] = []
    fresh: list[float] = []
    lag: list[tuple[float, int]] = []
    q = threading.Thread(target=query_latencies, args=(col, stop, lat))
    w = threading.Thread(target=watch_fresh, args=(col, docs, sent, done, fresh))
    q.start()
    w.start()
    t0 = time.monotonic()
    p = threading.Thread(target=publish_at, args=(address, docs, rate, sent))
    p.start()
    client = address.client()
    while p.is_alive() or _backlog(address):
        if sample_lag:
            lag.append((time.monotonic() - t0, feed_status(address, "g").lag_entries))
        time.sleep(0.1)
    drained_s = time.monotonic() - t0
    done.set()
    w.join()
    stop.set()
    q.join()
    client.close()
    return {"rate_docs_per_s": rate, "docs": len(docs), "freshness_ms": pct(fresh),
            "query_ms": pct(lat), "drained_s": drained_s, "lag": lag,
            "peak_lag": max((x for _, x in lag), default=None)}  # fmt: skip


def _backlog(address: StreamAddress) -> int:
    st = feed_status(address, "g")
    return st.lag_entries + st.pending


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=1200)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--kills", type=int, default=20)
    args = ap.parse_args()
    encoder = load_encoder("minilm-int8")
    redis = RedisProcess()
    report: dict[str, Any] = {"machine": os.uname().machine, "cpus": os.cpu_count()}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = CollectionConfig(sharding=ShardingConfig(n_shards=2))
            col = Collection.create(Path(tmp) / "c", config, encoder=encoder)
            base = corpus(args.docs, "b")
            t = time.perf_counter()
            col.upsert(base)
            bulk = len(base) / (time.perf_counter() - t)
            report["bulk_docs_per_s"] = bulk
            idle: list[float] = []
            stop = threading.Event()
            th = threading.Thread(target=query_latencies, args=(col, stop, idle))
            th.start()
            time.sleep(5)
            stop.set()
            th.join()
            report["query_idle_ms"] = pct(idle)
            address = StreamAddress.parse(f"{redis.url}?stream=bench")
            worker = FeedWorker(col, address, WorkerConfig("g", workers=2),
                                Ledger(Path(tmp) / "ledger.sqlite"))  # fmt: skip
            worker.start()
            steady_rate = bulk / 2
            n_steady = int(steady_rate * args.seconds)
            report["steady"] = phase(col, address, corpus(n_steady, "s"), steady_rate)
            burst = corpus(int(steady_rate * args.seconds / 4 * 10), "u")
            report["burst"] = phase(col, address, burst, steady_rate * 10, sample_lag=True)
            report["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            report["worker_errors"] = worker.errors
            worker.stop()
            col.close()
    finally:
        redis.stop()
    env = {**os.environ, "RAGFLEET_FEED_KILLS": str(args.kills), "HF_HUB_OFFLINE": "1"}
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/reliability/test_feed_kill.py"], cwd=REPO, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    report["kills"] = {"sigkills": args.kills, "passed": done.returncode == 0,
                       "seconds": time.perf_counter() - t, "tail": done.stdout[-300:]}  # fmt: skip
    path = write_json("streaming", report)
    plot(report, RESULTS / "streaming.png")
    print(json.dumps({k: v for k, v in report.items() if k not in ("steady", "burst")}, indent=1))
    for k in ("steady", "burst"):
        print(k, {x: y for x, y in report[k].items() if x != "lag"})
    print(path)


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    lag = report["burst"]["lag"]
    ax[0].plot([t for t, _ in lag], [x for _, x in lag])
    ax[0].set(xlabel="seconds", ylabel="lag (entries)", title="10x burst: lag grows, drains")
    names = ["idle", "steady ingest", "burst"]
    vals = [report["query_idle_ms"], report["steady"]["query_ms"], report["burst"]["query_ms"]]
    ax[1].bar([f"{n}\np50" for n in names], [v.get("p50", 0) for v in vals])
    ax[1].bar([f"{n}\np99" for n in names], [v.get("p99", 0) for v in vals])
    ax[1].set(ylabel="query ms", title="hybrid k=10 query latency")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
