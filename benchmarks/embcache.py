"""A persistent embedding cache for benchmarks: text → vector, embedded once per machine.

Real MiniLM embeddings cost ~80 ms per chunk on a 2-core box, so benchmarks that build the
same corpus under several index specs embed it once: :class:`CachedEmbedder` is a
``Collection.build(..., embedder=…)`` that looks each text up by ``sha256(encoder
fingerprint, text)`` in ``benchmarks/cache/<name>.npz`` (``keys`` as a unicode array and
``vectors`` as float32; no pickle) and embeds only the misses.

    .venv/bin/python -m benchmarks.embcache        # warm the SciFact and SQuAD caches
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ragfleet.embed.base import Encoder
from ragfleet.embed.bulk import embed_bulk

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "benchmarks" / "cache"
DATA = REPO.parent / "shared" / "data"
CORPORA = {"scifact": DATA / "scifact", "squad": DATA / "squad-v1.1-dev" / "beir"}


class CachedEmbedder:
    """``texts → float32 [n, d]`` under ``encoder``, cached on disk at ``path``."""

    def __init__(self, encoder: Encoder, path: Path, batch_tokens: int = 16384) -> None:
        self.encoder, self.path, self.batch_tokens = encoder, path, batch_tokens
        self._salt = encoder.contract.fingerprint()
        self._rows: dict[str, int] = {}
        self._vectors = np.zeros((0, encoder.dim), dtype=np.float32)
        self.hits = self.misses = 0
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                self._vectors = np.ascontiguousarray(z["vectors"], dtype=np.float32)
                self._rows = {str(k): i for i, k in enumerate(z["keys"])}

    def key(self, text: str) -> str:
        return hashlib.sha256(f"{self._salt}\0{text}".encode()).hexdigest()

    def __call__(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        keys = [self.key(t) for t in texts]
        todo = sorted({k: i for i, k in enumerate(keys) if k not in self._rows}.items())
        self.misses += len(todo)
        self.hits += len(keys) - len(todo)
        if todo:
            fresh = embed_bulk(
                self.encoder, [texts[i] for _, i in todo], batch_tokens=self.batch_tokens
            )
            start = self._vectors.shape[0]
            self._vectors = np.concatenate([self._vectors, fresh])
            self._rows.update({k: start + j for j, (k, _) in enumerate(todo)})
            self.save()
        return np.ascontiguousarray(self._vectors[[self._rows[k] for k in keys]])

    def vectors(self) -> npt.NDArray[np.float32]:
        """Every cached vector (in insertion order)."""
        return self._vectors

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(sorted(self._rows, key=self._rows.__getitem__), dtype=np.str_)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=keys, vectors=self._vectors)
        tmp.replace(self.path)


def cached_embedder(name: str, encoder: Encoder) -> CachedEmbedder:
    return CachedEmbedder(encoder, CACHE / f"{name}-{encoder.name}.npz")


def warm(name: str, encoder: Encoder) -> CachedEmbedder:
    """Build a throwaway flat collection of corpus ``name`` through the cache."""
    from ragfleet.collection import Collection
    from ragfleet.config import CollectionConfig
    from ragfleet.ingest import load_beir_corpus

    emb = cached_embedder(name, encoder)
    tmp = Path(tempfile.mkdtemp(prefix=f"embcache-{name}-"))
    try:
        t0 = time.perf_counter()
        docs = list(load_beir_corpus(CORPORA[name]))
        Collection.build(tmp / "c", docs, CollectionConfig(), encoder=encoder, embedder=emb).close()
        print(f"{name}: {emb.vectors().shape[0]} vectors, {emb.misses} embedded now, "
              f"{time.perf_counter() - t0:.0f}s", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return emb


def main(argv: Sequence[str] | None = None) -> None:
    from ragfleet.embed.registry import load_encoder

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("corpora", nargs="*", default=list(CORPORA))
    a = p.parse_args(argv)
    encoder = load_encoder("minilm-int8")
    for name in a.corpora:
        warm(name, encoder)


if __name__ == "__main__":
    main()
