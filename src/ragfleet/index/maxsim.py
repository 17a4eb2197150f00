"""Batched MaxSim: late-interaction scores of many passages for one query in one product.

ColBERT (Khattab & Zaharia, SIGIR 2020) scores passage ``D`` for query ``Q`` as

    S(Q, D) = Σ_{i ∈ Q} max_{j ∈ D} q_i · d_j

over unit-norm token vectors. With the ``N`` passages' tokens stacked into one matrix
``D`` ``[T, d]`` (passage ``p`` owning rows ``offsets[p] : offsets[p + 1]``), all scores
come from one BLAS product ``Q Dᵀ`` ``[m, T]``, a segmented max over each passage's
columns (``np.maximum.reduceat``) and a sum over the ``m`` query tokens. A passage
without tokens scores 0.

The product runs on one BLAS thread (threadpoolctl, where installed): it is small (tens
of MFLOP), runs beside the shard scatter's threads, and a multi-threaded BLAS on a busy
2-core machine measured 5x slower here (spin-waiting threads fight for the cores).
"""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import numpy.typing as npt

from ragfleet.errors import InputError

Matrix = npt.NDArray[np.float32]


def maxsim_batch(
    q: Matrix, docs: Matrix, offsets: npt.ArrayLike, scale: Matrix | None = None
) -> npt.NDArray[np.float32]:
    """``S(Q, D_p)`` for every passage ``p`` (see the module docstring).

    Args:
        q: query token vectors ``[m, d]``.
        docs: every passage's token vectors, stacked ``[T, d]``.
        offsets: ``[N + 1]`` non-decreasing, ``offsets[0] = 0``, ``offsets[N] = T``.
        scale: ``[T]``, each passage token's factor (``d_j = scale_j · docs_j``, as
            :meth:`TokenCodec.split <ragfleet.index.tokens_codec.TokenCodec.split>` gives
            them), applied to ``Q docsᵀ`` column by column: ``m·T`` products, not ``T·d``.

    Returns:
        float32 ``[N]``.
    """
    off = np.asarray(offsets, dtype=np.int64)
    if off.ndim != 1 or len(off) < 1 or off[0] != 0 or off[-1] != len(docs):
        raise InputError(f"offsets must run from 0 to {len(docs)}, got {off[:3]}…{off[-1:]}")
    if np.any(np.diff(off) < 0):
        raise InputError("offsets must be non-decreasing")
    n = len(off) - 1
    out = np.zeros(n, dtype=np.float32)
    if n == 0 or len(q) == 0 or len(docs) == 0:
        return out
    if q.shape[1] != docs.shape[1]:
        raise InputError(f"query tokens have d={q.shape[1]}, passage tokens d={docs.shape[1]}")
    with _one_blas_thread():
        sims = np.asarray(q, dtype=np.float32) @ np.asarray(docs, dtype=np.float32).T
    if scale is not None:
        sims *= np.asarray(scale, dtype=np.float32)[None, :]
    filled = np.flatnonzero(off[1:] > off[:-1])
    best = np.maximum.reduceat(sims, off[filled], axis=1)
    out[filled] = best.sum(axis=0)
    return out


@functools.cache
def _controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return None
    return ThreadpoolController()


def _one_blas_thread() -> AbstractContextManager[Any]:
    ctl = _controller()
    return nullcontext() if ctl is None else ctl.limit(limits=1, user_api="blas")
