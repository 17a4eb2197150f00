"""embed_bulk: token-budget batching, order, progress, the process pool."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ragfleet.embed.base import Encoder, Vectors, check_texts
from ragfleet.embed.bulk import embed_bulk, plan_batches
from ragfleet.embed.contract import EmbeddingContract
from ragfleet.embed.registry import load_encoder
from ragfleet.errors import ConfigError, InputError
from ragfleet.ingest.tokenize import Tokenizer, minilm_tokenizer


class DigestEncoder:
    """A deterministic stand-in encoder: each row is a seeded function of its text alone,
    so any reordering by the bulk pipeline shows up as an exact mismatch."""

    name = "digest"
    dim = 8
    contract = EmbeddingContract(
        model_id="digest", weights_sha256="0" * 64, dim=8, max_seq_length=256
    )

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    @property
    def tokenizer(self) -> Tokenizer:
        return minilm_tokenizer()

    def encode(self, texts: Sequence[str], kind: str = "document") -> Vectors:
        items = check_texts(texts, kind)
        self.batches.append(items)
        rows = [
            np.random.default_rng(
                int(hashlib.sha256(t.encode()).hexdigest()[:8], 16)
            ).standard_normal(self.dim)
            for t in items
        ]
        return np.asarray(rows, dtype=np.float32).reshape(len(items), self.dim)


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    words = ["cell", "protein", "risk", "gene", "trial", "dose", "a", "of", "the"]
    return [" ".join(rng.choice(words, size=int(rng.integers(1, 60)))) for _ in range(n)]


@given(st.lists(st.integers(0, 300), max_size=60), st.integers(1, 4000))
def test_plan_batches_partitions_within_budget(lengths: list[int], budget: int) -> None:
    batches = plan_batches(lengths, budget)
    flat = np.concatenate(batches) if batches else np.array([], dtype=np.intp)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    for b in batches:
        padded = max(1, max(lengths[i] for i in b)) * len(b)
        assert padded <= budget or len(b) == 1


def test_plan_batches_fills_each_batch_to_the_budget() -> None:
    """10 texts of 5 tokens, budget 20: floor(20 / 5) = 4 per batch → 4, 4, 2."""
    assert [len(b) for b in plan_batches([5] * 10, 20)] == [4, 4, 2]


def test_bulk_equals_encode_in_input_order() -> None:
    enc = DigestEncoder()
    texts = _texts(50)
    got = embed_bulk(enc, texts, batch_tokens=200)
    np.testing.assert_array_equal(got, enc.encode(texts))
    assert got.flags.c_contiguous and got.dtype == np.float32
    counts = minilm_tokenizer().count(texts)
    for batch in enc.batches[:-1]:
        padded = max(minilm_tokenizer().count(batch)) * len(batch)
        assert padded <= 200 or len(batch) == 1
    assert max(counts) * 50 > 200  # the budget really split the input


def test_progress_callback_reports_done_and_total() -> None:
    calls: list[tuple[int, int]] = []
    embed_bulk(
        DigestEncoder(), _texts(30), batch_tokens=128, progress=lambda d, t: calls.append((d, t))
    )
    assert calls[-1] == (30, 30)
    assert [d for d, _ in calls] == sorted({d for d, _ in calls})
    assert len(calls) > 1


def test_progress_bar_and_empty_input() -> None:
    out = embed_bulk(DigestEncoder(), [], batch_tokens=128, progress=True)
    assert out.shape == (0, 8)
    assert embed_bulk(DigestEncoder(), _texts(3), batch_tokens=128, progress=True).shape == (3, 8)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"batch_tokens": 0}, ConfigError),
        ({"batch_tokens": 64, "workers": -1}, ConfigError),
        ({"batch_tokens": 64, "workers": 1}, ConfigError),  # not a registry encoder
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        embed_bulk(DigestEncoder(), ["x"], **kwargs)


@pytest.mark.parametrize("bad", ["a string", ["ok", 1]])
def test_bad_texts(bad: object) -> None:
    with pytest.raises(InputError):
        embed_bulk(DigestEncoder(), bad, batch_tokens=64)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def onnx_encoder() -> Encoder:
    return load_encoder("minilm-int8")


@pytest.mark.model
def test_bulk_matches_encode_with_the_int8_model(onnx_encoder: Encoder) -> None:
    texts = _texts(40, seed=1)
    got = embed_bulk(onnx_encoder, texts, batch_tokens=512)
    cosines = np.sum(got * onnx_encoder.encode(texts), axis=1)
    assert cosines.min() > 0.9999


@pytest.mark.model
@pytest.mark.slow
def test_bulk_in_a_spawned_worker_matches_in_process(onnx_encoder: Encoder) -> None:
    texts = _texts(24, seed=2)
    calls: list[tuple[int, int]] = []
    pooled = embed_bulk(
        onnx_encoder, texts, batch_tokens=256, workers=1, progress=lambda d, t: calls.append((d, t))
    )
    local = embed_bulk(onnx_encoder, texts, batch_tokens=256)
    assert np.sum(pooled * local, axis=1).min() > 0.9999
    assert calls[-1] == (24, 24)
