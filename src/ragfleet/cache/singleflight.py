"""Single-flight: concurrent calls for the same key run the work once.

The first caller of a key (the leader) runs ``fn``; callers that arrive while it runs
wait for it and receive the same value, or the same exception re-raised. Once the leader
finishes the key is forgotten, so a later call runs ``fn`` again (caching is the cache's
job, not this one's). After Go's ``golang.org/x/sync/singleflight``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class _Call(Generic[T]):
    __slots__ = ("done", "error", "value", "waiters")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.waiters = 0
        self.value: T | None = None
        self.error: BaseException | None = None


class SingleFlight(Generic[T]):
    """Thread-based single-flight group."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, _Call[T]] = {}

    def do(self, key: str, fn: Callable[[], T]) -> tuple[T, bool]:
        """Run ``fn`` once per concurrent burst of ``key``.

        Returns:
            ``(value, shared)``: ``shared`` is False for the caller that ran ``fn`` and
            True for those that waited for it.

        Raises:
            Whatever ``fn`` raised, in the leader and in every waiter.
        """
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if call is None:
                call = self._calls[key] = _Call()
            else:
                call.waiters += 1
        if not leader:
            call.done.wait()
            return self._outcome(call), True
        try:
            call.value = fn()
        except BaseException as e:
            call.error = e
            raise
        finally:
            with self._lock:
                del self._calls[key]
            call.done.set()
        return call.value, False

    def in_flight(self) -> int:
        """How many keys are being computed now."""
        with self._lock:
            return len(self._calls)

    def waiters(self, key: str) -> int:
        """How many callers are waiting for the running computation of ``key`` (0 if none)."""
        with self._lock:
            call = self._calls.get(key)
            return 0 if call is None else call.waiters

    @staticmethod
    def _outcome(call: _Call[T]) -> T:
        if call.error is not None:
            raise call.error
        return call.value  # type: ignore[return-value]  # set before done


class AsyncSingleFlight(Generic[T]):
    """The asyncio variant: waiters await the leader's future (one event loop)."""

    def __init__(self) -> None:
        self._futures: dict[str, asyncio.Future[T]] = {}

    async def do(self, key: str, fn: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Await ``fn()`` once per concurrent burst of ``key``; see :meth:`SingleFlight.do`.

        A waiter that is cancelled does not cancel the leader; if the leader is cancelled,
        its waiters receive ``CancelledError``.
        """
        fut = self._futures.get(key)
        if fut is not None:
            return await asyncio.shield(fut), True
        fut = asyncio.get_running_loop().create_future()
        self._futures[key] = fut
        try:
            value = await fn()
        except asyncio.CancelledError:
            fut.cancel()
            raise
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # mark retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            del self._futures[key]
        fut.set_result(value)
        return value, False
