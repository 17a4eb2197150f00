"""Exact rescoring of candidates: the second stage of every ``+refine`` spec.

A compressed first stage (binary, PQ, SQ codes) returns ``k' = ceil(k · oversample)``
candidates per query; each is rescored with its full-precision vector ``x`` from the
:class:`~ragfleet.index.vectors.VectorStore` — ``<q, x>`` for ``ip``, ``-||q - x||²`` for
``l2`` — and the best ``k`` are kept. Recall after rescoring is the recall@k' of the first
stage restricted to the true top k (Jégou et al., "Searching in one billion vectors:
re-rank with source coding", ICASSP 2011; FAISS's ``IndexRefine``): it grows with
``oversample`` while the cost grows by ``k' · d`` multiply-adds and ``k'`` random reads.

When the store is one float32 array and every candidate is a row, FAISS's
``knn_inner_products_by_idx`` / ``knn_L2sqr_by_idx`` score them and keep the best ``k`` in
one C++ call (no gather copy, no sort in Python: the per-call cost that decides QPS
against raw FAISS on small shards); a batch with a -1 before some row's candidate is
scored by ``fvec_*_by_idx`` and sorted here; other stores gather the candidates first.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Literal

import numpy as np
import numpy.typing as npt

from ragfleet.index.vectors import VectorStore

Metric = Literal["ip", "l2"]
Scores = npt.NDArray[np.float32]
Rows = npt.NDArray[np.int64]
#: Rows of the allowed set scored per block in :func:`exact_subset`.
SUBSET_BLOCK = 1 << 15


def candidates(k: int, oversample: float) -> int:
    """``k' = max(k, ceil(k · oversample))`` first-stage candidates for ``k`` hits."""
    return max(k, math.ceil(k * oversample - 1e-9))


def rescore(
    faiss: ModuleType,
    store: VectorStore,
    x: npt.NDArray[np.float32],
    cand: Rows,
    k: int,
    metric: Metric,
) -> tuple[Scores, Rows]:
    """The best ``k`` of ``cand`` (``(nq, k')``, -1 for none) by exact score, best first;
    missing hits have row -1 and score -inf."""
    nq, k1 = cand.shape
    whole = store.contiguous()
    swig_ptr = faiss.swig_ptr
    if whole is not None and whole.shape[0] > 0 and cand.size and _gaps_at_tail(cand):
        # One C++ call scores the candidates and keeps the best k in a heap (FAISS's
        # knn_*_by_idx); it stops a row at its first -1, so a row with a gap before a
        # candidate takes the path below. The row stride is passed: with FAISS 1.15.1's
        # default (-1) every row after the first comes back empty.
        kk = min(k, k1)
        vals = np.empty((nq, kk), dtype=np.float32)
        rows = np.empty((nq, kk), dtype=np.int64)
        fn = faiss.knn_inner_products_by_idx if metric == "ip" else faiss.knn_L2sqr_by_idx
        fn(swig_ptr(x), swig_ptr(whole), swig_ptr(cand), x.shape[1], nq, whole.shape[0], k1,
           kk, swig_ptr(vals), swig_ptr(rows), k1)  # fmt: skip
        if metric == "l2":
            np.negative(vals, out=vals)
        if rows.item(-1) < 0 if nq == 1 else rows[:, -1].min() < 0:
            np.putmask(vals, rows < 0, -np.inf)  # the heap's empty slots hold ∓FLT_MAX
        return _pad(vals, rows, k)
    dist = np.empty((nq, k1), dtype=np.float32)  # ip: <q,x> (-inf for -1); l2: ||q-x||² (+inf)
    if whole is not None and whole.shape[0] > 0:
        fn = faiss.fvec_inner_products_by_idx if metric == "ip" else faiss.fvec_L2sqr_by_idx
        fn(swig_ptr(dist), swig_ptr(x), swig_ptr(whole), swig_ptr(cand), x.shape[1], nq, k1)
    else:
        _gathered(store, x, cand, metric, dist)
    if metric == "ip":
        np.negative(dist, out=dist)  # now lower is better for both metrics
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    scores = np.take_along_axis(dist, order, axis=1)
    rows = np.take_along_axis(cand, order, axis=1)
    np.negative(scores, out=scores)
    missing = ~np.isfinite(scores)
    if missing.any():
        rows[missing] = -1
        scores[missing] = -np.inf
    return _pad(scores, rows, k)


def _gaps_at_tail(cand: Rows) -> bool:
    """Whether every -1 in each row of ``cand`` comes after all of its candidates."""
    if cand.min() >= 0:
        return True
    valid = cand >= 0
    return bool((valid[:, :-1] >= valid[:, 1:]).all())


def _gathered(
    store: VectorStore, x: npt.NDArray[np.float32], cand: Rows, metric: Metric, out: Scores
) -> None:
    """``out`` as the by-idx kernels fill it, from vectors gathered into RAM."""
    valid = cand >= 0
    vecs = store.take(cand[valid])
    qi = np.nonzero(valid)[0]
    if metric == "ip":
        out.fill(-np.inf)
        out[valid] = np.einsum("ij,ij->i", vecs, x[qi])
    else:
        out.fill(np.inf)
        diff = vecs - x[qi]
        out[valid] = np.einsum("ij,ij->i", diff, diff)


def _pad(scores: Scores, rows: Rows, k: int) -> tuple[Scores, Rows]:
    if scores.shape[1] == k:
        return scores, rows
    nq = scores.shape[0]
    s = np.full((nq, k), -np.inf, dtype=np.float32)
    r = np.full((nq, k), -1, dtype=np.int64)
    s[:, : scores.shape[1]], r[:, : rows.shape[1]] = scores, rows
    return s, r


def exact_subset(
    faiss: ModuleType,
    store: VectorStore,
    x: npt.NDArray[np.float32],
    allowed: Rows,
    k: int,
    metric: Metric,
) -> tuple[Scores, Rows]:
    """Exact top ``k`` of each query among the ``allowed`` rows (a restrictive filter),
    scored from the stored vectors block by block; padded with -1 / -inf."""
    nq = x.shape[0]
    best_s = np.full((nq, 0), -np.inf, dtype=np.float32)
    best_r = np.full((nq, 0), -1, dtype=np.int64)
    fm = faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2
    for lo in range(0, allowed.shape[0], SUBSET_BLOCK):
        block = allowed[lo : lo + SUBSET_BLOCK]
        vecs = store.take(block)
        kk = min(k, block.shape[0])
        dist, local = faiss.knn(x, vecs, kk, metric=fm)
        s = dist if metric == "ip" else -dist
        best_s = np.concatenate([best_s, s.astype(np.float32)], axis=1)
        best_r = np.concatenate([best_r, block[local]], axis=1)
        order = np.argsort(-best_s, axis=1, kind="stable")[:, :k]
        best_s = np.take_along_axis(best_s, order, axis=1)
        best_r = np.take_along_axis(best_r, order, axis=1)
    return _pad(best_s, best_r, k)
