import threading
import time

import pytest

from ragfleet.cluster.scatter import Scatter


@pytest.fixture
def scatter():  # type: ignore[no-untyped-def]
    s = Scatter(4)
    yield s
    s.close()


def test_gathers_every_shard_in_parallel(scatter: Scatter) -> None:
    barrier = threading.Barrier(3, timeout=5)  # deadlocks unless the three calls overlap

    def fn(x: int) -> int:
        barrier.wait()
        return x * 10

    g = scatter.gather([(0, 1), (1, 2), (2, 3)], fn)
    assert dict(g.results) == {0: 10, 1: 20, 2: 30} and g.coverage == 1.0


def test_deadline_reports_missing_shard(scatter: Scatter) -> None:
    release = threading.Event()

    def fn(x: int) -> int:
        if x == 2:
            release.wait(5)  # a shard made slow on purpose
        return x

    t0 = time.monotonic()
    g = scatter.gather([(0, 0), (1, 1), (2, 2)], fn, deadline_s=time.monotonic() + 0.2)
    release.set()
    assert time.monotonic() - t0 < 1.0
    assert g.missing == (2,) and set(g.results) == {0, 1}
    assert g.coverage == pytest.approx(2 / 3)


def test_shard_error_propagates(scatter: Scatter) -> None:
    def fn(x: int) -> int:
        if x == 1:
            raise ValueError("shard 1 broke")
        return x

    with pytest.raises(ValueError, match="shard 1 broke"):
        scatter.gather([(0, 0), (1, 1)], fn)


def test_single_shard_runs_inline(scatter: Scatter) -> None:
    g = scatter.gather([(5, 7)], lambda x: threading.current_thread().name)
    assert g.results[5] == threading.current_thread().name
