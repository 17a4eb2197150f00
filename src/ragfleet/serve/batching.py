"""Query-time micro-batching: queries of concurrent requests are embedded together.

Each search runs on its own worker thread and calls ``encode([q], kind="query")``; the
:class:`BatchingEncoder` queues the call and one batcher thread drains the queue into
batches. A batch takes every text already queued, up to ``max_batch``, and is encoded at
once with one call of the wrapped encoder; each caller gets its own rows back. While one
batch is encoding, the next fills up, so under load the batch size follows the arrival rate
and a lone query never waits for company (Clipper, Crankshaw et al., NSDI 2017, §4.3 —
adaptive batching). ``max_wait_ms`` > 0 opts into waiting that long after a batch's first
text for more, which can only add latency when the queue is empty. Small document
encodes (at most ``max_batch`` texts: the sentences an extractive answer scores) queue on
the same thread, batched only with other documents, so the model runs one call at a time
instead of several calls fighting over the cores; bulk document encodes (upserts) pass
straight through.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ragfleet.embed.base import Encoder, EncoderWrapper, Vectors, check_texts
from ragfleet.errors import ConfigError, InputError
from ragfleet.types import EncodeKind

if TYPE_CHECKING:
    pass


@dataclass
class _Item:
    texts: list[str]
    kind: EncodeKind = "query"
    future: Future[Vectors] = field(default_factory=Future)


class BatchingEncoder(EncoderWrapper):
    """An :class:`Encoder` that merges concurrent query encodes into one call.

    Args:
        inner: the encoder doing the work.
        max_batch: most texts per call of ``inner``.
        max_wait_ms: how long a batch waits for company after its first text (0, the
            default: not at all — it takes what is queued and goes).
        on_batch: called with the size of every batch (for metrics).
    """

    def __init__(
        self,
        inner: Encoder,
        max_batch: int = 32,
        max_wait_ms: float = 0.0,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch < 1 or not 0 <= max_wait_ms <= 10_000:  # refuses NaN and inf too
            raise ConfigError(
                f"need max_batch >= 1 and 0 <= max_wait_ms <= 10000, got {max_batch}, {max_wait_ms}"
            )
        self._on_batch = on_batch
        self.inner = inner
        self.name = inner.name
        self.max_batch, self.max_wait_s = max_batch, max_wait_ms / 1e3
        self.batch_sizes: list[int] = []  # recent batch sizes, for metrics and tests
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="ragfleet-batcher", daemon=True)
        self._thread.start()

    def encode(self, texts: Sequence[str], kind: EncodeKind = "document") -> Vectors:
        """As the wrapped encoder; texts are batched with the texts of the same kind queued
        with them (waiting at most ``max_wait_ms`` for more); a document encode of more
        than ``max_batch`` texts runs at once on the caller's thread."""
        items = check_texts(texts, kind)
        if not items or (kind != "query" and len(items) > self.max_batch):
            return self.inner.encode(items, kind=kind)
        if self._closed:
            raise InputError("the batching encoder is closed; encode with the inner encoder")
        item = _Item(items, kind)
        self._queue.put(item)
        return item.future.result()

    def close(self) -> None:
        """Stop the batcher thread after the queued batches are encoded."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        pending: _Item | None = None
        while True:
            first = pending if pending is not None else self._queue.get()
            if first is None:
                return
            batch, pending, stop = self._collect(first)  # stop: close() was called
            self._flush(batch)
            if stop:
                return

    def _collect(self, first: _Item) -> tuple[list[_Item], _Item | None, bool]:
        """``first`` plus what arrives before the batch is full or its wait is over; an
        item of the other kind ends the batch and is returned to start the next one."""
        batch, n = [first], len(first.texts)
        deadline = time.monotonic() + self.max_wait_s
        while n < self.max_batch:
            try:
                wait = deadline - time.monotonic()
                item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, None, True
            if item.kind != first.kind or n + len(item.texts) > self.max_batch:
                return batch, item, False
            batch.append(item)
            n += len(item.texts)
        return batch, None, False

    def _flush(self, batch: list[_Item]) -> None:
        texts = [t for item in batch for t in item.texts]
        kind = batch[0].kind
        if kind == "query":  # the metric is about query micro-batching
            self.batch_sizes = [*self.batch_sizes[-999:], len(texts)]
            if self._on_batch is not None:
                self._on_batch(len(texts))
        try:
            vectors = self.inner.encode(texts, kind=kind)
        except BaseException as e:  # handed to every waiting caller, who re-raises it
            for item in batch:
                item.future.set_exception(e)
            return
        start = 0
        for item in batch:
            end = start + len(item.texts)
            item.future.set_result(np.ascontiguousarray(vectors[start:end]))
            start = end
