"""Reciprocal rank fusion (Cormack, Clarke & Buettcher, SIGIR 2009, "Reciprocal Rank
Fusion outperforms Condorcet and individual Rank Learning Methods")::

    score(d) = Σ_i w_i / (k + rank_i(d))

over the rankings ``i`` that contain ``d``; ``rank_i`` is 1-based and ``k = 60`` in the
paper. A document listed twice in one ranking counts at its first (best) rank. Sums are
``math.fsum`` (exactly rounded), so the result does not depend on the order of the
rankings; ties are broken by id ascending.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ragfleet.errors import InputError

__all__ = ["rrf"]


def rrf(
    rankings: Sequence[Sequence[str]] | Mapping[str, Sequence[str]],
    k: float = 60,
    weights: Sequence[float] | Mapping[str, float] | None = None,
) -> list[tuple[str, float]]:
    """Fuse ranked id lists (best first) into ``[(id, score), …]``, best first.

    Args:
        rankings: the ranked ids of each signal, as a list or keyed by signal name.
        k: the rank offset (>= 0); larger k flattens the contribution of top ranks.
        weights: one weight (>= 0) per ranking, same shape as ``rankings``
            (a list for a list, a mapping with every signal for a mapping); default 1.

    Never mutates its inputs; an empty input gives ``[]``.
    """
    if not (math.isfinite(k) and k >= 0):
        raise InputError(f"rrf k must be a finite number >= 0, got {k}")
    lists, ws = _aligned(rankings, weights)
    parts: dict[str, list[float]] = {}
    for ranking, w in zip(lists, ws, strict=True):
        for rank, doc in enumerate(dict.fromkeys(ranking), start=1):
            parts.setdefault(doc, []).append(w / (k + rank))
    fused = [(doc, math.fsum(p)) for doc, p in parts.items()]
    return sorted(fused, key=lambda x: (-x[1], x[0]))


def _aligned(
    rankings: Sequence[Sequence[str]] | Mapping[str, Sequence[str]],
    weights: Sequence[float] | Mapping[str, float] | None,
) -> tuple[list[Sequence[str]], list[float]]:
    """The rankings and their weights as two parallel lists, validated."""
    if isinstance(rankings, Mapping):
        names = list(rankings)
        lists = [rankings[n] for n in names]
        if weights is None:
            ws = [1.0] * len(names)
        elif isinstance(weights, Mapping):
            missing = [n for n in names if n not in weights]
            if missing:
                raise InputError(f"rrf weights lack rankings {missing}; give one per ranking")
            ws = [float(weights[n]) for n in names]
        else:
            raise InputError("rankings keyed by name need weights keyed by the same names")
    else:
        lists = list(rankings)
        if isinstance(weights, Mapping):
            raise InputError("a list of rankings needs a list of weights, not a mapping")
        ws = [1.0] * len(lists) if weights is None else [float(w) for w in weights]
        if len(ws) != len(lists):
            raise InputError(f"rrf got {len(lists)} rankings but {len(ws)} weights")
    bad = [w for w in ws if not (math.isfinite(w) and w >= 0)]
    if bad:
        raise InputError(f"rrf weights must be finite and >= 0, got {bad}")
    return lists, ws
