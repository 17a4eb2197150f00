"""Distributed bulk embedding on Ray Data, resumable after a failure.

The texts are cut into blocks of ``block_size`` in input order. A block's key is
``sha256(encoder name, its texts)``; a finished block is saved as ``<key>.npy`` in
``cache_dir`` (written to a temporary name, then renamed, so a file is whole or absent).
A run embeds only the blocks without a file, as one Ray Data pipeline: rows
``(block, i, text)`` → ``map_batches(EncoderActor, compute=ActorPoolStrategy(size=workers))``
(one model per actor, loaded once) → streamed back to the driver, which saves every block
as soon as all its rows have arrived. After a crash a rerun finds the finished blocks on
disk and skips them; unchanged texts are never embedded twice.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ragfleet._optional import require
from ragfleet.errors import ConfigError, InputError

Vectors = npt.NDArray[np.float32]


class EncoderActor:
    """One encoder per Ray actor: ``{block, i, text}`` batch → ``{block, i, vector}``."""

    def __init__(self, encoder_name: str, threads: int = 1) -> None:
        from ragfleet.embed.registry import load_encoder

        self.encoder = load_encoder(encoder_name, threads=threads)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        vectors = self.encoder.encode([str(t) for t in batch["text"]], kind="document")
        return {"block": batch["block"], "i": batch["i"], "vector": vectors}


def block_key(encoder_name: str, texts: Sequence[str]) -> str:
    """sha256 of ``json.dumps([encoder_name, texts])``."""
    payload = json.dumps([encoder_name, list(texts)], ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(payload).hexdigest()


def _blocks(n: int, block_size: int) -> list[range]:
    return [range(s, min(n, s + block_size)) for s in range(0, n, block_size)]


def pending_blocks(
    texts: Sequence[str], encoder_name: str, cache_dir: Path, block_size: int = 512
) -> list[int]:
    """The block numbers that a run would embed (no finished file in ``cache_dir``)."""
    return [
        b
        for b, r in enumerate(_blocks(len(texts), block_size))
        if not (cache_dir / f"{block_key(encoder_name, texts[r.start : r.stop])}.npy").is_file()
    ]


def embed_with_ray(
    texts: Sequence[str],
    encoder_name: str,
    batch_size: int = 64,
    workers: int = 1,
    *,
    cache_dir: Path | None = None,
    block_size: int = 512,
    num_cpus: float = 0.5,
) -> Vectors:
    """Document vectors of ``texts`` (``[n, d]``, input order), embedded by ``workers``
    encoder actors on the connected Ray cluster; finished blocks are kept in ``cache_dir``
    (default: a ``.ragfleet-embed-cache`` folder here) and reused by the next run."""
    if not texts:
        raise InputError("no texts to embed")
    if batch_size < 1 or workers < 1 or block_size < 1:
        raise ConfigError(
            f"batch_size, workers and block_size must be >= 1, got "
            f"{batch_size}, {workers}, {block_size}"
        )
    cache_dir = cache_dir or Path(".ragfleet-embed-cache")
    cache_dir.mkdir(parents=True, exist_ok=True)
    blocks = _blocks(len(texts), block_size)
    keys = [block_key(encoder_name, texts[r.start : r.stop]) for r in blocks]
    todo = pending_blocks(texts, encoder_name, cache_dir, block_size)
    if todo:
        job = _Job(encoder_name, batch_size, workers, num_cpus, cache_dir)
        _run_pipeline(job, texts, blocks, keys, todo)
    return np.concatenate([np.load(cache_dir / f"{k}.npy", allow_pickle=False) for k in keys])


@dataclass(frozen=True)
class _Job:
    encoder_name: str
    batch_size: int
    workers: int
    num_cpus: float
    cache_dir: Path


def _run_pipeline(
    job: _Job, texts: Sequence[str], blocks: list[range], keys: list[str], todo: list[int]
) -> None:
    """Embed the ``todo`` blocks on Ray Data; save each block when its last row arrives."""
    ray = require("ray", "ray")
    rows = [{"block": b, "i": i, "text": texts[i]} for b in todo for i in blocks[b]]
    ds = ray.data.from_items(rows).map_batches(
        EncoderActor,
        fn_constructor_args=(job.encoder_name,),
        compute=ray.data.ActorPoolStrategy(size=job.workers),
        batch_size=job.batch_size,
        batch_format="numpy",
        num_cpus=job.num_cpus,
    )
    got: dict[int, dict[int, Vectors]] = {b: {} for b in todo}
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for b, i, v in zip(batch["block"], batch["i"], batch["vector"], strict=True):
            got[int(b)][int(i)] = np.asarray(v, dtype=np.float32)
            if len(got[int(b)]) == len(blocks[int(b)]):
                done = got.pop(int(b))
                matrix = np.stack([done[j] for j in blocks[int(b)]])
                _save(job.cache_dir / f"{keys[int(b)]}.npy", matrix)
    if got:
        raise InputError(f"Ray Data returned no vectors for blocks {sorted(got)}")


def _save(path: Path, matrix: Vectors) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        np.save(f, matrix, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
