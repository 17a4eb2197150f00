"""The FAISS index of every spec: spec_of inverts build, files round-trip (binary ones
too), and ram_bytes adds up to what FAISS serialises."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from ragfleet.errors import ConfigError
from ragfleet.index import binary, codes
from ragfleet.index.specs import DenseSpec

faiss = pytest.importorskip("faiss")

D, N = 16, 2000
X = np.random.default_rng(0).normal(size=(N, D)).astype(np.float32)
SPECS = [
    "flat", "hnsw16", "ivf8", "ivf8,pq4", "ivf8,pq4x6", "ivf8,sq8", "ivf8,sq4", "ivf8,sqfp16",
    "ivf8,pq8fs", "opq,ivf8,pq4", "sq8", "sq4", "sqfp16", "hnsw16,sq8", "hnsw16,sqfp16",
    "hnsw16,pq8", "binary", "hnsw16,binary", "rabitq", "rabitq4", "ivf8,rabitq",
    "ivf8,rabitqfs", "ivf8,rabitq2fs",
]  # fmt: skip


def built(text: str, metric: str = "ip") -> object:
    spec = DenseSpec.parse(text)
    index = codes.build(faiss, spec, D, metric, N)  # type: ignore[arg-type]
    if spec.binary:
        binary.add(index, X)
    else:
        index.train(X)
        index.add(X)
    return index


@pytest.mark.parametrize("text", SPECS)
@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_spec_of_inverts_build(text: str, metric: str) -> None:
    spec = DenseSpec.parse(text)
    found = codes.spec_of(faiss, built(text, metric))
    assert dataclasses.replace(found, nlist=spec.nlist) == spec


@pytest.mark.parametrize("text", SPECS)
def test_ram_bytes_is_what_faiss_serialises(text: str, tmp_path: Path) -> None:
    """The serialised file holds the same arrays plus headers of a few hundred bytes."""
    index = built(text)
    path = tmp_path / "dense.faiss"
    codes.write(faiss, index, path)
    size = path.stat().st_size
    ram = codes.ram_bytes(faiss, index)
    assert abs(size - ram) <= 0.01 * size + 4096, (size, ram)
    again = codes.read(faiss, path)
    assert again.ntotal == N and codes.spec_of(faiss, again) == codes.spec_of(faiss, index)


def test_ram_bytes_by_formula() -> None:
    """flat: 4·d per vector; sq8: d; binary: d/8; ivf,pq4: 4 + an 8-byte id."""
    assert codes.ram_bytes(faiss, built("flat")) == N * 4 * D
    assert codes.ram_bytes(faiss, built("binary")) == N * D // 8
    sq8 = codes.ram_bytes(faiss, built("sq8"))
    assert sq8 == N * D + 4 * 2 * D  # codes + the trained (min, range) per dimension
    pq = built("ivf8,pq4")
    want = N * (4 + 8) + 4 * 8 * D + 4 * 4 * 256 * (D // 4)  # lists, centroids, codebooks
    assert codes.ram_bytes(faiss, pq) == want


@pytest.mark.parametrize("factory", ["LSH", "PQ4", "IVF8,PQ4x4fsr,RFlat", "PCA8,Flat"])
def test_spec_of_rejects_what_the_grammar_cannot_say(factory: str) -> None:
    index = faiss.index_factory(D, factory)
    with pytest.raises(ConfigError, match="unsupported FAISS"):
        codes.spec_of(faiss, index)


def test_binary_needs_whole_bytes() -> None:
    with pytest.raises(ConfigError, match="multiple"):
        codes.build(faiss, DenseSpec.parse("binary"), 30, "ip", 0)
