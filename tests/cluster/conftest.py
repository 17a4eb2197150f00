"""A real local Ray cluster for the tests in this folder: a head and a second node on
loopback, started once per session and always stopped (by the pids it started).

Skipped with the reason when Ray is not installed (``pip install 'ray[default]'``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests import services


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    pytest.importorskip("ray", reason="Ray tests need ray: pip install 'ray[default]==2.60.0'")
    import ray

    from ragfleet.cluster.local_ray import LocalRayCluster

    logs = tmp_path_factory.mktemp("ray-logs")
    cluster = LocalRayCluster.start(workers=1, log_dir=logs)
    for pid in cluster.pids:
        services.record("ray-node", pid)
    try:
        ray.init(address=cluster.address, namespace="ragfleet-tests", log_to_driver=False)
        yield cluster
    finally:
        ray.shutdown()
        cluster.stop()
        for pid in cluster.pids:
            services.forget(pid)


@pytest.fixture(scope="session")
def ray_collection(tmp_path_factory: pytest.TempPathFactory, encoder) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A 2-shard collection of 40 demo paragraphs, with token vectors, on a path every node
    sees (one machine)."""
    from tests.conftest import demo_docs

    from ragfleet.collection import Collection
    from ragfleet.config import CollectionConfig, ShardingConfig, TokensConfig

    path: Path = tmp_path_factory.mktemp("ray-col") / "c"
    config = CollectionConfig(sharding=ShardingConfig(n_shards=2), tokens=TokensConfig(True))
    col = Collection.build(path, demo_docs(40), config, encoder=encoder)
    os.sync()
    yield col
    col.close()
