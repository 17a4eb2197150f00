"""Token pooling: Ward clustering of a chunk's token vectors into ⌈T/f⌉ cluster means."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragfleet.config import TokensConfig
from ragfleet.errors import ConfigError
from ragfleet.index.tokens_pool import MAX_POOL_FACTOR, pool_tokens, pooled_count


def _rows(a: np.ndarray) -> np.ndarray:
    """Rows in lexicographic order, to compare clusterings whatever their order."""
    return a[np.lexsort(a.T[::-1])]


@pytest.mark.parametrize(("n", "f"), [(1, 2), (2, 2), (5, 2), (37, 3), (120, 2), (64, 8)])
def test_pooling_equals_scipy_ward_cluster_means(n: int, f: int) -> None:
    hierarchy = pytest.importorskip("scipy.cluster.hierarchy")
    x = np.random.default_rng(n * 10 + f).normal(size=(n, 12)).astype(np.float32)
    got = pool_tokens(x, f)
    assert got.shape == (pooled_count(n, f), 12) and got.dtype == np.float32
    if n < 2:
        np.testing.assert_array_equal(got, x)
        return
    labels = hierarchy.fcluster(hierarchy.linkage(x.astype(np.float64), "ward"),
                                t=pooled_count(n, f), criterion="maxclust")  # fmt: skip
    want = np.stack([x[labels == c].mean(axis=0) for c in np.unique(labels)])
    np.testing.assert_allclose(_rows(got), _rows(want), atol=1e-5)


def test_separated_groups_pool_to_their_means_in_token_order() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(4, 8, dtype=np.float32) * 10
    x = np.concatenate([c + 0.01 * rng.normal(size=(2, 8)) for c in centres]).astype(np.float32)
    got = pool_tokens(x, 2)
    np.testing.assert_allclose(got, x.reshape(4, 2, 8).mean(axis=1), atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 60), st.integers(1, MAX_POOL_FACTOR), st.integers(0, 2**16))
def test_counts_means_and_determinism(n: int, f: int, seed: int) -> None:
    x = np.random.default_rng(seed).normal(size=(n, 6)).astype(np.float32)
    got = pool_tokens(x, f)
    assert len(got) == (n if f == 1 else -(-n // f))
    if n:  # each output is a mean of inputs: the totals agree when weighted by cluster size
        assert np.all(got.min(axis=0) >= x.min(axis=0) - 1e-5)
        assert np.all(got.max(axis=0) <= x.max(axis=0) + 1e-5)
    np.testing.assert_array_equal(got, pool_tokens(x, f))
    if f == 1:
        np.testing.assert_array_equal(got, x)


@pytest.mark.parametrize("bad", [0, -1, MAX_POOL_FACTOR + 1, 1.5, True])
def test_bad_factors_are_config_errors(bad: object) -> None:
    with pytest.raises(ConfigError, match="pool factor"):
        pool_tokens(np.zeros((4, 2), np.float32), bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="pool factor"):
        TokensConfig(enabled=True, pool=bad)  # type: ignore[arg-type]


def test_a_config_from_before_pooling_keeps_every_token() -> None:
    from ragfleet.config import CollectionConfig

    old = CollectionConfig().to_dict()
    del old["tokens"]["pool"]
    old["tokens"]["enabled"] = True
    assert CollectionConfig.from_dict(old).tokens.pool == 1
    assert CollectionConfig.from_dict(CollectionConfig().to_dict()).tokens.pool == 2


def test_the_contract_records_the_pool_factor() -> None:
    assert TokensConfig(enabled=True, pool=1).spec == "int8"
    assert TokensConfig(enabled=True).spec == "int8-pool2"  # the default pools 2-fold
    assert TokensConfig(enabled=True, codec="int4", pool=3).spec == "int4-pool3"
    assert TokensConfig(enabled=False, pool=2).spec == ""
