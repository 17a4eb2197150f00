"""The micro-batcher: concurrent query encodes share one call of the real encoder, and each
caller gets exactly the vectors it would have got alone."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from ragfleet.errors import ConfigError, InputError
from ragfleet.serve.batching import BatchingEncoder

QUERIES = [f"question number {i} about {w}" for i, w in enumerate(
    ["football", "music", "physics", "rivers", "Beyonce", "Normans", "Tesla", "DNA"] * 3
)]  # fmt: skip


class CountingEncoder:
    """The real encoder, counting its calls (to see the batches)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.name, self.calls = inner, inner.name, []  # type: ignore[var-annotated]
        self.dim, self.contract, self.tokenizer = inner.dim, inner.contract, inner.tokenizer
        self._lock = threading.Lock()

    def encode(self, texts: Any, kind: Any = "document") -> Any:
        with self._lock:
            self.calls.append((kind, len(texts)))
        return self.inner.encode(texts, kind=kind)


def _all_at_once(batcher: BatchingEncoder) -> list[np.ndarray]:
    """Each query of QUERIES encoded on its own thread, all released at once; the batcher
    closed after."""
    start = threading.Barrier(len(QUERIES))

    def one(i: int) -> np.ndarray:
        start.wait()
        return batcher.encode([QUERIES[i]], kind="query")

    with ThreadPoolExecutor(len(QUERIES)) as pool:
        got = list(pool.map(one, range(len(QUERIES))))
    batcher.close()
    return got


def test_concurrent_queries_are_batched_and_exact(encoder: Any) -> None:
    alone = encoder.encode(QUERIES, kind="query")
    counting = CountingEncoder(encoder)
    batcher = BatchingEncoder(counting, max_batch=8, max_wait_ms=50)
    got = _all_at_once(batcher)
    np.testing.assert_array_equal(np.vstack(got), alone)
    sizes = [n for kind, n in counting.calls]
    assert sum(sizes) == len(QUERIES) and max(sizes) <= 8
    assert len(sizes) < len(QUERIES)  # some were batched together
    assert batcher.batch_sizes == sizes


def test_a_lone_query_waits_only_when_told_to(encoder: Any) -> None:
    """By default a lone query is encoded at once (no company to wait for); with
    ``max_wait_ms`` it waits that long, then goes alone. Medians of 5, against a wait of
    200 ms: a margin no loaded machine closes."""
    import time

    def median_wait(batcher: BatchingEncoder) -> float:
        batcher.encode(["warm up"], kind="query")
        waits = []
        for i in range(5):
            t = time.perf_counter()
            batcher.encode([f"alone {i}"], kind="query")
            waits.append(time.perf_counter() - t)
        batcher.close()
        assert batcher.batch_sizes[-5:] == [1] * 5
        return float(np.median(waits))

    assert median_wait(BatchingEncoder(encoder, max_batch=32)) < 0.1
    assert 0.2 <= median_wait(BatchingEncoder(encoder, max_batch=32, max_wait_ms=200)) < 0.2 + 0.5


def test_greedy_batches_form_while_the_encoder_is_busy(encoder: Any) -> None:
    """With no wait, queries that arrive while a batch encodes make up the next one."""
    counting = CountingEncoder(encoder)
    got = _all_at_once(BatchingEncoder(counting, max_batch=32))
    np.testing.assert_array_equal(np.vstack(got), encoder.encode(QUERIES, kind="query"))
    assert len(counting.calls) < len(QUERIES)  # some were batched together


class ThreadRecorder(CountingEncoder):
    """Also records which thread ran each call."""

    def encode(self, texts: Any, kind: Any = "document") -> Any:
        with self._lock:
            self.calls.append((kind, len(texts), threading.current_thread().name))
        return self.inner.encode(texts, kind=kind)


def test_small_document_encodes_queue_apart_from_queries(encoder: Any) -> None:
    """Sentences of concurrent answers run on the batcher thread, never in one call with
    queries (their prefixes differ); a bulk document encode runs on the caller's thread."""
    docs = [f"sentence {i} of an answer passage" for i in range(3)]
    rec = ThreadRecorder(encoder)
    batcher = BatchingEncoder(rec, max_batch=4, max_wait_ms=30)
    start = threading.Barrier(6)

    def one(i: int) -> np.ndarray:
        start.wait()
        if i % 2:
            return batcher.encode([docs[i // 2]], kind="document")
        return batcher.encode([QUERIES[i]], kind="query")

    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(one, range(6)))
    for i, v in enumerate(got):
        kind, text = ("document", docs[i // 2]) if i % 2 else ("query", QUERIES[i])
        np.testing.assert_array_equal(v, encoder.encode([text], kind=kind))
    assert {t for _, _, t in rec.calls} == {"ragfleet-batcher"}
    assert sum(n for k, n, _ in rec.calls if k == "document") == 3
    assert sum(batcher.batch_sizes) == 3  # the metric counts query batches only
    bulk = [f"document {i}" for i in range(5)]  # more than max_batch: straight through
    batcher.encode(bulk, kind="document")
    assert rec.calls[-1] == ("document", 5, threading.current_thread().name)
    batcher.close()


def test_documents_pass_through_and_errors_reach_the_caller(encoder: Any) -> None:
    counting = CountingEncoder(encoder)
    batcher = BatchingEncoder(counting, max_batch=4, max_wait_ms=1)
    many = [f"doc {i}" for i in range(5)]
    np.testing.assert_array_equal(
        batcher.encode(many, kind="document"), encoder.encode(many, kind="document")
    )
    assert batcher.batch_sizes == [] and counting.calls == [("document", 5)]
    assert batcher.encode([], kind="query").shape == (0, encoder.dim)
    with pytest.raises(InputError, match="not one string"):
        batcher.encode("bare string", kind="query")
    with pytest.raises(InputError, match="kind must be"):
        batcher.encode(["q"], kind="other")  # type: ignore[arg-type]
    batcher.close()
    with pytest.raises(InputError, match="closed"):
        batcher.encode(["q"], kind="query")
    with pytest.raises(ConfigError):
        BatchingEncoder(encoder, max_batch=0)


def test_an_encoder_failure_fails_every_caller_of_that_batch(encoder: Any) -> None:
    class Failing(CountingEncoder):
        def encode(self, texts: Any, kind: Any = "document") -> Any:
            raise RuntimeError("model crashed")

    batcher = BatchingEncoder(Failing(encoder), max_batch=4, max_wait_ms=20)
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(batcher.encode, [q], "query") for q in QUERIES[:3]]
    for f in futures:
        with pytest.raises(RuntimeError, match="model crashed"):
            f.result()
    batcher.close()


def test_an_unbounded_wait_is_refused(encoder: Any) -> None:
    from ragfleet.serve.settings import ServeSettings

    for wait in (float("inf"), float("nan"), 1e12):
        with pytest.raises(ConfigError):
            BatchingEncoder(encoder, max_wait_ms=wait)
        with pytest.raises(ConfigError):
            ServeSettings(batch_wait_ms=wait)
