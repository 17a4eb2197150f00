"""ColBERTv2-style residual compression of token vectors (measured, not yet storable).

ColBERTv2 (Santhanam et al., NAACL 2022, "ColBERTv2: Effective and Efficient Retrieval via
Lightweight Late Interaction", §3.3) stores each token vector ``x`` as the id of its
nearest centroid ``c = argmax_k C_k · x`` plus its residual ``r = x − C_c`` quantised to
``b`` bits per dimension: the residual values are cut into ``2^b`` buckets at the
quantiles ``cutoffs`` of a training sample, and bucket ``j`` is decoded as ``weights[j]``,
the mean of the sample's values in it. Decoding is ``x̂ = C_c + weights[bucket(r)]``.
Bytes per token: 2 (a uint16 centroid id) + ``d·b/8``.

The centroids, cutoffs and weights are trained on a sample of the corpus, so a collection
storing this codec needs them frozen beside its shards before its first write; the
benchmark (``benchmarks/late_codecs.py``) measures it against the training-free codecs of
:mod:`ragfleet.index.tokens_codec` first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ragfleet.errors import ConfigError

Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class ResidualCodes:
    """``ids`` uint16 ``[n]`` and ``buckets`` uint8 ``[n, d]`` (unpacked; ``packed_bytes``
    counts them as stored, ``b`` bits each)."""

    ids: npt.NDArray[np.uint16]
    buckets: npt.NDArray[np.uint8]


@dataclass(frozen=True, eq=False)
class ResidualCodec:
    """Trained centroids ``[k, d]``, bucket ``cutoffs`` ``[2^b − 1]`` and ``weights``
    ``[2^b]`` (see the module docstring)."""

    centroids: Matrix
    cutoffs: Matrix
    weights: Matrix
    bits: int

    @classmethod
    def fit(
        cls, sample: Matrix, k: int, bits: int, seed: int = 0, niter: int = 10
    ) -> ResidualCodec:
        """k-means (FAISS, spherical) on ``sample``, then residual quantiles."""
        import faiss

        if not 1 <= bits <= 8 or k < 1 or k > 65536:
            raise ConfigError("residual codec needs 1 <= bits <= 8 and 1 <= k <= 65536")
        x = np.ascontiguousarray(sample, dtype=np.float32)
        km = faiss.Kmeans(x.shape[1], k, niter=niter, seed=seed, spherical=True, verbose=False)
        km.train(x)
        centroids = np.ascontiguousarray(km.centroids, dtype=np.float32)
        r = (x - centroids[_nearest(centroids, x)]).ravel()
        qs = np.arange(1, 2**bits) / 2**bits
        cutoffs = np.quantile(r, qs).astype(np.float32)
        b = np.searchsorted(cutoffs, r)
        weights = np.array(
            [r[b == j].mean() if np.any(b == j) else 0.0 for j in range(2**bits)], np.float32
        )
        return cls(centroids, cutoffs, weights, bits)

    @property
    def d(self) -> int:
        return int(self.centroids.shape[1])

    @property
    def bytes_per_token(self) -> float:
        return 2 + self.d * self.bits / 8

    def encode(self, x: Matrix) -> ResidualCodes:
        ids = _nearest(self.centroids, x)
        r = x - self.centroids[ids]
        return ResidualCodes(
            ids.astype(np.uint16), np.searchsorted(self.cutoffs, r).astype(np.uint8)
        )

    def decode(self, codes: ResidualCodes) -> Matrix:
        out: Matrix = self.centroids[codes.ids.astype(np.int64)] + self.weights[codes.buckets]
        return out


def _nearest(centroids: Matrix, x: Matrix, step: int = 65536) -> npt.NDArray[np.int64]:
    out = np.empty(len(x), dtype=np.int64)
    for i in range(0, len(x), step):
        out[i : i + step] = np.argmax(x[i : i + step] @ centroids.T, axis=1)
    return out
