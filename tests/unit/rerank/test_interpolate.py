"""The first-stage interpolation of rerank scores (ragfleet.rerank.interpolate)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ragfleet.errors import ConfigError
from ragfleet.rerank.interpolate import check_weight, interpolate

finite = st.floats(-1e6, 1e6, allow_nan=False, width=32)


def test_the_formula_on_a_worked_head() -> None:
    # x = [1, 3, 2] → mm = [0, 1, .5]; first-stage term [1, .5, 0]; w = .25
    out = interpolate(np.array([1.0, 3.0, 2.0], dtype=np.float32), 0.25)
    np.testing.assert_allclose(out, [0.25, 0.875, 0.375], rtol=1e-6)


@given(st.lists(finite, min_size=1, max_size=60))
def test_weight_zero_keeps_the_scores_order_and_one_the_incoming_order(xs: list[float]) -> None:
    x = np.asarray(xs, dtype=np.float32)
    zero = interpolate(x, 0.0)
    assert np.array_equal(zero, x)  # the scores themselves
    assert np.array_equal(np.argsort(-zero, kind="stable"), np.argsort(-x, kind="stable"))
    one = interpolate(x, 1.0)
    assert list(np.argsort(-one, kind="stable")) == list(range(len(x)))


@given(st.lists(finite, min_size=2, max_size=60), st.floats(1e-3, 1.0), st.data())
def test_a_missing_score_goes_last_and_leaves_the_others_as_they_were(
    xs: list[float], w: float, data: st.DataObject
) -> None:
    x = np.asarray(xs, dtype=np.float32)
    j = data.draw(st.integers(0, len(x) - 1))
    live = np.arange(len(x)) != j
    gone, within = x.copy(), x.copy()
    gone[j] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    within[j] = x[live].min()  # any score inside the live range leaves min and max alone
    out = interpolate(gone, w)
    np.testing.assert_allclose(out[live], interpolate(within, w)[live], rtol=1e-6)
    assert out[j] < out[live].min()


@given(st.integers(1, 40), st.integers(0, 40), st.floats(1e-3, 1.0))
def test_the_rank_term_is_over_the_budget_not_the_prefix(m: int, extra: int, w: float) -> None:
    budget = m + extra
    out = interpolate(np.zeros(m, dtype=np.float32), w, budget)  # constant: mm = 0
    want = np.ones(1) if budget == 1 else (budget - 1 - np.arange(m)) / (budget - 1)
    np.testing.assert_allclose(out, w * want, rtol=1e-5, atol=1e-7)


@given(st.lists(finite, min_size=1, max_size=60), st.floats(1e-3, 1.0))
def test_blended_scores_stay_in_the_unit_interval(xs: list[float], w: float) -> None:
    out = interpolate(np.asarray(xs, dtype=np.float32), w)
    assert out.dtype == np.float32 and out.shape == (len(xs),)
    assert np.all(out >= -1e-6) and np.all(out <= 1 + 1e-6)


def test_a_constant_head_keeps_the_incoming_order_and_empty_is_empty() -> None:
    out = interpolate(np.full(4, 7.0, dtype=np.float32), 0.1)
    assert list(np.argsort(-out, kind="stable")) == [0, 1, 2, 3]
    assert interpolate(np.zeros(0, dtype=np.float32), 0.4).shape == (0,)


def test_numpy_weights_are_taken() -> None:
    assert check_weight(np.float32(0.25)) == 0.25 and check_weight(1) == 1.0


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.4", None, True])
def test_a_weight_outside_the_unit_interval_is_refused(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        check_weight(bad)  # type: ignore[arg-type]


def test_serve_settings_check_the_late_weight() -> None:
    from ragfleet.serve.settings import ServeSettings

    assert ServeSettings(reranker="late", late_weight=0.0).late_weight == 0.0
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        ServeSettings(reranker="late", late_weight=1.5)
    with pytest.raises(ConfigError, match="reranker='late'"):
        ServeSettings(late_weight=0.3)
