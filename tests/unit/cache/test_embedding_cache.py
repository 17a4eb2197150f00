"""EmbeddingCache and embed_with_cache: only misses reach the encoder; fingerprints isolate."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from ragfleet.cache import EmbeddingCache, MemoryCache, embed_with_cache, embedding_key
from ragfleet.errors import ConfigError, DimensionError, InputError

D = 8


def vectors(n: int, seed: int = 0) -> npt.NDArray[np.float32]:
    return np.random.default_rng(seed).standard_normal((n, D)).astype(np.float32)


class CountingEmbed:
    """A deterministic "encoder": the vector of a text is seeded by its characters."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> npt.NDArray[np.float32]:
        self.calls.append(list(texts))
        return np.stack([vectors(1, sum(map(ord, t)))[0] for t in texts])


def test_put_then_get_many_is_bit_exact_and_missing_are_none() -> None:
    cache = EmbeddingCache(MemoryCache(1 << 20), D)
    v = vectors(3)
    cache.put_many(["h1", "h2", "h3"], "fp", v)
    got = cache.get_many(["h2", "nope", "h1", "h3"], "fp")
    assert got[1] is None
    np.testing.assert_array_equal(np.stack([got[2], got[0], got[3]]), v)  # type: ignore[list-item]
    snap = cache.metrics.snapshot()["embeddings:document"]
    assert (snap["hit"], snap["miss"]) == (3, 1)


def test_another_fingerprint_or_kind_misses() -> None:
    backend = MemoryCache(1 << 20)
    docs = EmbeddingCache(backend, D, kind="document")
    queries = EmbeddingCache(backend, D, kind="query")
    docs.put_many(["x"], "fp-a", vectors(1))
    assert docs.get_many(["x"], "fp-b") == [None]  # a model upgrade never mixes spaces
    assert queries.get_many(["x"], "fp-a") == [None]


def test_embed_with_cache_embeds_only_the_misses_in_one_call() -> None:
    cache, embed = EmbeddingCache(MemoryCache(1 << 20), D), CountingEmbed()
    first = embed_with_cache(cache, ["h1", "h2"], ["alpha", "beta"], "fp", embed)
    second = embed_with_cache(cache, ["h2", "h3", "h1"], ["beta", "gamma", "alpha"], "fp", embed)
    assert embed.calls == [["alpha", "beta"], ["gamma"]]
    np.testing.assert_array_equal(second, np.stack([first[1], embed(["gamma"])[0], first[0]]))
    assert second.dtype == np.float32 and second.flags.c_contiguous


def test_wrong_length_entry_is_an_error_and_a_miss() -> None:
    backend = MemoryCache(1 << 20)
    cache = EmbeddingCache(backend, D)
    backend.set(embedding_key("h", "fp", "document"), b"\x00" * (4 * D - 4))
    assert cache.get_many(["h"], "fp") == [None]
    assert cache.metrics.snapshot()["embeddings:document"]["error"] == 1


def test_invalid_arguments_raise() -> None:
    cache = EmbeddingCache(MemoryCache(1 << 20), D)
    with pytest.raises(DimensionError, match=r"\(2, 8\)"):
        cache.put_many(["a", "b"], "fp", vectors(3))
    with pytest.raises(InputError, match="2 ids for 1 texts"):
        embed_with_cache(cache, ["a", "b"], ["x"], "fp", CountingEmbed())
    with pytest.raises(DimensionError, match="embed returned"):
        embed_with_cache(cache, ["a"], ["x"], "fp", lambda ts: np.zeros((1, 3), np.float32))
    with pytest.raises(ConfigError):
        EmbeddingCache(MemoryCache(1 << 20), 0)
    with pytest.raises(InputError, match="fingerprint"):
        cache.get_many(["a"], "")
