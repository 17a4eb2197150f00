from collections import Counter

import pytest

from ragfleet.cluster.placement import group_by_shard, hash_shard
from ragfleet.errors import ConfigError


def test_hash_shard_is_stable_and_in_range() -> None:
    # blake2b(b"doc-1", digest_size=8) little-endian mod 4, pinned so placement never drifts
    import hashlib

    expected = int.from_bytes(hashlib.blake2b(b"doc-1", digest_size=8).digest(), "little") % 4
    assert hash_shard("doc-1", 4) == expected
    assert all(0 <= hash_shard(f"d{i}", 7) < 7 for i in range(1000))


def test_hash_shard_balances() -> None:
    counts = Counter(hash_shard(f"doc-{i}", 4) for i in range(8000))
    assert min(counts.values()) > 0.9 * 2000


def test_group_by_shard_partitions() -> None:
    ids = [f"x{i}" for i in range(100)]
    groups = group_by_shard(ids, 3)
    assert sorted(d for ds in groups.values() for d in ds) == sorted(ids)
    assert all(hash_shard(d, 3) == s for s, ds in groups.items() for d in ds)


def test_bad_shard_count() -> None:
    with pytest.raises(ConfigError, match="n_shards"):
        hash_shard("a", 0)
