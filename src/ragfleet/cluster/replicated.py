"""One shard served by R replicas: least-loaded choice, hedged requests, failover.

A :class:`ReplicatedShard` is itself a :class:`~ragfleet.cluster.client.ShardClient`, so the
:class:`~ragfleet.search.searcher.Searcher` does not know replicas exist.

* **Choice** — power of two choices (Mitzenmacher 2001, "The Power of Two Choices in
  Randomized Load Balancing") over a latency-weighted load, as in Finagle's Peak-EWMA
  balancer: draw two live replicas at random and send to the lower
  ``cost_i = (ewma_i + ε) · (outstanding_i + 1)``, where ``ewma_i ← (1-a)·ewma_i + a·t`` over
  the replica's service times (``a = ewma_alpha``; an unmeasured replica counts as the
  slowest measured one, so each is tried) and ``ε = 0.1 ms`` keeps the outstanding count
  meaningful before any measurement. A persistently slow replica thus stops receiving
  first attempts and its latency stays out of the hedge threshold.
  ``latency_aware=False``: ``cost_i = outstanding_i`` (least outstanding, ties at random).
* **Hedging** — "The Tail at Scale" (Dean & Barroso, CACM 2013): once a request has run
  longer than the shard's observed p95, send the same request to a second replica and keep
  whichever answers first; the loser is cancelled if it has not started and ignored
  otherwise. The p95 is taken over a sliding window of the last ``window`` served latencies
  (the latency the caller saw, so a slow replica does not inflate the hedge delay); until
  ``min_samples`` are seen, ``initial_hedge_s`` is used.
* **Failover** — a replica that raises is marked down for ``down_s`` seconds and the call
  is retried on another replica; only when every replica has failed does the error reach
  the caller. A *caller's* error (:func:`is_caller_error`: an invalid request, a write to a
  read-only shard) is not the replica's fault: it reaches the caller at once, and no
  replica is marked down for it. A down replica is tried again once ``down_s`` has
  passed; :meth:`ReplicatedShard.replica_states` says which replicas are healthy (see
  :mod:`ragfleet.cluster.replica_health`).
* **Writes** — ``apply`` goes to replica 0, the shard's owner (the one process that writes
  its log), never hedged or retried elsewhere; once it is acknowledged every other replica
  ``refresh``-es, so a read after a write sees it (read-your-writes). ``doc_hashes`` and
  ``live_docs``, which writes are planned from, are read from the owner too.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from ragfleet.cluster.client import ShardClient
from ragfleet.cluster.replica_health import ReplicaCounters, ReplicaState
from ragfleet.errors import ConfigError, InputError, ReadOnlyError
from ragfleet.index.docstore import StoredChunk
from ragfleet.index.shard import ShardQuery, ShardResult
from ragfleet.index.shard_tokens import TokenBlocks
from ragfleet.index.sparse.bm25 import ShardTermStats
from ragfleet.index.writebatch import ChunkRecord

Scores = npt.NDArray[np.float32]

T = TypeVar("T")
log = logging.getLogger(__name__)
EPSILON_S = 1e-4


@dataclass(frozen=True)
class HedgeConfig:
    """Replica selection and hedging knobs (see the module docstring)."""

    hedge: bool = True
    quantile: float = 0.95
    window: int = 128
    min_samples: int = 16
    initial_hedge_s: float = 0.05
    min_hedge_s: float = 0.001
    down_s: float = 2.0
    latency_aware: bool = True
    ewma_alpha: float = 0.3
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.quantile < 1.0:
            raise ConfigError(f"hedge quantile must be in (0, 1), got {self.quantile}")
        if self.window < 1 or self.min_samples < 1 or self.min_samples > self.window:
            raise ConfigError(
                f"need 1 <= min_samples <= window, got min_samples={self.min_samples} "
                f"window={self.window}"
            )
        if not 0.0 < self.ewma_alpha <= 1.0:
            raise ConfigError(f"ewma_alpha must be in (0, 1], got {self.ewma_alpha}")
        if min(self.initial_hedge_s, self.min_hedge_s, self.down_s) < 0:
            raise ConfigError("initial_hedge_s, min_hedge_s and down_s must be >= 0")


def is_caller_error(error: BaseException) -> bool:
    """Whether ``error`` is the caller's mistake rather than a replica's fault (a Ray task
    error is an instance of the error it carries, so this holds across the cluster)."""
    return isinstance(error, InputError | ConfigError | ReadOnlyError)


class LatencyWindow:
    """The last ``size`` latencies of one shard and their quantile.

    The quantile is numpy's default (linear interpolation between the order statistics
    ``⌊h⌋`` and ``⌈h⌉`` at ``h = q·(n−1)``), computed in plain Python over the sorted window
    and kept until the next ``add``: it is read on every call to set the hedge timer, and
    ``np.quantile``'s ~40 µs a call was half of a replica set's own CPU under load.
    """

    def __init__(self, size: int) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()
        self._cached: tuple[float, float] | None = None  # (q, its quantile) since the last add

    def add(self, seconds: float) -> None:
        with self._lock:
            self._values.append(seconds)
            self._cached = None

    def __len__(self) -> int:
        return len(self._values)

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (linear interpolation, numpy's default) of the window."""
        with self._lock:
            if self._cached is not None and self._cached[0] == q:
                return self._cached[1]
            values = sorted(self._values)
            if not values:
                return 0.0
            h = q * (len(values) - 1)
            lo = int(h)
            hi = min(lo + 1, len(values) - 1)
            out = values[lo] + (h - lo) * (values[hi] - values[lo])
            self._cached = (q, out)
            return out


