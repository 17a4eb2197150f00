"""A reranker's scores interpolated with the first-stage order it was handed.

A reranker scores the head of a ranked list on its own and throws away what the first stage
knew; interpolating the two is the usual remedy (Wang, Zhuang & Zuccon, ICTIR 2021, "BERT-based
Dense Retrievers Require Interpolation with BM25 for Effective Passage Retrieval"). Over a head
of ``n`` hits in first-stage order ``i = 0 … n−1`` with rerank scores ``x``::

    s_i = (1 − w) · mm(x)_i + w · (n − 1 − i) / (n − 1)
    mm(x)_i = (x_i − min x) / (max x − min x)      (0 for a constant head)

the second term being the first-stage rank mapped linearly onto [1, 0] (1 for a head of one).
Ranks, not first-stage scores, so the blend does not depend on how the first stage fused or
scaled its signals. ``w = 1`` keeps the first stage's order; ``w = 0`` returns the rerank
scores unchanged (their order alone, and their own scale).

For the late reranker the default ``w`` (:data:`FIRST_STAGE_WEIGHT`) was chosen on tune
splits only — SciFact's train queries and SQuAD dev queries outside the evaluated 500 — as
the best mean nDCG@10 over both (``benchmarks/late_fusion.py``).
"""

from __future__ import annotations

import numpy as np

from ragfleet.errors import ConfigError
from ragfleet.rerank.base import Scores

#: The late reranker's default weight of the first-stage order (``benchmarks/late_fusion.py``).
FIRST_STAGE_WEIGHT = 0.4


def check_weight(weight: float) -> float:
    """``weight`` as a float in [0, 1], else :class:`ConfigError`."""
    if not (isinstance(weight, int | float) and 0.0 <= float(weight) <= 1.0):
        raise ConfigError(f"the first-stage weight must be a number in [0, 1], got {weight!r}")
    return float(weight)


def interpolate(scores: Scores, weight: float) -> Scores:
    """``s`` of the module docstring for a head scored ``scores`` (first-stage order)."""
    x = np.asarray(scores, dtype=np.float64)
    n = len(x)
    if n == 0 or weight == 0.0:
        return np.asarray(scores, dtype=np.float32)
    span = float(x.max() - x.min())
    mm = (x - x.min()) / span if span > 0 and np.isfinite(span) else np.zeros(n)
    first = np.ones(1) if n == 1 else (n - 1 - np.arange(n)) / (n - 1)
    return np.asarray((1.0 - weight) * mm + weight * first, dtype=np.float32)
