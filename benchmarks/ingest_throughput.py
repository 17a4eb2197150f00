"""Bulk ingest throughput: the whole ragfleet write path vs bare ``encode`` on the same texts.

The pipeline (load → chunk → embed in token-budget batches → WAL + fsync → FAISS, BM25,
SQLite → checkpoint) is timed end to end with ``Collection.build``; the baseline is the
bare encoder embedding exactly the chunk texts the pipeline embedded, in batches of 32,
in the same run. Goal: pipeline chunks/s ≥ 0.95 × bare encode (the pipeline adds ≤ 5%).

    python -m benchmarks.ingest_throughput [--n 1000] [--encoder minilm-int8]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import DATA, RESULTS, load_beir_texts, timed, write_json


def bare_encode(encoder: Any, texts: list[str], batch: int = 32) -> np.ndarray:
    """The baseline: the encoder alone, fixed batches, no chunking, no storage."""
    return np.concatenate(
        [encoder.encode(texts[i : i + batch]) for i in range(0, len(texts), batch)]
    )


def run(n: int, encoder_name: str, repeats: int) -> dict[str, Any]:
    from ragfleet.collection import Collection
    from ragfleet.collection.writer import embed_text
    from ragfleet.config import CollectionConfig, EncoderConfig
    from ragfleet.embed.registry import load_encoder
    from ragfleet.types import Document

    rows = load_beir_texts(DATA / "scifact", n)
    docs = [Document(r["_id"], r["text"], r["title"]) for r in rows]
    encoder = load_encoder(encoder_name)
    config = CollectionConfig(encoder=EncoderConfig(name=encoder_name))
    encoder.encode(["warm up"] * 8)
    runs = []
    for _ in range(repeats):  # interleave pipeline and baseline to cancel drift
        tmp = Path(tempfile.mkdtemp())
        t_pipe, col = timed(partial(Collection.build, tmp / "c", docs, config, encoder=encoder))
        chunks = [
            embed_text(c)
            for c in col._writer.chunker.chunk_many(docs)  # the very texts the pipeline embedded
        ]
        n_chunks = col.stats()["chunks"]
        col.close()
        shutil.rmtree(tmp)
        t_bare, _ = timed(partial(bare_encode, encoder, chunks))
        runs.append({"pipeline_s": t_pipe, "bare_s": t_bare, "chunks": n_chunks})
    best_pipe = min(r["pipeline_s"] for r in runs)
    best_bare = min(r["bare_s"] for r in runs)
    n_chunks = runs[0]["chunks"]
    return {
        "encoder": encoder_name,
        "documents": len(docs),
        "chunks": n_chunks,
        "pipeline_chunks_per_s": n_chunks / best_pipe,
        "bare_encode_chunks_per_s": n_chunks / best_bare,
        "ratio": best_bare / best_pipe,
        "runs": runs,
    }


def plot(reports: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = [r["encoder"] for r in reports]
    x = np.arange(len(names))
    ax.bar(x - 0.2, [r["bare_encode_chunks_per_s"] for r in reports], 0.4, label="bare encode")
    ax.bar(x + 0.2, [r["pipeline_chunks_per_s"] for r in reports], 0.4, label="ragfleet ingest")
    for i, r in enumerate(reports):
        ax.annotate(f"{r['ratio']:.2f}×", (i + 0.2, r["pipeline_chunks_per_s"]), ha="center")
    ax.set_xticks(x, names)
    ax.set_ylabel("chunks / s")
    ax.set_title("bulk ingest vs bare encode (SciFact)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000, help="SciFact documents")
    p.add_argument("--encoders", default="minilm-int8")
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    reports = [run(args.n, e, args.repeats) for e in args.encoders.split(",")]
    write_json("ingest_throughput", {"reports": reports})
    plot(reports, RESULTS / "ingest_throughput.png")
    for r in reports:
        print(
            f"{r['encoder']}: {r['chunks']} chunks, ingest {r['pipeline_chunks_per_s']:.1f}/s, "
            f"bare encode {r['bare_encode_chunks_per_s']:.1f}/s, ratio {r['ratio']:.3f}"
        )


if __name__ == "__main__":
    main()
