"""Fusion of ranked lists from several signals (dense, sparse, …): pure functions.

:func:`fuse` dispatches the methods named by ``SearchConfig.fusion``: ``"rrf"``
(reciprocal rank fusion on each list's order) and ``"minmax"`` / ``"zscore"`` (convex
combination of normalised scores).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ragfleet.errors import UnknownSpecError
from ragfleet.search.fusion.convex import convex, minmax_normalize, zscore_normalize
from ragfleet.search.fusion.rrf import rrf

__all__ = ["FUSIONS", "convex", "fuse", "minmax_normalize", "rrf", "zscore_normalize"]

ScoreLists = Mapping[str, Mapping[str, float]]


def _ranking(scores: Mapping[str, float]) -> list[str]:
    """Ids by score descending, ties by id ascending."""
    return sorted(scores, key=lambda d: (-scores[d], d))


def _rrf(lists: ScoreLists, weights: Mapping[str, float], rrf_k: float) -> list[tuple[str, float]]:
    return rrf({name: _ranking(s) for name, s in lists.items()}, k=rrf_k, weights=weights)


def _minmax(lists: ScoreLists, weights: Mapping[str, float], _: float) -> list[tuple[str, float]]:
    return convex(lists, weights, normalize="minmax")


def _zscore(lists: ScoreLists, weights: Mapping[str, float], _: float) -> list[tuple[str, float]]:
    return convex(lists, weights, normalize="zscore")


Fusion = Callable[[ScoreLists, Mapping[str, float], float], list[tuple[str, float]]]
FUSIONS: dict[str, Fusion] = {"rrf": _rrf, "minmax": _minmax, "zscore": _zscore}


def fuse(
    method: str,
    score_lists: ScoreLists,
    weights: Mapping[str, float] | None = None,
    rrf_k: float = 60,
) -> list[tuple[str, float]]:
    """Fuse ``{signal: {id: score}}`` with ``method`` into ``[(id, score), …]`` best first.

    ``weights`` default to 1.0 per signal; ``rrf_k`` is used by ``"rrf"`` only.
    """
    try:
        fusion = FUSIONS[method]
    except KeyError as e:
        raise UnknownSpecError(f"unknown fusion {method!r}; choose one of {sorted(FUSIONS)}") from e
    w = dict.fromkeys(score_lists, 1.0) if weights is None else weights
    return fusion(score_lists, w, rrf_k)
