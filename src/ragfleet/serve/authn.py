"""Authentication at the door: before an admission slot is taken or a body byte is read.

Every request but ``/healthz``, ``/readyz`` and the static page is authenticated from its
headers alone, cheapest check first, so a caller without a valid key costs almost
nothing and can hold nothing:

1. no ``Authorization: Bearer rf_<id>_<secret>``, or a malformed one → 401 (no lookup);
2. a key verified before (remembered under an HMAC of it) → admitted (no hashing);
3. an unknown key id → 401 (a dictionary lookup), counted as a failure of the client;
4. a client or a key id with too many recent failures → 429 with ``Retry-After``, before
   any hashing: at most ``max_failures`` PBKDF2 runs per client and per key id in any
   ``window_s`` — a flood of wrong secrets cannot burn the CPU the real clients need;
5. else PBKDF2 (≈76 ms at 100k iterations) on a small dedicated pool, so it never takes
   the worker threads that serve searches; a failure is counted for both the client and
   the key id.

Scope and collection checks happen at the route (they depend on it), on the record the
door stored in the request's state.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ragfleet.errors import ConfigError
from ragfleet.serve.auth import AuthError, KeyRecord, KeyStore, parse_key
from ragfleet.serve.errors import ApiError

#: Paths anyone may reach (liveness, readiness, the static web page).
PUBLIC_PATHS = ("/healthz", "/readyz", "/", "/favicon.ico")
PUBLIC_PREFIXES = ("/ui/",)


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class FailureLimiter:
    """Recent authentication failures per subject (a client address, a key id) in a
    sliding window; a subject with ``max_failures`` in the last ``window_s`` is refused
    until its oldest failure leaves the window. Remembers at most ``max_subjects``."""

    def __init__(
        self,
        max_failures: int = 10,
        window_s: float = 60.0,
        max_subjects: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_failures < 1 or window_s <= 0:
            raise ConfigError("max_failures must be >= 1 and window_s > 0")
        self.max_failures, self.window_s, self.max_subjects = max_failures, window_s, max_subjects
        self._clock = clock
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, *subjects: str) -> int:
        """0 if every subject may try, else whole seconds until one of them may."""
        with self._lock:
            return self._wait(subjects)

    def fail(self, *subjects: str) -> None:
        with self._lock:
            self._record(subjects)

    def attempt(self, *subjects: str) -> int:
        """Atomically: 0 and count an attempt (as a failure until :meth:`forgive`), or
        the seconds to wait — so concurrent attempts cannot all pass the check first."""
        with self._lock:
            wait = self._wait(subjects)
            if wait == 0:
                self._record(subjects)
            return wait

    def forgive(self, *subjects: str) -> None:
        """An attempt counted by :meth:`attempt` succeeded: uncount it."""
        with self._lock:
            for s in subjects:
                times = self._seen.get(s)
                if times:
                    times.pop()

    def _wait(self, subjects: tuple[str, ...]) -> int:
        """Whole seconds until every subject is under its limit (0: now); drops what left
        the window. The caller holds the lock."""
        now, wait = self._clock(), 0.0
        for s in subjects:
            times = self._seen.get(s)
            if times is None:
                continue
            while times and times[0] <= now - self.window_s:
                times.popleft()
            if len(times) >= self.max_failures:
                wait = max(wait, times[0] + self.window_s - now)
        return 0 if wait <= 0 else max(1, math.ceil(wait))

    def _record(self, subjects: tuple[str, ...]) -> None:
        now = self._clock()
        for s in subjects:
            times = self._seen.setdefault(s, deque(maxlen=self.max_failures))
            times.append(now)
            self._seen.move_to_end(s)
        while len(self._seen) > self.max_subjects:
            self._seen.popitem(last=False)


class Authenticator:
    """The door's check (see the module docstring)."""

    def __init__(
        self, keys: KeyStore, failures: FailureLimiter | None = None, hash_workers: int = 1
    ) -> None:
        self.keys = keys
        self.failures = failures or FailureLimiter()
        self._pool = ThreadPoolExecutor(hash_workers, thread_name_prefix="ragfleet-pbkdf2")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def authenticate(self, authorization: str | None, client: str) -> KeyRecord:
        """The record of the request's key; :class:`AuthError` (401) or
        :class:`ApiError` (429, with Retry-After) otherwise."""
        self.keys.reload_if_changed()
        if not authorization:
            raise AuthError(401, "unauthenticated", "send an API key: Authorization: Bearer KEY")
        kind, _, key = authorization.partition(" ")
        key = key.strip()
        parsed = parse_key(key) if kind.lower() == "bearer" else None
        if parsed is None:
            raise AuthError(
                401, "unauthenticated", "the Authorization header must be Bearer rf_<id>_<secret>"
            )
        record = self.keys.remembered(key)
        if record is not None:
            return record
        who, key_id = f"client:{client}", f"key:{parsed[0]}"
        known = self.keys.record(parsed[0]) is not None
        retry = self.failures.attempt(who, key_id) if known else self.failures.attempt(who)
        if retry:
            raise ApiError(
                429, "too_many_failures",
                "too many failed authentications from this client or for this key; retry later",
                {"Retry-After": str(retry)},
            )  # fmt: skip
        if not known:
            raise AuthError(401, "invalid_key", "this API key is not valid")
        loop = asyncio.get_running_loop()
        checked = await loop.run_in_executor(self._pool, self.keys.check, key)
        if checked is None:
            raise AuthError(401, "invalid_key", "this API key is not valid")
        self.failures.forgive(who, key_id)
        return checked
