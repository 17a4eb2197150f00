"""The closed-loop driver's bounds: its config and the Retry-After it obeys."""

from __future__ import annotations

import pytest

from ragfleet.errors import InputError
from ragfleet.eval.load import LoadConfig, _retry_after


def test_retry_after_is_seconds_capped_and_garbage_is_one_second() -> None:
    assert _retry_after("3") == 3.0 and _retry_after("0.5") == 0.5
    assert _retry_after("99999999") == 60.0 and _retry_after("-4") == 0.0
    for garbage in ("Wed, 21 Oct 2026 07:28:00 GMT", "soon", "nan", "inf"):
        assert _retry_after(garbage) == 1.0


@pytest.mark.parametrize(("c", "d"), [(0, 1.0), (10_001, 1.0), (1, 0.0), (1, float("inf"))])
def test_unbounded_runs_are_refused(c: int, d: float) -> None:
    with pytest.raises(InputError, match="concurrency must be"):
        LoadConfig("http://x", c, d)
