"""The generation in the key: after a write, the next query computes the new answer."""

from __future__ import annotations

import json

from ragfleet.cache import MemoryCache, SingleFlight, result_key


class TinyCollection:
    """A real (if tiny) searchable store whose generation a write bumps."""

    def __init__(self) -> None:
        self.docs: dict[str, str] = {"d1": "bm25 ranks by term frequency"}
        self.generation = 0
        self.searches = 0

    def upsert(self, doc_id: str, text: str) -> None:
        self.docs[doc_id] = text
        self.generation += 1

    def search(self, query: str) -> list[str]:
        self.searches += 1
        terms = set(query.lower().split())
        return sorted(d for d, text in self.docs.items() if terms & set(text.split()))


def cached_search(
    col: TinyCollection, cache: MemoryCache, sf: SingleFlight[bytes], q: str
) -> list[str]:
    key = result_key("results:tiny", q, {"k": 10}, col.generation)
    hit = cache.get(key)
    if hit is None:
        hit, _ = sf.do(key, lambda: json.dumps(col.search(q)).encode())
        cache.set(key, hit)
    result: list[str] = json.loads(hit)
    return result


def test_upsert_changes_the_next_answer() -> None:
    col, cache, sf = TinyCollection(), MemoryCache(max_bytes=1 << 16), SingleFlight[bytes]()
    assert cached_search(col, cache, sf, "BM25") == ["d1"]
    assert cached_search(col, cache, sf, "  bm25 ") == ["d1"]  # served from the cache
    assert col.searches == 1
    col.upsert("d2", "bm25 with dense fusion")
    assert cached_search(col, cache, sf, "bm25") == ["d1", "d2"]  # new generation: recomputed
    assert col.searches == 2
