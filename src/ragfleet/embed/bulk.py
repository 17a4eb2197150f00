"""Bulk embedding: length-sorted, token-budgeted batches, in this process or a local pool.

Padding wastes compute in proportion to the spread of lengths in a batch, so texts are
sorted by token count (longest first) and packed greedily into batches whose padded size
``max_len(batch) · |batch|`` stays within ``batch_tokens``; vectors are returned in input
order. With ``workers > 0`` batches run in local processes (``spawn``: torch and
onnxruntime are not fork-safe), each loading the encoder once by its registry name.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager

import numpy as np
import numpy.typing as npt

from ragfleet.embed.base import Encoder, Vectors, check_texts, with_prefix
from ragfleet.embed.registry import ENCODERS, load_encoder
from ragfleet.embed.truncate import TruncatedEncoder
from ragfleet.errors import ConfigError, EmbeddingContractError, RagfleetError

ProgressFn = Callable[[int, int], None]
Batch = npt.NDArray[np.intp]


def plan_batches(lengths: Sequence[int], batch_tokens: int) -> list[Batch]:
    """Greedy token-budget batching of texts sorted by length, longest first.

    A batch ``B`` grows while ``max_{i∈B} len_i · (|B| + 1) <= batch_tokens``; as lengths
    are non-increasing inside a batch, its first text is its longest. A text longer than
    the budget gets a batch of its own. Every index appears in exactly one batch.
    """
    if batch_tokens < 1:
        raise ConfigError(f"batch_tokens must be >= 1, got {batch_tokens}")
    lens = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lens, kind="stable")
    batches: list[Batch] = []
    start = 0
    for end in range(1, len(order) + 1):
        longest = max(1, int(lens[order[start]]))
        if end == len(order) or longest * (end - start + 1) > batch_tokens:
            batches.append(order[start:end])
            start = end
    return batches


def embed_bulk(
    encoder: Encoder,
    texts: Sequence[str],
    *,
    batch_tokens: int,
    progress: bool | ProgressFn = False,
    workers: int = 0,
) -> Vectors:
    """Embed many documents; the same vectors as ``encoder.encode(texts)``, in input order.

    Args:
        encoder: any :class:`Encoder`; with ``workers > 0`` it must be a registry encoder.
        texts: the documents (the contract's document prefix is applied).
        batch_tokens: the padded-token budget of one batch (token counts clipped to the
            contract's ``max_seq_length``); the encoder may split a batch further.
        progress: a callback ``(done, total)``, or ``True`` for a rich progress bar when
            rich (extra ``cli``) is installed (silent otherwise).
        workers: local processes (0: embed in this process).

    Returns:
        float32 ``[len(texts), encoder.dim]``, C-contiguous.
    """
    items = check_texts(texts)
    if workers < 0:
        raise ConfigError(f"workers must be >= 0, got {workers}")
    if workers > 0 and isinstance(encoder, TruncatedEncoder):  # workers load the registry model
        full = embed_bulk(encoder.base, items, batch_tokens=batch_tokens, progress=progress,
                          workers=workers)  # fmt: skip
        return encoder.finish(full)
    out = np.empty((len(items), encoder.dim), dtype=np.float32)
    if not items:
        return out
    batches = plan_batches(_token_lengths(encoder, items), batch_tokens)
    with _reporter(progress, len(items)) as report:
        if workers == 0:
            for idx in batches:
                out[idx] = encoder.encode([items[i] for i in idx], kind="document")
                report(len(idx))
        else:
            _embed_in_pool(encoder, items, batches, workers, out, report)
    return out


def _token_lengths(encoder: Encoder, items: list[str]) -> list[int]:
    """Tokens the model sees per text: prefix included, clipped to ``max_seq_length``."""
    contract = encoder.contract
    counts = encoder.tokenizer.count(with_prefix(items, contract.document_prefix))
    return [min(c, contract.max_seq_length) for c in counts]


@contextmanager
def _reporter(progress: bool | ProgressFn, total: int) -> Iterator[Callable[[int], None]]:
    """A ``report(n_done_now)`` function feeding a callback, a rich bar, or nothing."""
    done = 0
    if callable(progress):

        def report(n: int) -> None:
            nonlocal done
            done += n
            progress(done, total)

        yield report
    elif progress and importlib.util.find_spec("rich") is not None:
        from rich.progress import Progress

        with Progress() as bar:
            task = bar.add_task("embedding", total=total)
            yield lambda n: bar.advance(task, n)
    else:
        yield lambda n: None


_WORKER: list[Encoder] = []


def _init_worker(name: str, threads: int) -> None:
    """Pool initializer: load the encoder once in this worker process."""
    _WORKER.append(load_encoder(name, threads=threads))


def _encode_in_worker(texts: list[str]) -> tuple[str, Vectors]:
    if not _WORKER:
        raise RagfleetError("bulk worker has no encoder: the pool initializer did not run")
    encoder = _WORKER[0]
    return encoder.contract.fingerprint(), encoder.encode(texts, kind="document")


def _embed_in_pool(
    encoder: Encoder,
    items: list[str],
    batches: list[Batch],
    workers: int,
    out: Vectors,
    report: Callable[[int], None],
) -> None:
    """Run ``batches`` on a spawn pool, at most ``2·workers`` in flight, into ``out``.

    Each result carries its worker's contract fingerprint, checked against ``encoder``'s.
    """
    if encoder.name not in ENCODERS:
        raise ConfigError(
            f"workers > 0 needs a registry encoder ({sorted(ENCODERS)}), got {encoder.name!r}"
        )
    expected = encoder.contract.fingerprint()
    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = multiprocessing.get_context("spawn")
    todo = iter(batches)
    with ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=(encoder.name, threads)
    ) as pool:
        pending: dict[Future[tuple[str, Vectors]], Batch] = {}

        def submit_next() -> None:
            idx = next(todo, None)
            if idx is not None:
                pending[pool.submit(_encode_in_worker, [items[i] for i in idx])] = idx

        for _ in range(2 * workers):
            submit_next()
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                idx = pending.pop(fut)
                fingerprint, vecs = fut.result()
                if fingerprint != expected:
                    raise EmbeddingContractError(
                        f"bulk worker encoder has fingerprint {fingerprint}, expected {expected}"
                    )
                out[idx] = vecs
                report(len(idx))
                submit_next()
