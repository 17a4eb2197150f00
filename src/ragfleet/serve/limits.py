"""Load control: a token bucket per API key and admission control on requests in flight.

Token bucket (Turner 1986; RFC 2697's single-rate meter without colours): a bucket holds
at most ``burst`` tokens and refills at ``rate`` tokens per second,
``tokens(t) = min(burst, tokens(t₀) + rate · (t − t₀))``. A request takes one token; with
fewer than one left it is refused and told to retry after ``⌈(1 − tokens) / rate⌉`` s.

Admission control: at most ``max_inflight`` requests run at once; one more is refused at
once (429 with Retry-After) instead of queueing, so overload sheds load and the requests
that are admitted keep their latency.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from ragfleet.errors import ConfigError


class TokenBucket:
    """One bucket; ``take()`` returns 0 when admitted, else the seconds to wait."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ConfigError(f"a token bucket needs rate > 0 and burst >= 1, got {rate}, {burst}")
        self.rate, self.burst, self._clock = rate, burst, clock
        self._tokens = float(burst)
        self._t = clock()

    def take(self) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + self.rate * (now - self._t))
        self._t = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


class RateLimiter:
    """A token bucket per key name, created on first use; ``rate = 0`` admits everything."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def check(self, key_name: str) -> int:
        """0 if admitted, else the whole seconds to put in Retry-After (>= 1)."""
        if self.rate <= 0:
            return 0
        with self._lock:
            bucket = self._buckets.get(key_name)
            if bucket is None:
                bucket = self._buckets[key_name] = TokenBucket(self.rate, self.burst, self._clock)
            wait = bucket.take()
        return 0 if wait == 0 else max(1, math.ceil(wait))


class Admission:
    """At most ``limit`` holders at once; ``try_enter()`` never blocks."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ConfigError(f"max_inflight must be >= 1, got {limit}")
        self.limit = limit
        self._inflight = 0
        self._lock = threading.Lock()

    @property
    def inflight(self) -> int:
        return self._inflight

    def try_enter(self) -> bool:
        with self._lock:
            if self._inflight >= self.limit:
                return False
            self._inflight += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._inflight -= 1
