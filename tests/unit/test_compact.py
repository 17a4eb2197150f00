"""Online compaction: disk reclaimed, results equal a clean rebuild, queries never fail."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import demo_docs

from ragfleet.collection import Collection
from ragfleet.collection.compact import tombstone_ratio
from ragfleet.config import CollectionConfig, ShardingConfig
from ragfleet.errors import ConfigError
from ragfleet.index.shard import recover_swap
from ragfleet.search.request import SearchRequest

QUERIES = ["Super Bowl halftime show", "Denver Broncos defense", "Santa Clara stadium"]


def _disk(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _top(col: Collection) -> list[list[tuple[str, float]]]:
    out = []
    for mode in ("dense", "sparse"):
        req = SearchRequest(k=10, mode=mode)  # type: ignore[arg-type]
        out += [
            [(h.chunk_id, round(h.score, 4)) for h in r.hits]
            for r in col.search_batch(QUERIES, req)
        ]
    return out


def test_compaction_reclaims_disk_and_equals_a_clean_rebuild(tmp_path: Path, encoder: Any) -> None:
    config = CollectionConfig(sharding=ShardingConfig(n_shards=2))
    docs = demo_docs(40)
    col = Collection.build(tmp_path / "c", docs, config, encoder=encoder)
    col.delete([d.doc_id for d in docs[::2]])
    col.checkpoint()
    before = _disk(col.path)
    assert all(tombstone_ratio(s) > 0.2 for s in col.shards)
    failures: list[BaseException] = []
    stop = threading.Event()

    def query() -> None:
        while not stop.is_set():
            try:
                for hits in _top(col):
                    assert hits
            except BaseException as e:  # any failure of a concurrent query fails the test
                failures.append(e)
                return
            time.sleep(0.001)

    reader = threading.Thread(target=query)
    reader.start()
    try:
        assert col.compact(0.2) == [0, 1]
    finally:
        stop.set()
        reader.join()
    assert not failures, failures
    assert all(s.stats()["tombstones"] == 0 for s in col.shards)
    assert _disk(col.path) < 0.75 * before
    got = _top(col)
    clean = Collection.build(tmp_path / "clean", docs[1::2], config, encoder=encoder)
    with clean:
        assert got == _top(clean)
    path = col.path
    col.close()
    with Collection.open(path, encoder=encoder) as again:
        assert _top(again) == got


def test_below_the_threshold_nothing_is_rebuilt(fresh_collection: Collection) -> None:
    col = fresh_collection
    col.upsert(demo_docs(8))
    col.delete([demo_docs(1)[0].doc_id])
    assert col.compact(0.9) == []
    with pytest.raises(ConfigError, match="threshold"):
        col.compact(1.5)


def test_recover_swap_finishes_or_undoes_an_interrupted_swap(tmp_path: Path) -> None:
    shard = tmp_path / "shard-000"
    (tmp_path / "shard-000.ready").mkdir()
    (tmp_path / "shard-000.ready" / "marker").write_text("new")
    (tmp_path / "shard-000.compacting").mkdir()
    recover_swap(shard)  # crashed between the two renames: the complete new shard wins
    assert (shard / "marker").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard-000"]
    (tmp_path / "shard-000.old").mkdir()
    recover_swap(shard)  # crashed after the swap, before removing the old directory
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard-000"]
