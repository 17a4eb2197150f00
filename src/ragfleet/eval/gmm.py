"""A Gaussian mixture fitted to real embeddings, to sample corpora of any size like them.

Real MiniLM embeddings cost ~80 ms each on a 2-core CPU, so scale benchmarks (millions of
vectors) draw theirs from a mixture fitted to a few thousand real ones. The fit is hard
EM's first step: k-means (FAISS, seeded) assigns every vector to one of ``C`` components;
each component gets its weight ``w_c = n_c / n``, its mean ``μ_c`` and a covariance
shrunk towards a multiple of the identity,

    Σ_c = (1 - α_c) S_c + α_c (tr(S_c) / d) I,

with ``S_c`` the sample covariance and ``α_c`` the Ledoit–Wolf intensity (Ledoit & Wolf,
"A well-conditioned estimator for large-dimensional covariance matrices", J. Multivariate
Analysis 2004): ``α = min(1, b² / δ²)``, ``b² = (Σ_i ||x_i||⁴ / n - ||S||²_F) / n`` over
the centred points, ``δ² = ||S - (tr S / d) I||²_F`` — a component has fewer points than
dimensions, and the shrinkage keeps its covariance full rank. Sampling draws a component
by weight, then ``μ_c + L_c z`` with ``L_c L_cᵀ = Σ_c``, ``z ~ N(0, I)``, and normalises to
unit length as the encoder does.

Sampled points share the real ones' clusters and their spread within a cluster, not the
finer structure below it; nearest-neighbour search over them is harder than over real
text embeddings (the benchmark reports both).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ragfleet._optional import require
from ragfleet.errors import InputError

Floats = npt.NDArray[np.float32]


@dataclass(frozen=True)
class GaussianMixture:
    """Weights ``(C,)``, means ``(C, d)`` and Cholesky factors ``(C, d, d)``."""

    weights: npt.NDArray[np.float64]
    means: npt.NDArray[np.float64]
    chols: npt.NDArray[np.float64]

    @property
    def d(self) -> int:
        return int(self.means.shape[1])

    @classmethod
    def fit(cls, x: npt.ArrayLike, n_components: int, seed: int = 0) -> GaussianMixture:
        """Fit to the rows of ``x`` (see the module docstring)."""
        data = np.ascontiguousarray(x, dtype=np.float32)
        if data.ndim != 2 or data.shape[0] < 2 * n_components or n_components < 1:
            raise InputError(
                f"a mixture of {n_components} components needs at least {2 * n_components} "
                f"vectors of shape (n, d), got {data.shape}"
            )
        faiss = require("faiss", "index")
        km = faiss.Kmeans(data.shape[1], n_components, niter=20, seed=seed, verbose=False)
        km.train(data)
        _, assign = km.index.search(data, 1)
        weights, means, chols = [], [], []
        for c in range(n_components):
            pts = data[assign[:, 0] == c].astype(np.float64)
            if pts.shape[0] < 2:
                continue
            mean = pts.mean(axis=0)
            weights.append(pts.shape[0])
            means.append(mean)
            chols.append(np.linalg.cholesky(shrunk_covariance(pts - mean)))
        w = np.asarray(weights, dtype=np.float64)
        return cls(w / w.sum(), np.stack(means), np.stack(chols))

    def sample(self, n: int, seed: int = 0, *, normalize: bool = True) -> Floats:
        """``n`` points, float32 ``(n, d)``, unit length unless ``normalize`` is off."""
        rng = np.random.default_rng(seed)
        comp = rng.choice(len(self.weights), size=n, p=self.weights)
        out = np.empty((n, self.d), dtype=np.float32)
        for c in range(len(self.weights)):
            where = np.flatnonzero(comp == c)
            for lo in range(0, where.size, 1 << 16):  # bounded temporaries
                idx = where[lo : lo + (1 << 16)]
                z = rng.standard_normal((idx.size, self.d))
                out[idx] = self.means[c] + z @ self.chols[c].T
        if normalize:
            out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    def save(self, path: str | Path) -> None:
        np.savez(path, weights=self.weights, means=self.means, chols=self.chols)

    @classmethod
    def load(cls, path: str | Path) -> GaussianMixture:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["weights"], z["means"], z["chols"])


def shrunk_covariance(centred: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Ledoit–Wolf shrinkage of the covariance of ``centred`` rows (module docstring)."""
    n, d = centred.shape
    s = centred.T @ centred / n
    mu = float(np.trace(s)) / d
    delta2 = float(((s - mu * np.eye(d)) ** 2).sum())
    fourth = float((np.einsum("ij,ij->i", centred, centred) ** 2).sum()) / n
    b2 = max(0.0, (fourth - float((s**2).sum())) / n)
    alpha = 1.0 if delta2 == 0.0 else min(1.0, b2 / delta2)
    out: npt.NDArray[np.float64] = (1.0 - alpha) * s + alpha * mu * np.eye(d)
    return out
