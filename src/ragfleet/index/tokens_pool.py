"""Token pooling: store fewer token vectors per chunk by merging similar ones at ingest.

Clavié, Chaffin & Adams, "Reducing the Footprint of Multi-Vector Retrieval with Minimal
Performance Impact via Token Pooling" (2024): cluster a passage's token vectors
hierarchically (Ward's criterion) into ``⌈T / f⌉`` clusters and keep each cluster's mean;
MaxSim then runs over ``f`` times fewer passage vectors — ``f`` times fewer bytes and
flops — and at ``f = 2`` they report no loss for ColBERT models.

Ward's agglomerative clustering merges, at each step, the two clusters whose union grows
the within-cluster sum of squares least; the Lance–Williams update gives the distance
from any cluster ``k`` to the union of ``i`` and ``j`` from the old distances alone::

    d(k, i∪j) = ((n_i + n_k) d(k, i) + (n_j + n_k) d(k, j) − n_k d(i, j)) / (n_i + n_j + n_k)

starting from squared Euclidean distances between the single tokens. ``T ≤ 256`` per
chunk (the encoder's window), so the ``T × T`` matrix and ``T − ⌈T/f⌉`` merges cost a few
milliseconds beside the ~80 ms encoder pass that produced the tokens. The means are not
re-normalised (as in the paper's reference code): a merged, less specific vector scores
a little lower. Clusters come out in the order of their first token, so pooling is
deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from ragfleet.errors import ConfigError

Matrix = npt.NDArray[np.float32]
MAX_POOL_FACTOR = 8


def pooled_count(n_tokens: int, factor: int) -> int:
    """How many vectors ``n_tokens`` pool to: ``⌈n / f⌉`` (``n`` itself when ``f == 1``)."""
    return n_tokens if factor <= 1 else math.ceil(n_tokens / factor)


def pool_tokens(x: npt.ArrayLike, factor: int) -> Matrix:
    """The cluster means of ``x`` ``[T, d]`` after Ward clustering into ``⌈T / factor⌉``
    clusters (see the module docstring); ``x`` itself as float32 when ``factor == 1``.

    Raises:
        ConfigError: ``factor`` outside ``[1, MAX_POOL_FACTOR]``.
    """
    ok = isinstance(factor, int | np.integer) and not isinstance(factor, bool)
    if not (ok and 1 <= factor <= MAX_POOL_FACTOR):
        raise ConfigError(
            f"token pool factor must be an int in [1, {MAX_POOL_FACTOR}], got {factor!r}"
        )
    v = np.asarray(x, dtype=np.float32)
    n = len(v)
    target = pooled_count(n, int(factor))
    if target >= n:
        return np.ascontiguousarray(v)
    w = v.astype(np.float64)
    sq = (w * w).sum(axis=1)
    dist = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (w @ w.T), 0.0)
    np.fill_diagonal(dist, np.inf)
    size = np.ones(n)
    sums = w.copy()
    alive = np.ones(n, dtype=bool)
    near = dist.argmin(axis=1)  # each cluster's nearest other cluster, and how near
    near_d = dist[np.arange(n), near]
    for _ in range(n - target):
        i = int(np.argmin(near_d))
        i, j = min(i, int(near[i])), max(i, int(near[i]))
        ni, nj, dij = size[i], size[j], dist[i, j]
        # dead clusters' distances are inf in dist[i] and dist[j], so they stay inf here
        merged = ((ni + size) * dist[i] + (nj + size) * dist[j] - size * dij) / (ni + nj + size)
        merged[i] = merged[j] = np.inf
        dist[i, :] = merged
        dist[:, i] = merged
        dist[j, :] = np.inf
        dist[:, j] = np.inf
        size[i] += nj
        sums[i] += sums[j]
        alive[j] = False
        near_d[j] = np.inf
        stale = np.flatnonzero((near == i) | (near == j))
        if stale.size:
            sub = dist[stale]
            best = sub.argmin(axis=1)
            near[stale], near_d[stale] = best, sub[np.arange(stale.size), best]
        k = int(np.argmin(merged))
        near[i], near_d[i] = k, merged[k]
        closer = merged < near_d  # never, for Ward (it is reducible); kept exact
        near[closer], near_d[closer] = i, merged[closer]
    return (sums[alive] / size[alive, None]).astype(np.float32)
