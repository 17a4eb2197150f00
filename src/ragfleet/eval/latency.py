"""Latency percentiles, overall and per pipeline stage.

Percentiles are ``numpy.percentile`` with ``method="linear"`` (Hyndman & Fan 1996 type 7,
numpy's and R's default): the value at fractional position ``(n − 1)·p/100`` of the
sorted samples, interpolated linearly between its two neighbours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TypedDict

import numpy as np

from ragfleet.errors import InputError

__all__ = ["LatencySummary", "StageLatencies", "percentiles"]


class LatencySummary(TypedDict):
    """p50/p95/p99 and mean in milliseconds, over ``n`` samples."""

    p50: float
    p95: float
    p99: float
    mean: float
    n: int


def percentiles(samples_ms: Sequence[float] | np.ndarray) -> LatencySummary:
    """p50, p95, p99 (linear interpolation) and mean of ``samples_ms``.

    Raises:
        InputError: no samples, or a sample that is negative or not finite.
    """
    x = np.asarray(samples_ms, dtype=np.float64).reshape(-1)
    if not len(x):
        raise InputError("percentiles need at least one latency sample")
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise InputError("latency samples must be finite and >= 0 milliseconds")
    p50, p95, p99 = np.percentile(x, [50, 95, 99], method="linear")
    return LatencySummary(
        p50=float(p50), p95=float(p95), p99=float(p99), mean=float(x.mean()), n=len(x)
    )


class StageLatencies:
    """Collects per-stage timings (``Results.timings_ms``) and reports their percentiles.

    A stage that a result did not run (e.g. ``embed`` in sparse mode) is simply absent
    from it, so each stage's ``n`` counts the results that ran it.
    """

    __slots__ = ("_samples",)

    def __init__(self) -> None:
        self._samples: dict[str, list[float]] = {}

    def add(self, timings_ms: Mapping[str, float]) -> None:
        """Record one result's ``{stage: milliseconds}``."""
        for stage, ms in timings_ms.items():
            self._samples.setdefault(stage, []).append(float(ms))

    def extend(self, many: Iterable[Mapping[str, float]]) -> None:
        for timings_ms in many:
            self.add(timings_ms)

    @property
    def stages(self) -> list[str]:
        """Stage names in the order first seen."""
        return list(self._samples)

    def summary(self) -> dict[str, LatencySummary]:
        """``{stage: percentiles(...)}`` for every stage seen."""
        return {stage: percentiles(ms) for stage, ms in self._samples.items()}
