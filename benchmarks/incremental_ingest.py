"""Incremental ingest: re-ingesting an unchanged corpus vs the first ingest (issue 5).

First ingest: ``Collection.build`` of SciFact's first ``n`` documents. Incremental: open
the collection and ``upsert`` the same documents again (every one skipped by its
document hash, nothing embedded). Then one changed document: only its chunks are
re-embedded. A counting wrapper around the real encoder counts the texts embedded.
Goal: incremental ≥ 50× faster than the first ingest; the changed document embeds
exactly its own chunk count. The incremental time includes opening the collection
(which embeds the contract's probe texts to verify the encoder; not counted as ingest).

    python -m benchmarks.incremental_ingest [--n 300] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import DATA, RESULTS, load_beir_texts, timed, write_json


class CountingEncoder:
    """Delegates to a real encoder and counts the document texts it embeds."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.texts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def encode(self, texts: Sequence[str], kind: Any = "document") -> Any:
        if kind == "document":
            self.texts += len(texts)
        return self.inner.encode(texts, kind=kind)


def run(n: int) -> dict[str, Any]:
    from ragfleet.collection import Collection
    from ragfleet.embed.registry import load_encoder
    from ragfleet.ingest.chunking import make_chunker
    from ragfleet.types import Document

    rows = load_beir_texts(DATA / "scifact", n)
    docs = [Document(r["_id"], r["text"], r["title"]) for r in rows]
    enc = CountingEncoder(load_encoder("minilm-int8"))
    enc.encode(["warm up"], kind="query")
    path = Path(tempfile.mkdtemp()) / "c"
    try:
        t_first, col = timed(lambda: Collection.build(path, docs, encoder=enc))  # type: ignore[arg-type]
        col.close()
        first_texts, enc.texts = enc.texts, 0

        def again() -> Any:
            with Collection.open(path, encoder=enc) as c:  # type: ignore[arg-type]
                enc.texts = 0  # opening embeds the contract's probe texts: not ingest
                return c.upsert(docs)

        t_again, report = timed(again)
        again_texts, enc.texts = enc.texts, 0
        changed = dataclasses.replace(docs[7], text=docs[7].text + " A revised sentence.")
        with Collection.open(path, encoder=enc) as c:  # type: ignore[arg-type]
            enc.texts = 0
            t_one, _ = timed(lambda: c.upsert([*docs[:7], changed, *docs[8:]]))
            own_chunks = len(make_chunker(c.config.chunker, enc.tokenizer).chunk_many([changed]))
        one_texts = enc.texts
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)
    return {
        "n_docs": n,
        "first_ingest_s": t_first,
        "unchanged_ingest_s": t_again,
        "speedup": t_first / t_again,
        "goal_speedup": 50,
        "texts_embedded_first": first_texts,
        "texts_embedded_unchanged": again_texts,
        "documents_unchanged": report.documents_unchanged,
        "one_changed_ingest_s": t_one,
        "texts_embedded_one_changed": one_texts,
        "chunks_of_changed_doc": own_chunks,
        "loadavg": os.getloadavg(),
    }


def plot(r: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = ["first ingest", "unchanged re-ingest", "1 doc changed"]
    values = [r["first_ingest_s"], r["unchanged_ingest_s"], r["one_changed_ingest_s"]]
    ax.bar(labels, values, color=["#888", "#2a7", "#27a"])
    ax.set_yscale("log")
    ax.set_ylabel("seconds (log)")
    ax.set_title(f"SciFact {r['n_docs']} docs: re-ingest {r['speedup']:.0f}x faster")
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--quick", action="store_true", help="100 documents")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    r = run(100 if args.quick else args.n)
    write_json("incremental_ingest", r)
    plot(r, RESULTS / "incremental_ingest.png")
    print({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()})


if __name__ == "__main__":
    main()
