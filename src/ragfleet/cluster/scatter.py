"""Scatter a call to every shard on a thread pool and gather what arrives by a deadline.

FAISS, the BM25 scorer's numpy kernels and SQLite release the GIL, so shards searched on
threads run in parallel. A shard that misses the deadline is reported as missing — the
caller flags the result with ``coverage = answered / asked`` instead of waiting. Without a
deadline the first shard is called on the caller's thread (one pool hop fewer; a lone
shard needs none).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
C = TypeVar("C")


@dataclass(frozen=True, slots=True)
class Gathered(Generic[T]):
    """Results by shard id, and the shards that did not answer in time."""

    results: Mapping[int, T]
    missing: tuple[int, ...]

    @property
    def coverage(self) -> float:
        asked = len(self.results) + len(self.missing)
        return 1.0 if asked == 0 else len(self.results) / asked


class Scatter:
    """A reusable thread pool sized to the shard count."""

    def __init__(self, n_workers: int) -> None:
        self.n_workers = max(1, n_workers)
        self._pool = ThreadPoolExecutor(self.n_workers, thread_name_prefix="ragfleet-shard")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def gather(
        self,
        targets: Sequence[tuple[int, C]],
        fn: Callable[[C], T],
        deadline_s: float | None = None,
    ) -> Gathered[T]:
        """Call ``fn(target)`` for every ``(shard_id, target)``; wait until ``deadline_s``
        (a ``time.monotonic()`` instant) at most. An exception in any shard propagates."""
        if deadline_s is None and targets:
            return self._gather_inline_first(targets, fn)
        futures: dict[Future[T], int] = {self._pool.submit(fn, t): s for s, t in targets}
        timeout = None if deadline_s is None else max(0.0, deadline_s - time.monotonic())
        done, pending = wait(futures, timeout=timeout, return_when=FIRST_EXCEPTION)
        for f in done:
            if f.exception() is not None:
                for p in pending:
                    p.cancel()
                f.result()  # re-raises the shard's error with its traceback
        if pending:
            done2, pending = wait(pending, timeout=0)
            done |= done2
        for p in pending:
            p.cancel()
        results = {futures[f]: f.result() for f in done}
        missing = tuple(sorted(futures[f] for f in pending))
        return Gathered(dict(sorted(results.items())), missing)

    def _gather_inline_first(
        self, targets: Sequence[tuple[int, C]], fn: Callable[[C], T]
    ) -> Gathered[T]:
        """No deadline to keep: the first shard is called on the caller's thread while the
        pool calls the rest, one thread hop fewer per query (the caller would only wait).
        An error surfaces once the first shard has returned (then in shard order), not
        the moment another shard raises."""
        futures = [(s, self._pool.submit(fn, t)) for s, t in targets[1:]]
        try:
            first = fn(targets[0][1])
        except BaseException:
            for _, f in futures:
                f.cancel()
            raise
        results = {targets[0][0]: first}
        for i, (s, f) in enumerate(futures):
            try:
                results[s] = f.result()
            except BaseException:
                for _, g in futures[i + 1 :]:
                    g.cancel()
                raise
        return Gathered(dict(sorted(results.items())), ())


def omp_threads_per_shard(n_concurrent: int) -> int:
    """OpenMP threads per FAISS call so that ``threads × omp ≤ cores``."""
    return max(1, (os.cpu_count() or 1) // max(1, n_concurrent))
