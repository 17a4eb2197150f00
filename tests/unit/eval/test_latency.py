"""Latency percentiles (linear interpolation) and per-stage aggregation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ragfleet.errors import InputError
from ragfleet.eval.latency import StageLatencies, percentiles


def test_linear_interpolation_formula() -> None:
    samples = list(range(1, 101))  # p-th percentile = 1 + (n − 1)·p/100
    summary = percentiles(samples)
    assert summary == {
        "p50": pytest.approx(1 + 99 * 0.50),
        "p95": pytest.approx(1 + 99 * 0.95),
        "p99": pytest.approx(1 + 99 * 0.99),
        "mean": pytest.approx(50.5),
        "n": 100,
    }
    assert percentiles([7.0]) == {"p50": 7.0, "p95": 7.0, "p99": 7.0, "mean": 7.0, "n": 1}


def test_bad_samples_raise() -> None:
    with pytest.raises(InputError, match="at least one"):
        percentiles([])
    with pytest.raises(InputError, match="finite"):
        percentiles([1.0, float("nan")])
    with pytest.raises(InputError, match=">= 0"):
        percentiles([-1.0])


@given(st.lists(st.floats(0, 1e5), min_size=1, max_size=200))
def test_percentiles_are_ordered_and_bounded(samples: list[float]) -> None:
    s = percentiles(samples)
    assert min(samples) <= s["p50"] <= s["p95"] <= s["p99"] <= max(samples)
    assert s["mean"] == pytest.approx(float(np.mean(samples)))


def test_stage_latencies_per_stage() -> None:
    stages = StageLatencies()
    stages.add({"embed": 2.0, "search": 5.0, "total": 7.0})
    stages.extend([{"search": 3.0, "total": 3.0}, {"embed": 4.0, "search": 1.0, "total": 6.0}])
    assert stages.stages == ["embed", "search", "total"]
    report = stages.summary()
    assert report["embed"]["n"] == 2 and report["embed"]["p50"] == 3.0
    assert report["search"] == percentiles([5.0, 3.0, 1.0])
    assert StageLatencies().summary() == {}
