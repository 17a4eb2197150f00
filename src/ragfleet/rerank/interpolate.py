"""A reranker's scores interpolated with the first-stage order it was handed.

A reranker scores the head of a ranked list on its own and throws away what the first stage
knew; interpolating the two is the usual remedy (Wang, Zhuang & Zuccon, ICTIR 2021, "BERT-based
Dense Retrievers Require Interpolation with BM25 for Effective Passage Retrieval"). Over the
head of a rerank budgeted at ``N`` candidates, hits in first-stage order ``i = 0 … n−1``
(``n ≤ N``: fewer hits, or a rerank cut short at a deadline) with rerank scores ``x``::

    s_i = (1 − w) · mm(x)_i + w · (N − 1 − i) / (N − 1)
    mm(x)_i = (x_i − min x) / (max x − min x)      (over the finite x; 0 for a constant head)

the second term being the first-stage rank mapped linearly from 1 (the first) to 0 (the
``N``-th; 1 when ``N = 1``): the weight of a rank step is ``w / (N − 1)`` however many hits
were scored. Ranks, not first-stage scores, so the blend does not depend on how the first
stage fused or scaled its signals. A hit without a score (``NaN`` or ±inf: its chunk is gone
since the search) gets ``min(finite s) − 1``: last. ``w = 1`` keeps the first stage's order;
``w = 0`` returns the rerank scores as they are (their order alone, their own scale).

For the late reranker the default ``w`` (:data:`FIRST_STAGE_WEIGHT`) was chosen on tune
splits only — SciFact's train queries and SQuAD dev queries outside the evaluated 500 — as
the best mean nDCG@10 over both (``benchmarks/late_fusion.py``).
"""

from __future__ import annotations

import numbers

import numpy as np

from ragfleet.errors import ConfigError
from ragfleet.rerank.base import Scores

#: The late reranker's default weight of the first-stage order (``benchmarks/late_fusion.py``).
FIRST_STAGE_WEIGHT = 0.4


def check_weight(weight: float) -> float:
    """``weight`` as a float in [0, 1], else :class:`ConfigError`."""
    ok = isinstance(weight, numbers.Real) and not isinstance(weight, bool | np.bool_)
    if not (ok and 0.0 <= float(weight) <= 1.0):
        raise ConfigError(f"the first-stage weight must be a number in [0, 1], got {weight!r}")
    return float(weight)


def interpolate(scores: Scores, weight: float, budget: int | None = None) -> Scores:
    """``s`` of the module docstring for a head scored ``scores`` (first-stage order) out of
    a rerank of ``budget`` candidates (``N``; default ``len(scores)``)."""
    x = np.asarray(scores, dtype=np.float64)
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    finite = np.isfinite(x)
    if weight == 0.0:
        out = x.copy()
    else:
        big = max(n, budget or n)
        lo, hi = (float(x[finite].min()), float(x[finite].max())) if finite.any() else (0.0, 0.0)
        mm = (x - lo) / (hi - lo) if hi > lo else np.zeros(n)
        first = np.ones(n) if big == 1 else (big - 1 - np.arange(n)) / (big - 1)
        out = (1.0 - weight) * mm + weight * first
    if not finite.all():
        out[~finite] = (float(out[finite].min()) if finite.any() else 0.0) - 1.0
    return np.asarray(out, dtype=np.float32)
