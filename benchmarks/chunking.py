"""Chunking throughput on SciFact: how close ``chunk_many`` gets to bare tokenization.

Every chunker cuts with the encoder's tokenizer, so tokenizing the corpus is the floor of
its cost. Measured in the same run, interleaved over ``--repeats`` rounds (median):

* ``tokenize``          — ``tokenizer.offsets`` over every document (the baseline);
* ``window|sentence|markdown`` — ``make_chunker(ChunkerConfig(kind, 256, 32)).chunk_many``;
* ``sentence_per_doc``  — the sentence chunker called one document at a time (``chunk``),
  i.e. without batching the tokenizer calls.

The headline is docs/s per chunker and ``ratio = tokenize s / chunker s`` (1.0: chunking
costs nothing beyond tokenizing).

    python -m benchmarks.chunking            # writes benchmarks/results/chunking.{json,png}
    python -m benchmarks.chunking --quick    # 1000 documents, one round
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ragfleet.config import ChunkerConfig, ChunkerKind
from ragfleet.ingest import Chunker, load_beir_corpus, make_chunker, minilm_tokenizer
from ragfleet.types import Document

RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "scifact"
KINDS: tuple[ChunkerKind, ...] = ("window", "sentence", "markdown")


def _timed(fn: Callable[[], int]) -> tuple[float, int]:
    t = time.perf_counter()
    n = fn()
    return time.perf_counter() - t, n


def _chunk_all(chunker: Chunker, docs: list[Document]) -> Callable[[], int]:
    return lambda: len(chunker.chunk_many(docs))


def runners(docs: list[Document], max_tokens: int, overlap: int) -> dict[str, Callable[[], int]]:
    """Each measured mode: a callable returning how many items it produced."""
    tok = minilm_tokenizer()
    texts = [d.text for d in docs]
    chunkers = {k: make_chunker(ChunkerConfig(k, max_tokens, overlap), tok) for k in KINDS}
    modes: dict[str, Callable[[], int]] = {"tokenize": lambda: sum(map(len, tok.offsets(texts)))}
    for kind, chunker in chunkers.items():
        modes[kind] = _chunk_all(chunker, docs)
    sentence = chunkers["sentence"]
    modes["sentence_per_doc"] = lambda: sum(len(sentence.chunk(d)) for d in docs)
    return modes


def measure(args: argparse.Namespace) -> dict[str, Any]:
    docs = list(load_beir_corpus(args.data))[: args.docs]
    modes = runners(docs, args.max_tokens, args.overlap)
    seconds: dict[str, list[float]] = {m: [] for m in modes}
    produced: dict[str, int] = {}
    for _ in range(args.repeats):
        for name, fn in modes.items():
            s, produced[name] = _timed(fn)
            seconds[name].append(s)
    med = {m: statistics.median(s) for m, s in seconds.items()}
    base = med["tokenize"]
    return {
        "config": {
            "docs": len(docs),
            "max_tokens": args.max_tokens,
            "overlap": args.overlap,
            "repeats": args.repeats,
            "tokens": produced["tokenize"],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_1min": os.getloadavg()[0],  # other work sharing the CPUs
        },
        "modes": {
            m: {
                "seconds": med[m],
                "docs_per_s": len(docs) / med[m],
                "chunks": None if m == "tokenize" else produced[m],
                "ratio_tokenize_over_mode": base / med[m],
            }
            for m in modes
        },
        "batching_speedup": med["sentence_per_doc"] / med["sentence"],
    }


def plot(result: dict[str, Any], path: Path) -> None:
    """Docs/s per mode, the tokenize-only baseline drawn as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = result["modes"]
    names = [m for m in modes if m != "tokenize"]
    fig, ax = plt.subplots(figsize=(8, 4))
    bars = ax.bar(names, [modes[m]["docs_per_s"] for m in names], color="C0")
    for bar, m in zip(bars, names, strict=True):
        ax.annotate(
            f"{modes[m]['ratio_tokenize_over_mode']:.2f}x",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
        )
    ax.axhline(modes["tokenize"]["docs_per_s"], color="C3", ls="--", label="tokenize only")
    cfg = result["config"]
    ax.set_ylabel("documents / s")
    ax.set_title(
        f"chunk_many on SciFact ({cfg['docs']} docs, {cfg['max_tokens']}:{cfg['overlap']})"
    )
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=DATA, help="a BEIR folder")
    parser.add_argument("--docs", type=int, default=None, help="first N documents (default all)")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--quick", action="store_true", help="1000 documents, one round")
    args = parser.parse_args(argv)
    if args.quick:
        args.docs, args.repeats = 1000, 1
    result = measure(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "chunking.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.out / "chunking.png")
    for mode, m in result["modes"].items():
        print(
            f"{mode:17s} {m['docs_per_s']:8.0f} docs/s  {m['seconds']:6.2f} s  "
            f"tokenize/mode {m['ratio_tokenize_over_mode']:.2f}"
        )
    print(f"batching speedup (per-doc / chunk_many, sentence) = {result['batching_speedup']:.2f}")
    return result


if __name__ == "__main__":
    main()
