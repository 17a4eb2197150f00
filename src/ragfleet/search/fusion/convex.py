"""Convex combination of normalised scores (Bruch, Gai & Ingber, TOIS 2023, "An Analysis
of Fusion Functions for Hybrid Retrieval")::

    score(d) = Σ_i w_i · φ(s_i(d))

with ``φ`` min-max (``(s − min) / (max − min)``) or z-score (``(s − μ) / σ``, population
σ) normalisation per list. A document missing from list ``i`` gets that list's normalised
minimum (0 for min-max), the standard choice: it is treated as scoring no better than the
worst retrieved document. An empty list contributes nothing. If ``max == min`` min-max
gives every document 1.0 (all retrieved equally well, and the scale is unknown) and
z-score gives 0.0 (every score is the mean) — never a division by zero.

Sums use ``math.fsum`` so the result does not depend on the order of the lists or of
the documents; ties are broken by id ascending. Functions here never mutate inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Literal

from ragfleet.errors import InputError, UnknownSpecError

__all__ = ["NORMALIZERS", "convex", "minmax_normalize", "zscore_normalize"]

Normalization = Literal["minmax", "zscore"]


def minmax_normalize(scores: Mapping[str, float]) -> dict[str, float]:
    """``(s − min) / (max − min)`` per id; all 1.0 when ``max == min``."""
    _check_finite(scores)
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    if hi == lo:
        return dict.fromkeys(scores, 1.0)
    return {d: (s - lo) / (hi - lo) for d, s in scores.items()}


def zscore_normalize(scores: Mapping[str, float]) -> dict[str, float]:
    """``(s − μ) / σ`` per id (population σ); all 0.0 when ``σ == 0``."""
    _check_finite(scores)
    if not scores:
        return {}
    n = len(scores)
    mean = math.fsum(scores.values()) / n
    std = math.sqrt(math.fsum((s - mean) ** 2 for s in scores.values()) / n)
    if std == 0.0:
        return dict.fromkeys(scores, 0.0)
    return {d: (s - mean) / std for d, s in scores.items()}


NORMALIZERS: dict[str, Callable[[Mapping[str, float]], dict[str, float]]] = {
    "minmax": minmax_normalize,
    "zscore": zscore_normalize,
}


def convex(
    score_lists: Mapping[str, Mapping[str, float]],
    weights: Mapping[str, float],
    normalize: Normalization = "minmax",
) -> list[tuple[str, float]]:
    """Fuse ``{signal: {id: score}}`` into ``[(id, score), …]``, best first.

    Args:
        score_lists: each signal's scores (higher is better).
        weights: a finite weight per signal in ``score_lists`` (usually summing to 1,
            e.g. ``{"dense": α, "sparse": 1 − α}``).
        normalize: ``"minmax"`` or ``"zscore"``.
    """
    try:
        norm = NORMALIZERS[normalize]
    except KeyError as e:
        raise UnknownSpecError(
            f"unknown normalisation {normalize!r}; choose one of {sorted(NORMALIZERS)}"
        ) from e
    missing = [name for name in score_lists if name not in weights]
    if missing or not all(math.isfinite(weights[n]) for n in score_lists):
        raise InputError(f"convex needs a finite weight per list; missing or bad: {missing}")
    normed = {name: norm(scores) for name, scores in score_lists.items() if scores}
    docs = {d for scores in normed.values() for d in scores}
    floor = {name: min(scores.values()) for name, scores in normed.items()}
    fused = [
        (d, math.fsum(weights[n] * s.get(d, floor[n]) for n, s in normed.items())) for d in docs
    ]
    return sorted(fused, key=lambda x: (-x[1], x[0]))


def _check_finite(scores: Mapping[str, float]) -> None:
    bad = {d: s for d, s in scores.items() if not math.isfinite(s)}
    if bad:
        raise InputError(f"scores must be finite numbers, got {dict(list(bad.items())[:5])}")