class ReplicatedShard:
    """A ShardClient over ``replicas`` (ShardClients of the same shard)."""

    def __init__(
        self,
        replicas: Sequence[ShardClient],
        config: HedgeConfig | None = None,
        pool: ThreadPoolExecutor | None = None,
    ) -> None:
        if not replicas:
            raise ConfigError("a replicated shard needs at least one replica")
        ids = {r.shard_id for r in replicas}
        if len(ids) != 1:
            raise ConfigError(f"all replicas must serve the same shard, got shard ids {ids}")
        self.replicas = list(replicas)
        self.config = config or HedgeConfig()
        self._shard_id = ids.pop()
        self._own_pool = pool is None
        self._pool = pool or ThreadPoolExecutor(
            8 * len(self.replicas), thread_name_prefix=f"ragfleet-replica-{self._shard_id}"
        )
        self._outstanding = [0] * len(self.replicas)
        self._down_until = [0.0] * len(self.replicas)
        self._ewma = [0.0] * len(self.replicas)  # service time per replica, seconds
        self._lock = threading.Lock()
        self._rng = random.Random(self.config.seed)
        self.latency = LatencyWindow(self.config.window)
        self.hedges = 0  # how many requests were hedged (for benchmarks and stats)
        self.served = [0] * len(self.replicas)  # answers per replica
        self.errors = 0  # how many replica calls raised (each one retried elsewhere)
        self._counters = ReplicaCounters(len(self.replicas))
        self.seq = 0  # the last write acknowledged through this client

    @property
    def shard_id(self) -> int:
        return self._shard_id

    def close(self) -> None:
        if self._own_pool:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # -- ShardClient ----------------------------------------------------------------------
    def search(self, q: ShardQuery) -> ShardResult:
        return self._call(lambda r: r.search(q), hedge=self.config.hedge)

    def term_stats(self, terms: Sequence[str]) -> ShardTermStats:
        return self._call(lambda r: r.term_stats(terms), hedge=self.config.hedge)

    def fetch(self, rows: Sequence[int]) -> dict[int, StoredChunk]:
        return self._call(lambda r: r.fetch(rows), hedge=self.config.hedge)

    def token_blocks(self, chunk_ids: Sequence[str]) -> TokenBlocks:
        return self._call(lambda r: r.token_blocks(chunk_ids), hedge=self.config.hedge)

    def late_scores(self, q: npt.NDArray[np.float32], chunk_ids: Sequence[str]) -> Scores:
        return self._call(lambda r: r.late_scores(q, chunk_ids), hedge=self.config.hedge)

    def stats(self) -> dict[str, object]:
        out = dict(self._call(lambda r: r.stats(), hedge=False))
        states = [asdict(s) for s in self.replica_states()]
        out.update(replicas=len(self.replicas), hedges=self.hedges, errors=self.errors)
        out.update(healthy_replicas=sum(s["healthy"] for s in states), replica_states=states)
        return out

    def apply(self, upserts: Sequence[ChunkRecord], deletes: Sequence[str] = ()) -> int:
        seq = self.replicas[0].apply(upserts, deletes)
        self.seq = seq
        for r in self.replicas[1:]:  # acknowledged: a failing refresh must not undo that
            try:
                r.refresh()
            except Exception as e:  # it catches up at its next refresh or restart
                log.warning("shard %d: a replica did not refresh after seq %d: %s",
                            self._shard_id, seq, e)  # fmt: skip
        return seq

    def refresh(self) -> bool:
        return any([r.refresh() for r in self.replicas])

    def doc_hashes(self) -> Mapping[str, str]:
        return self.replicas[0].doc_hashes()

    def live_docs(self, doc_ids: Sequence[str]) -> list[str]:
        return self.replicas[0].live_docs(doc_ids)

    def replica_states(self) -> list[ReplicaState]:
        """A snapshot of every replica: health, calls, failures, in flight, time."""
        now = time.monotonic()
        with self._lock:
            return [
                self._counters.state(i, self._outstanding[i], self._down_until[i] - now)
                for i in range(len(self.replicas))
            ]

    # -- selection ------------------------------------------------------------------------
    def hedge_delay(self) -> float:
        """Seconds to wait before hedging: the window's p95 (or the initial value)."""
        c = self.config
        if len(self.latency) < c.min_samples:
            return c.initial_hedge_s
        return max(c.min_hedge_s, self.latency.quantile(c.quantile))

    def _pick(self, exclude: set[int]) -> int | None:
        """Power of two choices among live replicas not in ``exclude`` (down ones last)."""
        now = time.monotonic()
        with self._lock:
            free = [i for i in range(len(self.replicas)) if i not in exclude]
            live = [i for i in free if self._down_until[i] <= now] or free
            if not live:
                return None
            pair = live if len(live) <= 2 else self._rng.sample(live, 2)
            if len(pair) == 1:
                best = pair[0]
            else:
                if len(pair) == 2 and self._rng.random() < 0.5:
                    pair = [pair[1], pair[0]]  # ties go either way, as a sample would
                slowest = max(
                    (e for e, n in zip(self._ewma, self.served, strict=True) if n > 0), default=0.0
                )
                # on equal cost an unmeasured replica goes first, so that each is tried
                best = min(pair, key=lambda i: (self._cost(i, slowest), self.served[i] > 0))
            self._outstanding[best] += 1
            return best

    def _cost(self, i: int, slowest: float) -> float:
        """The load of replica ``i`` (see the module docstring; ``slowest``: the largest
        measured EWMA, an unmeasured replica's); call with the lock held."""
        if not self.config.latency_aware:
            return float(self._outstanding[i])
        ewma = self._ewma[i] if self.served[i] > 0 else slowest
        return (ewma + EPSILON_S) * (self._outstanding[i] + 1)

    def _run(self, i: int, fn: Callable[[ShardClient], T]) -> T:
        t0 = time.monotonic()
        try:
            out = fn(self.replicas[i])
        except BaseException as e:
            if isinstance(e, Exception) and not is_caller_error(e):  # an interrupt is ours
                with self._lock:
                    self._down_until[i] = time.monotonic() + self.config.down_s
                    self.errors += 1
                    self._counters.finished(i, time.monotonic() - t0, failed=True)
            raise
        a = self.config.ewma_alpha
        with self._lock:
            self._counters.finished(i, time.monotonic() - t0, failed=False)
            self.served[i] += 1
            seen = self._ewma[i] if self.served[i] > 1 else time.monotonic() - t0
            self._ewma[i] = (1 - a) * seen + a * (time.monotonic() - t0)
        return out

    # -- the call -------------------------------------------------------------------------
    def _call(self, fn: Callable[[ShardClient], T], *, hedge: bool) -> T:
        """First answer among the replicas tried; an error fails over to an untried replica,
        and the last error is raised once every replica has failed."""
        t0 = time.monotonic()
        may_hedge = hedge and len(self.replicas) > 1
        if not may_hedge:
            return self._call_inline(fn, t0)
        tried: set[int] = set()
        running: dict[Future[T], int] = {}
        last_error: BaseException | None = None
        while True:
            if not running and not self._launch(fn, tried, running):
                raise last_error or RuntimeError(f"shard {self._shard_id}: no replica to try")
            timeout = self._until_hedge(t0) if may_hedge else None
            done, _ = wait(running, timeout=timeout, return_when=FIRST_COMPLETED)
            if not done:  # the hedge delay passed: ask a second replica too
                may_hedge = False
                if self._launch(fn, tried, running):
                    with self._lock:
                        self.hedges += 1
                continue
            for f in done:
                running.pop(f)
                error = f.exception()
                if error is None or is_caller_error(error):
                    for loser in running:
                        loser.cancel()  # not started yet: never runs; running: ignored
                    if error is not None:
                        raise error  # the request is wrong, not the replica: no failover
                    self.latency.add(time.monotonic() - t0)
                    return f.result()
                last_error = error

    def _call_inline(self, fn: Callable[[ShardClient], T], t0: float) -> T:
        """Without a hedge to race, the replicas are tried in turn on the caller's thread:
        a hop to the pool and back costs more than a small shard search itself (on a
        2-core box it halved the shard tier's throughput)."""
        tried: set[int] = set()
        last_error: BaseException | None = None
        while (i := self._pick(tried)) is not None:
            tried.add(i)
            try:
                out = self._run(i, fn)
            except Exception as e:
                if is_caller_error(e):
                    raise  # the request is wrong, not the replica: no failover
                last_error = e
                continue
            finally:
                self._release(i)
            self.latency.add(time.monotonic() - t0)
            return out
        raise last_error or RuntimeError(f"shard {self._shard_id}: no replica to try")

    def _release(self, i: int) -> None:
        with self._lock:
            self._outstanding[i] -= 1

    def _until_hedge(self, t0: float) -> float:
        return max(0.0, t0 + self.hedge_delay() - time.monotonic())

    def _launch(
        self, fn: Callable[[ShardClient], T], tried: set[int], running: dict[Future[T], int]
    ) -> bool:
        i = self._pick(tried)
        if i is None:
            return False
        tried.add(i)
        future = self._pool.submit(self._run, i, fn)
        future.add_done_callback(lambda _: self._release(i))  # finished, failed or cancelled
        running[future] = i
        return True
