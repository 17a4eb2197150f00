"""One behavioural suite over every ShardClient (issue 16): a local Shard, and a
ReplicatedShard over an owner and a read-only replica of the same directory. (The Ray
actor client runs it in ``tests/cluster/test_ray_retriever.py``.)

Each is written through ``apply`` and must then search, fetch, count and report exactly
what was acknowledged — a replica included, right after the write returned."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ragfleet.cluster.client import ShardClient
from ragfleet.cluster.replicated import ReplicatedShard
from ragfleet.config import CollectionConfig
from ragfleet.errors import ReadOnlyError
from ragfleet.index.shard import Shard, ShardQuery
from ragfleet.index.writebatch import ChunkRecord
from ragfleet.ingest.hashing import content_hash
from ragfleet.search.stats import CollectionStats

FINGERPRINT = "contract-test"
TEXTS = {
    "a": ["Rivers carve canyons over millions of years.", "The canyon walls are layered."],
    "b": ["A violin has four strings tuned in fifths."],
    "c": ["Glaciers move slowly down the valley."],
}


def records(encoder: Any, doc_id: str, texts: list[str], version: str = "v1") -> list[ChunkRecord]:
    vectors = encoder.encode(texts, kind="document")
    return [
        ChunkRecord(
            chunk_id=f"{doc_id}#{n}", doc_id=doc_id, n=n, text=t, title="", metadata={"v": version},
            content_hash=content_hash("", t), doc_hash=f"{doc_id}-{version}", vector=v,
        )
        for n, (t, v) in enumerate(zip(texts, vectors, strict=True))
    ]  # fmt: skip


Factory = Callable[[Path], tuple[ShardClient, Callable[[], None]]]


def _local(path: Path, encoder: Any) -> tuple[ShardClient, Callable[[], None]]:
    shard = Shard(path, 0, CollectionConfig(), encoder.dim, FINGERPRINT)
    return shard, shard.close


def _replicated(path: Path, encoder: Any) -> tuple[ShardClient, Callable[[], None]]:
    owner = Shard(path, 0, CollectionConfig(), encoder.dim, FINGERPRINT)
    reader = Shard(path, 0, CollectionConfig(), encoder.dim, FINGERPRINT, read_only=True)
    shard = ReplicatedShard([owner, reader])

    def close() -> None:
        shard.close()
        reader.close()
        owner.close()

    return shard, close


@pytest.fixture(params=["local", "replicated"])
def client(request: pytest.FixtureRequest, tmp_path: Path, encoder: Any) -> Iterator[ShardClient]:
    make = {"local": _local, "replicated": _replicated}[request.param]
    shard, close = make(tmp_path / "shard-000", encoder)
    yield shard
    close()


def _dense(client: ShardClient, encoder: Any, query: str, k: int = 10) -> list[str]:
    q = ShardQuery(k=k, vectors=encoder.encode([query], kind="query"))
    return client.search(q).dense[0].ids.tolist()


def _sparse(client: ShardClient, query: str) -> list[str]:
    from ragfleet.config import AnalyzerConfig
    from ragfleet.index.sparse.analyzer import Analyzer

    terms = Analyzer(AnalyzerConfig()).analyze_batch([query])[0]
    stats = CollectionStats.merge([client.term_stats(terms)])
    q = ShardQuery(k=10, terms=[terms], idf={t: stats.idf(t) for t in terms}, avgdl=stats.avgdl)
    return client.search(q).sparse[0].ids.tolist()


def test_a_write_is_searchable_fetchable_and_counted(client: ShardClient, encoder: Any) -> None:
    seqs = [client.apply(records(encoder, d, t)) for d, t in TEXTS.items()]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert _dense(client, encoder, "how do rivers make canyons", k=1) == ["a#0"]
    assert _sparse(client, "violin strings")[0] == "b#0"
    hits = client.search(ShardQuery(k=10, vectors=encoder.encode(["valley"], kind="query")))
    rows = hits.dense[0].rows.tolist()
    fetched = client.fetch(rows)
    assert sorted(c.chunk_id for c in fetched.values()) == ["a#0", "a#1", "b#0", "c#0"]
    assert dict(client.doc_hashes()) == {"a": "a-v1", "b": "b-v1", "c": "c-v1"}
    assert client.live_docs(["c", "zz", "a"]) == ["c", "a"]
    stats = client.stats()
    assert (stats["rows"], stats["live_chunks"], stats["documents"]) == (4, 4, 3)
    assert client.term_stats(["violin"]).n_docs == 4


def test_replacements_and_deletes_are_seen_at_once(client: ShardClient, encoder: Any) -> None:
    for d, t in TEXTS.items():
        client.apply(records(encoder, d, t))
    client.apply(records(encoder, "a", ["Rivers now flow through a single channel."], "v2"))
    client.apply([], ["b"])
    ids = _dense(client, encoder, "violin strings rivers canyons glacier")
    assert sorted(ids) == ["a#0", "c#0"]  # a#1 of the old version and b are gone
    assert dict(client.doc_hashes()) == {"a": "a-v2", "c": "c-v1"}
    assert client.live_docs(["a", "b"]) == ["a"]
    stats = client.stats()
    assert (stats["rows"], stats["live_chunks"], stats["documents"], stats["tombstones"]) == (
        5,
        2,
        2,
        3,
    )
    assert client.fetch(list(range(5))).keys() == {3, 4}
    assert _sparse(client, "violin") == []


def test_refresh_of_an_up_to_date_client_changes_nothing(client: ShardClient, encoder: Any) -> None:
    client.apply(records(encoder, "a", TEXTS["a"]))
    client.refresh()
    assert client.refresh() is False
    assert dict(client.doc_hashes()) == {"a": "a-v1"}


def test_a_read_only_shard_refuses_writes_and_catches_up(tmp_path: Path, encoder: Any) -> None:
    path = tmp_path / "shard-000"
    owner = Shard(path, 0, CollectionConfig(), encoder.dim, FINGERPRINT)
    reader = Shard(path, 0, CollectionConfig(), encoder.dim, FINGERPRINT, read_only=True)
    try:
        with pytest.raises(ReadOnlyError, match="read-only"):
            reader.apply(records(encoder, "a", TEXTS["a"]))
        owner.apply(records(encoder, "a", TEXTS["a"]))
        assert dict(reader.doc_hashes()) == {}
        assert reader.refresh() is True and dict(reader.doc_hashes()) == {"a": "a-v1"}
        owner.checkpoint()  # a checkpoint moves files: the reader reopens from it
        owner.apply(records(encoder, "b", TEXTS["b"]))
        assert reader.refresh() is True
        assert dict(reader.doc_hashes()) == {"a": "a-v1", "b": "b-v1"}
        assert np.array_equal(reader.rows.live, owner.rows.live)
    finally:
        reader.close()
        owner.close()
