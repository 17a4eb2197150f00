"""Scaling fits recover the line they were drawn from."""

from __future__ import annotations

import math

import pytest

from ragfleet.plan.fit import ScalingFit, growth_of


def test_linear_fit_recovers_a_and_b() -> None:
    ns = [1e4, 2e4, 5e4, 1e5]
    fit = ScalingFit.fit("linear", ns, [0.3 + 2e-5 * n for n in ns])
    assert fit.a == pytest.approx(0.3) and fit.b == pytest.approx(2e-5)
    assert fit(1e6) == pytest.approx(0.3 + 20.0)
    assert max(abs(r) for r in fit.residuals) < 1e-9


def test_log_fit_recovers_a_and_b() -> None:
    ns = [2e4, 5e4, 1e5, 2e5]
    fit = ScalingFit.fit("log", ns, [0.05 + 0.01 * math.log(n) for n in ns])
    assert fit.a == pytest.approx(0.05) and fit.b == pytest.approx(0.01)
    assert fit(1e9) == pytest.approx(0.05 + 0.01 * math.log(1e9))


def test_residuals_are_relative_errors() -> None:
    fit = ScalingFit.fit("linear", [1.0, 2.0, 3.0], [1.0, 3.0, 3.0])
    # OLS through (1,1), (2,3), (3,3): b = 1, a = 1/3.
    assert fit.b == pytest.approx(1.0) and fit.a == pytest.approx(1 / 3)
    assert fit.residuals == pytest.approx(((4 / 3 - 1) / 1, (7 / 3 - 3) / 3, (10 / 3 - 3) / 3))


def test_a_falling_curve_is_held_flat() -> None:
    fit = ScalingFit.fit("log", [1e4, 1e5], [0.2, 0.1])
    assert fit.b == 0.0 and fit(1e10) == pytest.approx(0.15)


def test_growth_and_bad_input() -> None:
    assert growth_of("hnsw32") == "log"
    assert growth_of("flat") == growth_of("ivf1024,rabitqfs+refine") == "linear"
    with pytest.raises(ValueError, match="two or more"):
        ScalingFit.fit("linear", [1.0], [1.0])
