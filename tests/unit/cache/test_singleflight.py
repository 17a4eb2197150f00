"""SingleFlight: concurrent identical calls compute once; errors reach every caller."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from ragfleet.cache import AsyncSingleFlight, SingleFlight

N = 20


def wait_for(cond: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.001)


def run_concurrently(sf: SingleFlight[str], fn: Callable[[], str]) -> list[object]:
    """N threads call sf.do("k", fn); returns each thread's (value, shared) or exception."""
    results: list[object] = [None] * N
    start = threading.Barrier(N)

    def call(i: int) -> None:
        start.wait()
        try:
            results[i] = sf.do("k", fn)
        except BaseException as e:
            results[i] = e

    threads = [threading.Thread(target=call, args=(i,)) for i in range(N)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return results


def test_twenty_threads_compute_once() -> None:
    sf: SingleFlight[str] = SingleFlight()
    calls = []

    def fn() -> str:
        calls.append(1)
        wait_for(lambda: sf.waiters("k") == N - 1)  # every other thread is waiting on us
        return "value"

    results = run_concurrently(sf, fn)
    assert len(calls) == 1
    assert sorted(results, key=str) == [("value", False)] + [("value", True)] * (N - 1)
    assert sf.in_flight() == 0


def test_the_same_exception_reaches_every_caller() -> None:
    sf: SingleFlight[str] = SingleFlight()
    calls = []
    boom = ValueError("boom")

    def fn() -> str:
        calls.append(1)
        wait_for(lambda: sf.waiters("k") == N - 1)
        raise boom

    results = run_concurrently(sf, fn)
    assert len(calls) == 1
    assert all(r is boom for r in results)
    assert sf.in_flight() == 0


def test_sequential_calls_run_again_and_keys_are_independent() -> None:
    sf: SingleFlight[int] = SingleFlight()
    counter = iter(range(100))
    assert sf.do("a", lambda: next(counter)) == (0, False)
    assert sf.do("a", lambda: next(counter)) == (1, False)  # not a cache
    assert sf.do("b", lambda: next(counter)) == (2, False)


def test_async_variant_computes_once() -> None:
    async def scenario() -> tuple[list[tuple[str, bool]], int]:
        sf: AsyncSingleFlight[str] = AsyncSingleFlight()
        release = asyncio.Event()
        calls = []

        async def fn() -> str:
            calls.append(1)
            await release.wait()
            return "value"

        tasks = [asyncio.create_task(sf.do("k", fn)) for _ in range(N)]
        await asyncio.sleep(0)  # every task runs up to its first await
        release.set()
        return list(await asyncio.gather(*tasks)), len(calls)

    results, calls = asyncio.run(scenario())
    assert calls == 1
    assert sorted(results) == [("value", False)] + [("value", True)] * (N - 1)


def test_async_exception_reaches_every_caller() -> None:
    async def scenario() -> list[BaseException | tuple[str, bool]]:
        sf: AsyncSingleFlight[str] = AsyncSingleFlight()
        release = asyncio.Event()

        async def fn() -> str:
            await release.wait()
            raise KeyError("missing")

        tasks = [asyncio.create_task(sf.do("k", fn)) for _ in range(N)]
        await asyncio.sleep(0)
        release.set()
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    results = asyncio.run(scenario())
    assert len(results) == N
    assert all(isinstance(r, KeyError) for r in results)


def test_async_leader_cancellation_cancels_waiters() -> None:
    async def scenario() -> list[BaseException | tuple[str, bool]]:
        sf: AsyncSingleFlight[str] = AsyncSingleFlight()

        async def fn() -> str:
            await asyncio.Event().wait()
            return "never"

        leader = asyncio.create_task(sf.do("k", fn))
        await asyncio.sleep(0)
        waiter = asyncio.create_task(sf.do("k", fn))
        await asyncio.sleep(0)
        leader.cancel()
        return list(await asyncio.gather(leader, waiter, return_exceptions=True))

    results = asyncio.run(scenario())
    assert all(isinstance(r, asyncio.CancelledError) for r in results)


@pytest.mark.parametrize("n_keys", [1, 5])
def test_in_flight_counts_running_keys(n_keys: int) -> None:
    sf: SingleFlight[bool] = SingleFlight()
    release = threading.Event()
    threads = [threading.Thread(target=sf.do, args=(f"k{i}", release.wait)) for i in range(n_keys)]
    for th in threads:
        th.start()
    wait_for(lambda: sf.in_flight() == n_keys)
    release.set()
    for th in threads:
        th.join()
    assert sf.in_flight() == 0
