"""Latency against vectors per shard: ``t(n) = a + b·f(n)``, fitted by least squares.

A graph index (HNSW) visits ``O(log n)`` nodes per query (Malkov & Yashunin, TPAMI 2018),
so ``f(n) = ln n``; a flat scan reads every vector and an IVF scan reads ``nprobe/nlist``
of them, so ``f(n) = n`` (linear) once ``nlist`` stops growing. Residuals are kept as the
relative error of each fitted point, so a user can see how straight the line was.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Growth = Literal["log", "linear"]


def growth_of(spec: str) -> Growth:
    """``log`` for graph specs (``hnsw…``), ``linear`` for scans (flat, IVF, codes)."""
    return "log" if spec.startswith("hnsw") else "linear"


def _f(kind: Growth, n: float) -> float:
    return math.log(n) if kind == "log" else float(n)


@dataclass(frozen=True)
class ScalingFit:
    """``t(n) = a + b·f(n)`` ms; ``residuals`` = (fitted − measured)/measured per point."""

    kind: Growth
    a: float
    b: float
    residuals: tuple[float, ...] = ()

    @classmethod
    def fit(cls, kind: Growth, ns: Sequence[float], ms: Sequence[float]) -> ScalingFit:
        """Ordinary least squares over the points ``(f(n_i), ms_i)`` (two at least).

        A negative slope (noise on a flat curve) is clamped to 0 with ``a`` the mean, so a
        prediction never falls with size.
        """
        if len(ns) != len(ms) or len(ns) < 2:
            raise ValueError(f"need two or more (n, ms) points, got {len(ns)} and {len(ms)}")
        x = np.array([_f(kind, n) for n in ns])
        y = np.asarray(ms, dtype=np.float64)
        b, a = np.polyfit(x, y, 1)
        if b < 0:
            a, b = float(y.mean()), 0.0
        res = tuple(
            float((a + b * xi - yi) / yi) if yi > 0 else 0.0 for xi, yi in zip(x, y, strict=True)
        )
        return cls(kind, float(a), float(b), res)

    def __call__(self, n: float) -> float:
        """The fitted latency at ``n`` vectors, never below 0."""
        return max(self.a + self.b * _f(self.kind, max(n, 1.0)), 0.0)
