"""Placements: hash (stable, balanced) and centroids (nearest mean vector, routing)."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ragfleet.cluster.kmeans import Centroids
from ragfleet.cluster.placement import (
    CentroidPlacement,
    HashPlacement,
    hash_shard,
    load_placement,
)
from ragfleet.config import ShardingConfig
from ragfleet.errors import CollectionError, ConfigError, InputError


def test_hash_shard_is_stable_and_in_range() -> None:
    # blake2b(b"doc-1", digest_size=8) little-endian mod 4, pinned so placement never drifts
    expected = int.from_bytes(hashlib.blake2b(b"doc-1", digest_size=8).digest(), "little") % 4
    assert hash_shard("doc-1", 4) == expected
    assert HashPlacement(4).shard_of("doc-1", None) == expected
    assert all(0 <= hash_shard(f"d{i}", 7) < 7 for i in range(1000))


def test_hash_shard_balances() -> None:
    counts = Counter(hash_shard(f"doc-{i}", 4) for i in range(8000))
    assert min(counts.values()) > 0.9 * 2000


def test_bad_shard_count() -> None:
    with pytest.raises(ConfigError, match="n_shards"):
        hash_shard("a", 0)
    with pytest.raises(ConfigError, match="between 1 and 256"):
        ShardingConfig(n_shards=1000)
    with pytest.raises(ConfigError, match="placement"):
        ShardingConfig(placement="random")  # type: ignore[arg-type]


def test_hash_placement_routes_everywhere_and_refuses_probing() -> None:
    p = HashPlacement(3)
    q = np.ones((1, 4), np.float32)
    assert p.route(q, None) is None and p.route(q, 3) is None
    with pytest.raises(InputError, match="centroid placement"):
        p.route(q, 1)


def test_centroid_placement_takes_the_nearest_mean_and_routes_to_probe_shards() -> None:
    c = Centroids(np.eye(3, dtype=np.float32))
    p = CentroidPlacement(c)
    doc = np.array([[0.1, 0.9, 0.0], [0.3, 0.7, 0.0]], np.float32)  # mean (0.2, 0.8, 0)
    assert p.shard_of("d", doc) == 1
    assert p.route(np.array([[0.0, 0.2, 0.9]], np.float32), 1) == [2]
    assert p.route(np.array([[0.0, 0.2, 0.9]], np.float32), 2) == [1, 2]
    assert p.route(np.zeros((1, 3), np.float32), None) is None
    with pytest.raises(InputError, match="chunk vectors"):
        p.shard_of("d", None)


def test_load_placement_reads_the_centroids_of_the_generation(tmp_path: Path) -> None:
    assert isinstance(load_placement(ShardingConfig(n_shards=2), tmp_path), HashPlacement)
    sharding = ShardingConfig(n_shards=2, placement="centroids")
    with pytest.raises(CollectionError, match="no centroids"):
        load_placement(sharding, tmp_path)
    Centroids(np.eye(2, dtype=np.float32)).save(tmp_path)
    p = load_placement(sharding, tmp_path)
    assert p.kind == "centroids" and p.n_shards == 2
    with pytest.raises(CollectionError, match="2 centroids for 3 shards"):
        load_placement(ShardingConfig(n_shards=3, placement="centroids"), tmp_path)
