"""The cost of durability: WAL append throughput with an fsync per batch vs without.

Each batch is a real :class:`WriteBatch` of 64 chunks (d=384 float32 vectors, ~400
characters of text each, ~125 KB encoded). Modes, measured in the same run on the same
file system, interleaved over ``--repeats`` rounds (median reported):

* ``fsync``    — ``append(..., fsync=True)``: every batch durable before it is acknowledged;
* ``group8``   — ``fsync=False`` and one ``sync()`` every 8 batches (group commit);
* ``no_fsync`` — ``fsync=False``: the baseline, survives a process crash but not power loss.

The headline is ``ratio = no_fsync batches/s ÷ fsync batches/s``. Run it on the disk the
shards live on (``--dir``): on tmpfs fsync is free and the ratio is meaningless.

    python -m benchmarks.wal_fsync            # writes benchmarks/results/wal_fsync.{json,png}
    python -m benchmarks.wal_fsync --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ragfleet.index.wal import WriteAheadLog
from ragfleet.index.writebatch import ChunkRecord, WriteBatch

RESULTS = Path(__file__).resolve().parent / "results"
MODES = ("fsync", "group8", "no_fsync")
GROUP = 8
WORDS = [
    "retrieval",
    "shard",
    "vector",
    "index",
    "durable",
    "write",
    "batch",
    "chunk",
    "query",
    "fusion",
    "rerank",
]


def make_batch(seq: int, chunks: int, d: int, rng: np.random.Generator) -> WriteBatch:
    """A batch of ``chunks`` chunks over 8 documents, with random unit vectors."""
    vectors = rng.standard_normal((chunks, d)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    per_doc = chunks // 8
    records = []
    for i in range(chunks):
        doc, n = f"doc-{seq}-{i // per_doc}", i % per_doc
        text = " ".join(rng.choice(WORDS, size=60))
        records.append(
            ChunkRecord(
                chunk_id=f"{doc}#{n}",
                doc_id=doc,
                n=n,
                text=text,
                title=f"Title of {doc}",
                metadata={"source": "bench", "n": n},
                content_hash=f"{seq:016x}{i:08x}",
                doc_hash=f"{seq:016x}",
                vector=vectors[i],
            )
        )
    return WriteBatch(seq=seq, upserts=tuple(records))


def run_mode(mode: str, payloads: list[bytes], root: Path) -> dict[str, float]:
    """Append every payload into a fresh WAL in ``mode``; throughput and latencies."""
    wal_dir = Path(tempfile.mkdtemp(prefix=f"{mode}-", dir=root))
    latencies = []
    with WriteAheadLog(wal_dir) as wal:
        t0 = time.perf_counter()
        for seq, payload in enumerate(payloads, start=1):
            t = time.perf_counter()
            wal.append(seq, payload, fsync=mode == "fsync")
            if mode == "group8" and seq % GROUP == 0:
                wal.sync()
            latencies.append(time.perf_counter() - t)
        if mode == "group8":
            wal.sync()
        total = time.perf_counter() - t0
    shutil.rmtree(wal_dir)
    n_bytes = sum(len(p) for p in payloads)
    return {
        "seconds": total,
        "batches_per_s": len(payloads) / total,
        "mb_per_s": n_bytes / total / 1e6,
        "p50_ms": float(np.percentile(latencies, 50) * 1e3),
        "p99_ms": float(np.percentile(latencies, 99) * 1e3),
    }


def median_runs(runs: list[dict[str, float]]) -> dict[str, float]:
    """Per-metric median over repeats."""
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed)
    batches = [make_batch(s, args.chunks, args.dim, rng) for s in range(1, args.batches + 1)]
    t = time.perf_counter()
    payloads = [b.encode() for b in batches]
    encode_s = time.perf_counter() - t
    root = Path(tempfile.mkdtemp(prefix="wal_fsync-", dir=args.dir))
    try:
        runs: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
        for _ in range(args.repeats):
            for mode in MODES:
                runs[mode].append(run_mode(mode, payloads, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    modes = {m: median_runs(r) for m, r in runs.items()}
    return {
        "config": {
            "batches": args.batches,
            "chunks_per_batch": args.chunks,
            "dim": args.dim,
            "repeats": args.repeats,
            "seed": args.seed,
            "batch_bytes_mean": statistics.mean(len(p) for p in payloads),
            "dir": str(Path(args.dir or tempfile.gettempdir()).resolve()),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "encode_batches_per_s": args.batches / encode_s,
        "modes": modes,
        "ratio_no_fsync_over_fsync": modes["no_fsync"]["batches_per_s"]
        / modes["fsync"]["batches_per_s"],
        "ratio_no_fsync_over_group8": modes["no_fsync"]["batches_per_s"]
        / modes["group8"]["batches_per_s"],
    }


def plot(result: dict[str, Any], path: Path) -> None:
    """Throughput bars (batches/s, MB/s annotated) and per-append latency percentiles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = result["modes"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    bars = ax1.bar(list(modes), [modes[m]["batches_per_s"] for m in modes], color="C0")
    for bar, m in zip(bars, modes, strict=True):
        ax1.annotate(
            f"{modes[m]['mb_per_s']:.0f} MB/s",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
        )
    ax1.set_ylabel("batches / s (64 chunks, d=384)")
    ax1.set_title(f"WAL append: no_fsync / fsync = {result['ratio_no_fsync_over_fsync']:.1f}x")
    x = np.arange(len(modes))
    ax2.bar(x - 0.2, [modes[m]["p50_ms"] for m in modes], 0.4, label="p50")
    ax2.bar(x + 0.2, [modes[m]["p99_ms"] for m in modes], 0.4, label="p99")
    ax2.set_xticks(x, list(modes))
    ax2.set_yscale("log")
    ax2.set_ylabel("append latency (ms, log)")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=64)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", default=None, help="where to write the logs (the shard disk)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--quick", action="store_true", help="30 batches, 1 repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.repeats = 30, 1
    result = measure(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "wal_fsync.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.out / "wal_fsync.png")
    for mode, m in result["modes"].items():
        print(
            f"{mode:9s} {m['batches_per_s']:8.1f} batches/s {m['mb_per_s']:8.1f} MB/s "
            f"p50 {m['p50_ms']:7.2f} ms  p99 {m['p99_ms']:7.2f} ms"
        )
    print(f"ratio no_fsync / fsync = {result['ratio_no_fsync_over_fsync']:.2f}")
    return result


if __name__ == "__main__":
    main()
