"""A hand-built calibration with round numbers, so plans can be checked by arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from ragfleet.plan.calibration import (
    Calibration,
    EncoderCalibration,
    EncoderPoint,
    SpecCalibration,
    SpecPoint,
)
from ragfleet.plan.tails import Shape


def flat_spec(ms_per_million: float = 50.0, dim: int = 384) -> SpecCalibration:
    """A flat scan: t(n) = n·ms_per_million/1e6 at p50, 1.2× that at p99; 4·dim bytes."""
    pts = tuple(
        SpecPoint(n, n * ms_per_million / 1e6, 1.2 * n * ms_per_million / 1e6, n * 5.1e-5)
        for n in (10_000, 20_000, 40_000)
    )
    shape = Shape.from_samples(np.random.default_rng(0).gamma(4.0, 1.0, 2000))
    return SpecCalibration("flat", {}, dim, pts, shape, 4.0 * dim, 4.0 * dim, 1.0, 1.0)


def hnsw_spec() -> SpecCalibration:
    """A graph: p50 = 0.1 + 0.02·ln n ms."""
    pts = tuple(
        SpecPoint(n, 0.1 + 0.02 * np.log(n), 0.2 + 0.04 * np.log(n), 0.1 + 0.02 * np.log(n))
        for n in (10_000, 100_000)
    )
    shape = Shape.from_samples(np.random.default_rng(1).lognormal(0.0, 0.5, 2000))
    return SpecCalibration("hnsw32", {"ef_search": 64}, 384, pts, shape, 1800.0, 1800.0)


@pytest.fixture()
def cal() -> Calibration:
    enc = EncoderCalibration(
        name="minilm-int8",
        dim=384,
        threads=2,
        points=(EncoderPoint(1, 20.0, 25.0, 50.0), EncoderPoint(64, 640.0, 700.0, 100.0)),
        query_point=EncoderPoint(1, 4.0, 6.0, 250.0),
        shape=Shape.lognormal(1.5),
    )
    return Calibration(
        host={"cpu_count": 2},
        specs=(flat_spec(), hnsw_spec()),
        encoder=enc,
        scatter_fixed_ms=0.1,
        scatter_per_shard_ms=0.01,
        hedge_cost_ms=0.05,
        rerank_fixed_ms=1.0,
        rerank_per_candidate_ms=0.1,
    )
