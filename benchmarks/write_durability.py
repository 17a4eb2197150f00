"""The cost of durability: Collection write throughput with an fsync per batch vs without.

The same pre-built stream of small upsert batches (SciFact documents, ``--batch`` per
``upsert``) goes into two fresh collections: ``durable=True`` (each shard's log record is
fsynced before ``upsert`` returns) and ``durable=False`` (written to the page cache
only: survives a process crash, not a power loss). Embedding is excluded from both: the
vectors are computed once up front and a cache-backed encoder returns them, so the ratio
isolates the write path (log, apply, checkpoints). A third variant checkpoints after
every batch (what ``upsert`` did before the checkpoint policy). Runs alternate to cancel
drift.

    python -m benchmarks.write_durability [--n 400] [--batch 4] [--repeats 2] [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import DATA, RESULTS, load_beir_texts, timed, write_json


class CachedEncoder:
    """The real encoder, memoised per text: the benchmark measures writes, not embedding."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.cache: dict[tuple[str, str], np.ndarray] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def encode(self, texts: Sequence[str], kind: Any = "document") -> np.ndarray:
        todo = [t for t in texts if (kind, t) not in self.cache]
        if todo:
            for t, v in zip(todo, self.inner.encode(todo, kind=kind), strict=True):
                self.cache[(kind, t)] = v
        return np.stack([self.cache[(kind, t)] for t in texts]).astype(np.float32)


#: ``fsync``: the default (log fsync per batch, checkpoint by policy and on close);
#: ``no_fsync``: no log fsync; ``fsync_checkpoint_each``: a checkpoint after every batch
#: (the behaviour before the checkpoint policy), to measure what the policy saves.
VARIANTS = ("fsync", "no_fsync", "fsync_checkpoint_each")


def one_run(docs: list[Any], batch: int, variant: str, enc: Any) -> float:
    from ragfleet.collection import Collection
    from ragfleet.config import CollectionConfig, ShardingConfig
    from ragfleet.index.shard import CheckpointPolicy

    durable = variant != "no_fsync"
    policy = CheckpointPolicy(max_batches=1) if variant == "fsync_checkpoint_each" else None

    path = Path(tempfile.mkdtemp()) / "c"
    config = CollectionConfig(sharding=ShardingConfig(n_shards=2))
    try:
        col = Collection.create(path, config, encoder=enc, durable=durable, policy=policy)
        seconds, _ = timed(
            lambda: [col.upsert(docs[i : i + batch]) for i in range(0, len(docs), batch)]
        )
        col.close()
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)
    return seconds


def run(n: int, batch: int, repeats: int) -> dict[str, Any]:
    from ragfleet.collection import Collection
    from ragfleet.embed.registry import load_encoder
    from ragfleet.types import Document

    rows = load_beir_texts(DATA / "scifact", n)
    docs = [Document(r["_id"], r["text"], r["title"]) for r in rows]
    enc = CachedEncoder(load_encoder("minilm-int8"))
    warm = Path(tempfile.mkdtemp()) / "warm"
    Collection.build(warm, docs, encoder=enc).close()  # fills the vector cache
    shutil.rmtree(warm.parent)
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(repeats):
        for variant in VARIANTS:
            times[variant].append(one_run(docs, batch, variant, enc))
    best = {k: min(v) for k, v in times.items()}
    batches = -(-n // batch)
    return {
        "n_docs": n,
        "docs_per_batch": batch,
        "batches": batches,
        "seconds": times,
        "batches_per_s": {k: batches / v for k, v in best.items()},
        "ms_per_batch": {k: 1e3 * v / batches for k, v in best.items()},
        "durability_cost_ratio": best["fsync"] / best["no_fsync"],
        "checkpoint_each_vs_policy_ratio": best["fsync_checkpoint_each"] / best["fsync"],
        "loadavg": os.getloadavg(),
    }


def plot(r: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(
        list(r["batches_per_s"]), list(r["batches_per_s"].values()), color=["#a33", "#3a3", "#888"]
    )
    ax.set_ylabel("upsert batches / s")
    ax.set_title(f"fsync per batch costs {r['durability_cost_ratio']:.2f}x")
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="120 documents, 1 repeat")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    n, repeats = (120, 1) if args.quick else (args.n, args.repeats)
    r = run(n, args.batch, repeats)
    write_json("write_durability", r)
    plot(r, RESULTS / "write_durability.png")
    print(r)


if __name__ == "__main__":
    main()
