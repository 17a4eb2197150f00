"""One behavioural suite over every Retriever (issue 16): a Collection; a Fleet of local
shards with 2 replicas each; a CachedSearch over each of them; a RemoteCollection over a
real server. Each must answer the same queries — dense, sparse, hybrid, filtered,
unique_docs — with identical hits, validate a request before it reaches a shard, and
implement the protocol's properties. (The Fleet on a real Ray cluster runs this suite in
``tests/cluster/test_ray_retriever.py``.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ragfleet.errors import InputError
from ragfleet.search.request import SearchRequest
from ragfleet.search.retriever import Retriever
from ragfleet.types import Results

QUERIES = ["Who won Super Bowl 50?", "Where is Warsaw located?", "Norman conquest of England"]
REQUESTS = [
    SearchRequest(k=5, mode="dense"),
    SearchRequest(k=5, mode="sparse"),
    SearchRequest(k=5, mode="hybrid"),
    SearchRequest(k=8, mode="hybrid", unique_docs=True),
    SearchRequest(k=5, mode="hybrid", depth=40, filter={"title": {"ne": "Warsaw"}}),
]
KINDS = ["collection", "fleet", "cached-collection", "cached-fleet", "remote"]


@pytest.fixture(scope="module")
def reference(collection_factory: Any) -> Any:
    return collection_factory(shards=2)


@pytest.fixture(scope="module")
def retrievers(reference: Any, tmp_path_factory: Any, encoder: Any) -> Iterator[dict[str, Any]]:
    from tests.e2e._server import running

    from ragfleet.cache.memory import MemoryCache
    from ragfleet.cache.search import CachedSearch
    from ragfleet.client import Client
    from ragfleet.fleet import Fleet
    from ragfleet.serve.app import create_app
    from ragfleet.serve.auth import KeyStore, new_key
    from ragfleet.serve.settings import ServeSettings

    fleet = Fleet.open(reference.path, replicas=2, encoder=encoder)
    key, record = new_key("contract", ("read",), iterations=1000)
    app = create_app({"c": reference}, ServeSettings(max_k=100), KeyStore([record]))
    with running(app) as url:
        client = Client(url, key)
        yield {
            "collection": reference,
            "fleet": fleet,
            "cached-collection": CachedSearch(reference, MemoryCache(1 << 24)),
            "cached-fleet": CachedSearch(fleet, MemoryCache(1 << 24)),
            "remote": client.collection("c"),
        }
        client.close()
    fleet.close()


def _hits(res: Results) -> list[tuple[str, str, int]]:
    return [(h.chunk_id, h.text, h.rank) for h in res.hits]


@pytest.mark.parametrize("kind", KINDS)
def test_every_retriever_implements_the_protocol(retrievers: dict[str, Any], kind: str) -> None:
    r = retrievers[kind]
    assert isinstance(r, Retriever)
    assert r.defaults.k >= 1 and r.defaults.mode in ("dense", "sparse", "hybrid")
    assert r.identity == r.identity and r.identity  # stable and non-empty
    assert isinstance(r.generation, str) and r.generation == r.generation
    assert (r.encoder is None) == (kind == "remote")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "req", REQUESTS, ids=lambda r: f"{r.mode}-{r.unique_docs}-{bool(r.filter)}"
)
def test_every_retriever_answers_like_the_collection(
    retrievers: dict[str, Any], reference: Any, kind: str, req: SearchRequest
) -> None:
    r = retrievers[kind]
    for q in QUERIES:
        want = reference.search(q, req)
        got = r.search(q, req)
        assert _hits(got) == _hits(want), (kind, q)
        for a, b in zip(got.hits, want.hits, strict=True):
            assert a.score == pytest.approx(b.score, abs=1e-5)
        assert got.coverage == 1.0
        again = r.search(q, req)  # a second time: from the cache where there is one
        assert _hits(again) == _hits(want)
    batch = r.search_batch(QUERIES, req)
    assert [_hits(b) for b in batch] == [_hits(reference.search(q, req)) for q in QUERIES]


@pytest.mark.parametrize("kind", KINDS)
def test_keyword_fields_equal_a_request(retrievers: dict[str, Any], kind: str) -> None:
    r = retrievers[kind]
    a = r.search(QUERIES[0], k=3, mode="dense")
    b = r.search(QUERIES[0], SearchRequest(k=3, mode="dense"))
    assert _hits(a) == _hits(b)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"k": 0}, "k must be between"),
        ({"mode": "fuzzy"}, "mode must be"),
        ({"ef_search": 0}, "ef_search"),
        ({"filter": {"and": []}}, "non-empty list"),
    ],
)
def test_a_bad_request_is_refused_before_any_shard(
    retrievers: dict[str, Any], kind: str, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        retrievers[kind].search(QUERIES[0], **params)
    with pytest.raises(InputError, match="non-empty string"):
        retrievers[kind].search("   ")
