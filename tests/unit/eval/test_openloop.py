"""The open-loop driver against a real uvicorn server whose capacity is known: one request
at a time, 40 ms each (25 requests/s). Past that rate a closed loop still reports ~40 ms;
the open loop reports the queue users would see, the knee sits below capacity, and the
bounds (count, in flight, time) hold."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from tests.e2e._server import running

from ragfleet.errors import InputError
from ragfleet.eval.load import LoadConfig, run_load
from ragfleet.eval.openloop import OpenLoopConfig, knee, run_open_loop

SERVICE_S = 0.040


@pytest.fixture(scope="module")
def serial_server() -> Iterator[str]:
    """A real HTTP server that serves one request at a time in SERVICE_S (its worker
    thread holds a lock while it sleeps): capacity 1 / SERVICE_S requests/s."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    lock = threading.Lock()

    def work() -> None:
        with lock:
            time.sleep(SERVICE_S)

    async def search(request: Request) -> JSONResponse:
        await request.json()
        await run_in_threadpool(work)
        return JSONResponse({"hits": [], "timings_ms": {"total": SERVICE_S * 1e3}})

    app = Starlette(routes=[Route("/v1/collections/c/search", search, methods=["POST"])])
    with running(app) as url:
        yield f"{url}/v1/collections/c"


def _open(url: str, rate: float, seconds: float, **kw: Any) -> Any:
    return asyncio.run(run_open_loop(OpenLoopConfig(url, rate, seconds, **kw), ["q"]))


def test_past_capacity_the_open_loop_shows_the_queue_a_closed_loop_hides(
    serial_server: str,
) -> None:
    closed = asyncio.run(run_load(LoadConfig(serial_server, 1, 1.0), ["q"]))
    assert np.median(closed.latencies_ms) < 4 * SERVICE_S * 1e3  # one client: no queue
    over = _open(serial_server, 50, 1.5, arrivals="constant")  # 2x capacity
    assert over.sent == 75 and over.errors == 0 and over.dropped == 0
    lat = over.latency()
    assert lat is not None
    # the 75th request is sent at 1.48 s and served at ~75 x 40 ms = 3 s: it waited ~1.5 s
    assert lat["p99"] > 20 * SERVICE_S * 1e3
    assert over.throughput < 0.7 * over.offered and not over.kept_up
    assert max(over.lag_ms) < 500  # the driver itself kept to the schedule


def test_the_knee_is_below_capacity_and_gives_an_admission_limit(serial_server: str) -> None:
    runs = [_open(serial_server, r, 1.5, arrivals="constant") for r in (5, 12, 50)]
    light, mid, over = runs
    assert light.kept_up and mid.kept_up and not over.kept_up
    bend = knee(runs)
    assert bend is not None and bend.rate in (5, 12)
    assert bend.admission_limit == max(1, int(np.ceil(bend.throughput_qps * bend.p99_ms / 1e3)))
    assert knee(runs, target_ms=1000).admission_limit >= round(bend.throughput_qps)  # type: ignore[union-attr]
    assert knee([over]) is None  # overloaded from the start: no knee to report
    lucky = _open(serial_server, 8, 1.5, arrivals="constant")  # kept up, past a failed rate
    lucky.config = OpenLoopConfig(serial_server, 100, 1.5)  # as if it ran at 100/s
    assert knee([light, mid, over, lucky]) == bend  # the first failure ends the search


def test_bounds_on_count_and_in_flight(serial_server: str) -> None:
    few = _open(serial_server, 100, 2.0, max_requests=7)
    assert few.sent == 7 and few.ok == 7
    capped = _open(serial_server, 200, 0.5, arrivals="constant", max_outstanding=2)
    assert capped.sent + capped.dropped == 100 and capped.dropped > 50
    timed = _open(serial_server, 100, 0.3, arrivals="constant", timeout_s=0.2)
    assert timed.statuses["TimeoutError"] > 0 and timed.seconds < 0.3 + 0.2 + 1.0
    assert not timed.kept_up  # a request that timed out is not served: the run fell behind
    cut = _open(serial_server, 200, 10.0, arrivals="constant", max_requests=4)
    assert cut.sent == 4 and cut.window_s == 4 / 200 and cut.offered == 200  # not 0.4/s


def test_a_rate_that_served_nothing_ends_the_knee_search(serial_server: str) -> None:
    light = _open(serial_server, 5, 1.0, arrivals="constant")
    missing = serial_server.rsplit("/", 1)[0] + "/missing"
    failed = _open(missing, 10, 0.5)  # every answer a 404
    assert failed.ok == 0 and failed.errors == failed.sent > 0
    later = _open(serial_server, 8, 1.0, arrivals="constant")
    later.config = OpenLoopConfig(serial_server, 20, 1.0)  # as if it ran at 20/s
    assert knee([light, failed, later]).rate == 5  # type: ignore[union-attr]
    failed.config = OpenLoopConfig(failed.config.url, 1, 0.5)  # now the lightest rate
    assert knee([failed, light]) is None  # the lightest served nothing: no baseline


def test_schedules() -> None:
    constant = OpenLoopConfig("http://x", 20, 2.0, arrivals="constant").schedule()
    np.testing.assert_allclose(constant, np.arange(40) / 20)
    poisson = OpenLoopConfig("http://x", 200, 10.0, seed=3).schedule()
    assert poisson[0] == 0 and np.all(np.diff(poisson) > 0) and poisson[-1] < 10
    assert abs(np.diff(poisson).mean() - 1 / 200) < 0.1 / 200  # mean gap 1/λ, within 10 %
    assert abs(len(poisson) - 2000) < 200
    assert len(OpenLoopConfig("http://x", 1000, 60, max_requests=5).schedule()) == 5


@pytest.mark.parametrize(
    ("kw", "what"),
    [
        ({"rate": 0}, "rate must be"),
        ({"rate": 1e9}, "rate must be"),
        ({"duration_s": 0}, "duration must be"),
        ({"max_requests": 0}, "max_requests"),
        ({"max_outstanding": 0}, "max_outstanding"),
        ({"arrivals": "bursty"}, "arrivals must be"),
        ({"endpoint": "delete"}, "endpoint must be"),
        ({"timeout_s": float("nan")}, "timeout"),
        ({"duration_s": float("inf")}, "duration must be"),
    ],
)
def test_bad_configs_are_refused(kw: dict[str, Any], what: str) -> None:
    args = {"url": "http://x", "rate": 10.0, "duration_s": 1.0, **kw}
    with pytest.raises(InputError, match=what):
        OpenLoopConfig(**args)
