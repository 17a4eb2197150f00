"""CachedSearch over a real (tiny) collection: exact and semantic hits, invalidation by
writes, single-flight, and a dead Redis that costs no query."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ragfleet.cache import CacheMetrics, MemoryCache, RedisCache, results_to_bytes
from ragfleet.cache.search import CachedSearch, SemanticCacheConfig
from ragfleet.collection import Collection
from ragfleet.errors import ConfigError, InputError
from ragfleet.search.request import SearchRequest
from ragfleet.types import Document

pytest.importorskip("faiss", reason="faiss is not installed: pip install 'ragfleet[index]'")

DOCS = [
    Document("eiffel", "The Eiffel Tower is a wrought-iron tower in Paris, France."),
    Document("photo", "Photosynthesis converts light energy into chemical energy in plants."),
    Document("wall", "The Great Wall of China stretches thousands of kilometres."),
    Document("python", "Python is a programming language created by Guido van Rossum."),
    Document("mitochondria", "Mitochondria produce most of the cell's supply of ATP."),
    Document("moon", "The Moon is Earth's only natural satellite."),
]


def ids(results: Any) -> list[str]:
    return [h.doc_id for h in results.hits]


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory, encoder: Any) -> Iterator[Collection]:
    col = Collection.build(tmp_path_factory.mktemp("cached") / "c", DOCS, encoder=encoder)
    yield col
    col.close()


@pytest.fixture
def writable(tmp_path: Path, encoder: Any) -> Iterator[Collection]:
    col = Collection.build(tmp_path / "c", DOCS, encoder=encoder)
    yield col
    col.close()


def cached(col: Collection, **kwargs: Any) -> CachedSearch:
    return CachedSearch(col, MemoryCache(max_bytes=1 << 22), **kwargs)


def test_miss_then_exact_hit_of_the_normalised_query(collection: Collection) -> None:
    cs = cached(collection)
    first = cs.search("Where is the Eiffel Tower?", k=3)
    second = cs.search("  where is the EIFFEL   tower? ", k=3)
    assert first.to_dict()["cache"] == {"hit": False, "kind": None}
    assert second.to_dict()["cache"] == {"hit": True, "kind": "exact"}
    assert second.hits == first.hits == collection.search("Where is the Eiffel Tower?", k=3).hits
    assert ids(first)[0] == "eiffel"
    assert set(second.timings_ms) == {"cache", "total"}
    assert "cache" in first.timings_ms and "search" in first.timings_ms
    results = cs.stats()["results"]
    assert (results["hit"], results["miss"], results["error"]) == (1, 1, 0)


@pytest.mark.parametrize(
    "other",
    [
        {"k": 2},
        {"mode": "dense"},
        {"mode": "sparse"},
        {"depth": 7},
        {"unique_docs": True},
        {"ef_search": 32},
        {"filter": {"doc_id": "moon"}},
    ],
)
def test_every_answer_changing_parameter_is_in_the_key(
    collection: Collection, other: dict[str, Any]
) -> None:
    cs = cached(collection)
    cs.search("what do plants do with light", k=3)
    changed = cs.search("what do plants do with light", **{"k": 3, **other})
    assert changed.cache.hit is False
    again = cs.search("what do plants do with light", **{"k": 3, **other})
    assert again.cache.hit is True and again.hits == changed.hits


def test_defaults_and_timeout_share_the_entry(collection: Collection) -> None:
    cs = cached(collection)
    default_k = collection.config.search.k
    cs.search("the moon")
    assert cs.search("the moon", k=default_k, timeout_ms=5_000).cache.hit is True


def test_upsert_that_changes_the_answer_is_seen_by_the_next_query(writable: Collection) -> None:
    cs = cached(writable)
    query = "Which tower is in Paris?"
    before = cs.search(query, k=1, mode="dense")
    assert ids(before) == ["eiffel"] and cs.search(query, k=1, mode="dense").cache.hit
    generation = writable.generation
    writable.upsert([Document("eiffel", "Bananas are a yellow tropical fruit.")])
    writable.upsert([Document("tower", "The Montparnasse Tower is a skyscraper in Paris.")])
    assert writable.generation != generation
    after = cs.search(query, k=1, mode="dense")
    assert after.cache.hit is False
    assert ids(after) == ["tower"]
    assert after.hits == writable.search(query, k=1, mode="dense").hits
    assert cs.search(query, k=1, mode="dense").cache.hit is True


def test_concurrent_identical_misses_search_once(collection: Collection) -> None:
    backend = MemoryCache(max_bytes=1 << 22)
    cs = CachedSearch(collection, backend)
    barrier = threading.Barrier(16)
    out: list[Any] = [None] * 16

    def work(i: int) -> None:
        barrier.wait()
        out[i] = cs.search("the Great Wall of China", k=3)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert backend.stats().sets == 1  # one real search stored its answer; nobody else searched
    assert all(r.hits == out[0].hits for r in out)
    stats = cs.stats()["results"]
    assert stats["hit"] + stats["miss"] == 16


def test_search_batch_serves_hits_and_searches_misses_once(collection: Collection) -> None:
    backend = MemoryCache(max_bytes=1 << 22)
    cs = CachedSearch(collection, backend)
    cs.search("the moon", k=2)
    queries = ["the moon", "python language", "Python  language", "ATP in cells"]
    out = cs.search_batch(queries, SearchRequest(k=2))
    assert [r.cache.hit for r in out] == [True, False, False, False]
    assert backend.stats().sets == 3  # the moon, then two new keys (the duplicate once)
    for q, r in zip(queries, out, strict=True):
        assert r.hits == collection.search(q, k=2).hits


def test_corrupt_entry_is_an_error_and_a_miss_never_a_failure(collection: Collection) -> None:
    backend = MemoryCache(max_bytes=1 << 22)
    cs = CachedSearch(collection, backend)
    cs.search("the moon", k=2)
    (key,) = backend.lru_keys()
    backend.set(key, b'{"format": 1, "hits": "not a list"}')
    r = cs.search("the moon", k=2)
    assert r.cache.hit is False and ids(r) == ids(collection.search("the moon", k=2))
    assert cs.stats()["results"]["error"] == 1
    assert cs.search("the moon", k=2).cache.hit is True  # the recomputed answer replaced it


def test_invalid_queries_raise(collection: Collection) -> None:
    cs = cached(collection)
    for bad in ("", "   ", None):
        with pytest.raises(InputError, match="non-empty string"):
            cs.search(bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs a result backend"):
        CachedSearch(collection, None, semantic=SemanticCacheConfig())
    with pytest.raises(ConfigError, match="threshold"):
        SemanticCacheConfig(threshold=1.5)


def cosine(encoder: Any, a: str, b: str) -> float:
    va, vb = encoder.encode([a, b], kind="query")
    return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb)))


A = "How do plants turn sunlight into energy?"
B = "How do plants convert sunlight into energy?"


@pytest.mark.parametrize("margin", [-0.005, 0.005])
def test_semantic_hit_at_threshold_and_miss_above_it(
    collection: Collection, encoder: Any, margin: float
) -> None:
    cos = cosine(encoder, A, B)
    assert 0.8 < cos < 0.999  # a paraphrase, not the same query
    threshold = cos + margin
    emb = MemoryCache(max_bytes=1 << 20)
    cs = cached(collection, semantic=SemanticCacheConfig(threshold=threshold), embeddings=emb)
    first = cs.search(A, k=3)
    second = cs.search(B, k=3)
    if margin < 0:  # cos >= threshold
        assert second.to_dict()["cache"] == {
            "hit": True,
            "kind": "semantic",
            "matched_query": A,
            "similarity": pytest.approx(cos, abs=1e-5),
        }
        assert second.hits == first.hits
        assert cs.stats()["semantic"]["hit"] == 1
    else:
        assert second.cache == first.cache  # a miss: searched for itself
        assert second.hits == collection.search(B, k=3).hits
        assert cs.stats()["semantic"]["miss"] == 2
    assert cs.search(A, k=3).cache.kind == "exact"  # an exact hit wins over a semantic one
    assert cs.stats()["embeddings:query"]["miss"] == 2  # each query text embedded once


def test_semantic_cache_respects_parameters_and_writes(writable: Collection, encoder: Any) -> None:
    threshold = cosine(encoder, A, B) - 0.01
    cs = cached(writable, semantic=SemanticCacheConfig(threshold=threshold))
    cs.search(A, k=3)
    assert cs.search(B, k=2).cache.hit is False  # another k: another answer
    writable.upsert([Document("leaf", "Leaves capture sunlight for photosynthesis.")])
    assert cs.search(B, k=3).cache.hit is False  # a write: the cached answer may be stale
    assert cs.search(A, k=3).cache.hit is True  # B's answer is close enough for A


def test_no_backend_still_searches_and_reports_misses(collection: Collection) -> None:
    cs = CachedSearch(collection, None)
    for _ in range(2):
        r = cs.search("the moon", k=2)
        assert r.cache.hit is False and r.hits == collection.search("the moon", k=2).hits


def test_results_bytes_are_json(collection: Collection) -> None:
    data = results_to_bytes(collection.search("the moon", k=2))
    assert data.startswith(b'{"format":1,"hits":[')


def test_dead_redis_fails_no_query(
    collection: Collection, start_redis: Callable[[int | None], Any]
) -> None:
    server = start_redis(None)
    redis = RedisCache(server.url, prefix="cached-search-test:", retry_after_s=0.2)
    metrics = CacheMetrics()
    cs = CachedSearch(collection, redis, metrics=metrics)
    queries = ["the moon", "python language", "ATP in cells", "Great Wall"] * 5
    expected = {q: collection.search(q, k=2).hits for q in set(queries)}
    served = []
    for i, q in enumerate(queries):
        if i == 8:
            server.kill()
        served.append(cs.search(q, k=2))
    assert [r.hits for r in served] == [expected[q] for q in queries]  # 0 failed, 0 wrong
    assert any(r.cache.hit for r in served[:8])
    assert not any(r.cache.hit for r in served[8:])
    assert redis.stats().errors >= 1 and not redis.available
    redis.close()
