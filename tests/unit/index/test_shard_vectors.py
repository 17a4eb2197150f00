"""A shard over compressed +refine specs: vectors on disk under the checkpoint protocol,
read back by writers and readers, rescored at search time, counted in stats."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from ragfleet.config import CollectionConfig, IndexConfig
from ragfleet.errors import InputError
from ragfleet.eval.ann import exact_search, recall_at_k
from ragfleet.index.manifest import ShardManifest
from ragfleet.index.shard import CheckpointPolicy, Shard, ShardQuery
from ragfleet.index.writebatch import ChunkRecord

D = 32
NO_AUTO = CheckpointPolicy(max_wal_bytes=2**40, max_batches=2**40)
SPECS = ["binary", "hnsw16,binary", "sq8+refine16", "sq4+refine", "rabitq+refine16",
         "ivf16,rabitqfs+refine"]  # fmt: skip
RNG = np.random.default_rng(11)
VECTORS = RNG.normal(size=(600, D)).astype(np.float32)
VECTORS /= np.linalg.norm(VECTORS, axis=1, keepdims=True)


def record(i: int) -> ChunkRecord:
    doc = f"d{i}"
    return ChunkRecord(
        chunk_id=f"{doc}#0", doc_id=doc, n=0, text=f"text {i}", title="", metadata={},
        content_hash=hashlib.sha256(f"{i}".encode()).hexdigest(),
        doc_hash=hashlib.sha256(f"doc {i}".encode()).hexdigest(), vector=VECTORS[i],
    )  # fmt: skip


def open_shard(path: Path, spec: str, *, read_only: bool = False) -> Shard:
    config = CollectionConfig(index=IndexConfig(spec=spec))
    return Shard(path, 0, config, D, "f" * 16, policy=NO_AUTO, read_only=read_only)


def dense(shard: Shard, q: np.ndarray, k: int = 10, **kw: object) -> np.ndarray:
    res = shard.search(ShardQuery(k=k, vectors=q, **kw))  # type: ignore[arg-type]
    return np.array([[int(r) for r in h.rows] for h in res.dense])


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("spec", SPECS)
def test_vectors_checkpoint_reopen_and_read_only(tmp_path: Path, spec: str) -> None:
    path = tmp_path / "shard"
    shard = open_shard(path, spec)
    roles = []
    for lo, hi in ((0, 300), (300, 400), (400, 440), (440, 480)):
        shard.apply([record(i) for i in range(lo, hi)])
        shard.checkpoint()
        manifest = ShardManifest.load(path, verify=True)
        roles.append(sorted((r for r in manifest.files if r.startswith("vectors-")),
                            key=lambda r: int(r.split("-")[1])))  # fmt: skip
    # each checkpoint writes its new rows merged with the trailing segments no more than
    # twice their size: 300 | 100 (300 > 200) | 40 (100 > 80) | 40: 40 <= 80, then
    # 100 <= 2 * 80, then 300 <= 2 * 180: one segment again
    assert roles == [
        ["vectors-0"],
        ["vectors-0", "vectors-300"],
        ["vectors-0", "vectors-300", "vectors-400"],
        ["vectors-0"],
    ]
    on_disk = sorted(p.name for p in path.glob("vectors-*"))
    assert on_disk == [manifest.files["vectors-0"].name]  # the merged-away files are gone
    shard.apply([record(i) for i in range(480, 500)])  # in the log only
    q = VECTORS[:20] + 0.05 * RNG.normal(size=(20, D)).astype(np.float32)
    before = dense(shard, q)
    shard.abandon()
    again = open_shard(path, spec)  # the log replays the last 20 rows into the tail
    store = again.dense.vectors
    assert store is not None and len(store) == 500 and store.tail_rows == 20
    np.testing.assert_array_equal(dense(again, q), before)
    kept = VECTORS[:500].astype(store.dtype).astype(np.float32)
    np.testing.assert_array_equal(store.take(np.arange(500)), kept)
    snapshot = tree(path)
    reader = open_shard(path, spec, read_only=True)
    np.testing.assert_array_equal(dense(reader, q), before)
    reader.close()
    assert tree(path) == snapshot  # the reader wrote nothing
    again.close()


@pytest.mark.parametrize("spec", SPECS)
def test_stats_report_bytes_per_vector_in_ram_and_on_disk(tmp_path: Path, spec: str) -> None:
    shard = open_shard(tmp_path / "shard", spec)
    shard.apply([record(i) for i in range(500)])
    shard.checkpoint()
    s = shard.stats()["dense"]
    assert isinstance(s, dict)
    files = ShardManifest.load(tmp_path / "shard").files
    disk = sum(e.size for r, e in files.items() if r == "dense" or r.startswith("vectors-"))
    assert s["disk_bytes"] == disk and s["disk_bytes_per_vector"] == round(disk / 500, 2)
    precision = 2 if spec.endswith("16") else 4
    assert s["vectors_on_disk"] == ("fp16" if precision == 2 else "fp32")
    assert disk >= 500 * D * precision  # the vectors are on disk...
    assert s["ram_bytes"] == shard.dense.ram_bytes()  # ...and only the codes in RAM
    codes = {"binary": D / 8, "hnsw16,binary": D / 8, "sq8+refine16": D, "sq4+refine": D / 2,
             "rabitq+refine16": D / 8 + 8, "ivf16,rabitqfs+refine": D / 8 + 8}  # fmt: skip
    assert s["ram_bytes_per_vector"] >= codes[spec]
    assert s["ram_bytes_per_vector"] < 4 * D or spec.startswith("hnsw")  # the graph costs
    assert s["float32_bytes_per_vector"] == 4 * D
    shard.close()


def test_oversample_and_rescore_travel_per_query(tmp_path: Path) -> None:
    shard = open_shard(tmp_path / "shard", "binary")
    shard.apply([record(i) for i in range(600)])
    q = VECTORS[:50] + 0.1 * RNG.normal(size=(50, D)).astype(np.float32)
    _, truth = exact_search(VECTORS, q, 10, "ip")
    recalls = [recall_at_k(dense(shard, q, oversample=o), truth, 10) for o in (1, 4, 60)]
    assert recalls == sorted(recalls) and recalls[-1] == 1.0  # 600 candidates: exact
    res = shard.search(ShardQuery(k=10, vectors=q[:1], rescore=False))
    scores = res.dense[0].scores
    assert np.all(scores == np.round(scores)) and np.all(scores <= 0)  # -hamming
    tombstoned = dense(shard, q[:1], oversample=60)[0][:3]
    shard.apply([], deletes=[f"d{r}" for r in tombstoned])
    assert not set(dense(shard, q[:1], oversample=60)[0]) & set(tombstoned)
    flat = open_shard(tmp_path / "flat", "sq8")
    flat.apply([record(i) for i in range(300)])
    with pytest.raises(InputError, match="keeps no full-precision vectors"):
        flat.search(ShardQuery(k=10, vectors=q[:1], rescore=True))
    assert dense(flat, q[:1]).shape == (1, 10)  # the configured default applies only to +refine
    shard.close()
    flat.close()


def test_an_untrained_shard_checkpoints_and_reopens_without_a_dense_file(tmp_path: Path) -> None:
    """A shard of a spec that learns from data which has seen only deletes checkpoints
    (no dense file in its manifest), reopens untrained, and trains on its first vectors."""
    path = tmp_path / "shard"
    shard = open_shard(path, "sq8+refine16")
    shard.apply([], deletes=["nobody"])
    shard.checkpoint()
    assert "dense" not in ShardManifest.load(path, verify=True).files
    shard.close()
    again = open_shard(path, "sq8+refine16")
    assert not again.dense.is_trained and again.stats()["dense"]["disk_bytes"] == 0
    again.apply([record(i) for i in range(300)])
    again.checkpoint()
    assert "dense" in ShardManifest.load(path, verify=True).files
    again.close()
    reader = open_shard(path, "sq8+refine16", read_only=True)
    assert reader.dense.ntotal == 300 and dense(reader, VECTORS[:3], k=1)[:, 0].tolist() == [
        0,
        1,
        2,
    ]
    reader.close()
