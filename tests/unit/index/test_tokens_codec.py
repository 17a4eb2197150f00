"""Token codecs and batched MaxSim: expected values as formulas, Hypothesis for invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragfleet.errors import ConfigError, InputError
from ragfleet.index.maxsim import maxsim_batch
from ragfleet.index.tokens_codec import CODECS, TokenCodec, unit_rows


def _tokens(n: int, d: int = 384, seed: int = 0) -> np.ndarray:
    return unit_rows(np.random.default_rng(seed).normal(size=(n, d)))


@pytest.mark.parametrize(
    ("name", "bytes_per_token"),
    [("fp32", 4 * 384), ("fp16", 2 * 384), ("int8", 386), ("int4", 194)],
)
def test_bytes_per_token_follows_the_formula(name: str, bytes_per_token: int) -> None:
    codec = TokenCodec(name, 384)
    assert codec.bytes_per_token == bytes_per_token
    assert codec.encode(_tokens(5)).shape == (5, bytes_per_token)


@pytest.mark.parametrize("name", CODECS)
def test_decode_inverts_encode_within_half_a_step(name: str) -> None:
    x = _tokens(40)
    codec = TokenCodec(name, 384)
    y = codec.decode(codec.encode(x))
    levels = {"fp32": None, "fp16": None, "int8": 127, "int4": 7}[name]
    if levels is None:
        np.testing.assert_allclose(y, x, atol=1e-3 if name == "fp16" else 1e-6)
        return
    step = np.abs(x).max(axis=1, keepdims=True) / levels  # one quantisation step per token
    assert np.all(np.abs(y - x) <= step / 2 + 1e-3 * step)


def test_encode_normalises_and_checks_shapes() -> None:
    codec = TokenCodec("int8", 4)
    a = codec.decode(codec.encode(np.array([[3.0, 0, 0, 4.0]])))
    np.testing.assert_allclose(a, [[0.6, 0, 0, 0.8]], atol=0.01)
    with pytest.raises(InputError):
        codec.encode(np.zeros((2, 5)))
    with pytest.raises(InputError):
        codec.decode(np.zeros((2, 7), dtype=np.uint8))
    with pytest.raises(ConfigError):
        TokenCodec("pq", 4)
    with pytest.raises(ConfigError):
        TokenCodec("int4", 5)


@settings(max_examples=50, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 6), min_size=0, max_size=8),
    m=st.integers(1, 5),
    seed=st.integers(0, 1000),
)
def test_maxsim_batch_is_the_sum_of_row_maxima_per_passage(
    lengths: list[int], m: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    q = unit_rows(rng.normal(size=(m, 8)))
    blocks = [
        unit_rows(rng.normal(size=(n, 8))) if n else np.zeros((0, 8), np.float32) for n in lengths
    ]
    offsets = np.cumsum([0, *lengths])
    docs = np.concatenate(blocks) if blocks else np.zeros((0, 8), np.float32)
    got = maxsim_batch(q, docs, offsets)
    expected = [sum(max(float(qi @ dj) for dj in b) for qi in q) if len(b) else 0.0 for b in blocks]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_maxsim_batch_refuses_bad_offsets() -> None:
    q = _tokens(2, 8)
    with pytest.raises(InputError):
        maxsim_batch(q, _tokens(3, 8), [0, 2])
    with pytest.raises(InputError):
        maxsim_batch(q, _tokens(3, 8), [0, 3, 2, 3])
