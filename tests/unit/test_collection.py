"""The embedded engine end to end with the real int8 MiniLM encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragfleet.collection import Collection
from ragfleet.errors import CollectionError, EmbeddingContractError, InputError
from ragfleet.types import Document


def test_search_returns_cited_hits_with_timings(collection_factory) -> None:  # type: ignore[no-untyped-def]
    col = collection_factory(1)
    res = col.search("Which NFL team represented the AFC at Super Bowl 50?", k=5)
    assert res.hits[0].doc_id.startswith("Super_Bowl_50")
    assert [h.rank for h in res.hits] == [1, 2, 3, 4, 5]
    assert all(h.text and h.chunk_id.startswith(h.doc_id + "#") for h in res.hits)
    assert {"embed", "search", "fetch", "total"} <= set(res.timings_ms)
    assert set(res.hits[0].scores) == {"dense", "sparse", "fused"}
    scores = [h.score for h in res.hits]
    assert scores == sorted(scores, reverse=True)


def test_unique_docs_keeps_each_documents_best_chunk(collection_factory) -> None:  # type: ignore[no-untyped-def]
    res = collection_factory(1).search("Super Bowl", k=8, unique_docs=True)
    docs = [h.doc_id for h in res.hits]
    assert len(docs) == len(set(docs)) == 8


def _nested(depth: int) -> dict[str, object]:
    f: dict[str, object] = {"year": 2000}
    for _ in range(depth):
        f = {"not": f}
    return f


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be between 1 and 10,000"),
        ({"k": 10**20}, "k must be between 1 and 10,000"),
        ({"k": True}, "k must be an integer"),
        ({"mode": "fuzzy"}, "mode must be"),
        ({"filter": "{bad"}, "not valid JSON"),
        ({"depth": 0}, "depth must be between 1"),
        ({"ef_search": 0}, "ef_search must be between 1"),
        ({"nprobe": -3}, "nprobe must be between 1"),
        ({"timeout_ms": 0}, "timeout_ms must be > 0"),
        ({"timeout_ms": -1}, "timeout_ms must be > 0"),
        ({"timeout_ms": float("nan")}, "timeout_ms must be a number"),
        ({"filter": {"year": {"in": list(range(300))}}}, "at most 256"),
        ({"filter": {"or": [{"a": i} for i in range(2000)]}}, "at most 256"),
        ({"filter": _nested(200)}, "nests deeper than 8"),
        ({"kk": 3}, "unknown search parameter"),
    ],
)
def test_bad_queries_raise_input_error(collection_factory, kwargs, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match=message):
        collection_factory(1).search("a question", **kwargs)
    with pytest.raises(InputError, match="non-empty string"):
        collection_factory(1).search("   ")


def test_reopen_gives_identical_results(collection_factory, encoder) -> None:  # type: ignore[no-untyped-def]
    col = collection_factory(4)
    before = col.search("Warsaw river", k=10).to_dict()["hits"]
    again = Collection.open(col.path, encoder=encoder, read_only=True)
    try:
        assert again.search("Warsaw river", k=10).to_dict()["hits"] == before
    finally:
        again.close()


def test_contract_mismatch_is_refused(collection_factory) -> None:  # type: ignore[no-untyped-def]
    from ragfleet.embed.registry import load_encoder

    col = collection_factory(1)
    with pytest.raises(EmbeddingContractError) as err:
        Collection.open(col.path, encoder=load_encoder("minilm"), read_only=True)
    pinned = col.info.contract.fingerprint()
    assert pinned in str(err.value)


def test_tampered_probe_is_refused(tmp_path: Path, collection_factory, encoder) -> None:  # type: ignore[no-untyped-def]
    import shutil

    src = collection_factory(1).path
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    doc = json.loads((dst / "collection.json").read_text())
    doc["contract"]["probes"][0][1] = [-x for x in doc["contract"]["probes"][0][1]]
    (dst / "collection.json").write_text(json.dumps(doc))
    with pytest.raises(EmbeddingContractError, match="cosine"):
        Collection.open(dst, encoder=encoder)


def test_build_refuses_existing_path_and_empty_corpus(tmp_path: Path, encoder) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "exists").mkdir()
    with pytest.raises(CollectionError, match="already exists"):
        Collection.build(tmp_path / "exists", [Document("a", "text")], encoder=encoder)
    with pytest.raises(InputError):
        Collection.build(tmp_path / "empty", [], encoder=encoder)
    assert not (tmp_path / "empty").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["exists"]  # no half-built leftovers


def test_upsert_replace_delete_are_visible_on_return(fresh_collection) -> None:  # type: ignore[no-untyped-def]
    col = fresh_collection
    col.upsert([Document("a", "The zebra lives in the savanna."), Document("b", "Cats purr.")])
    assert col.search("zebra", k=1, mode="sparse").hits[0].doc_id == "a"
    report = col.upsert(
        [Document("a", "Penguins live in Antarctica."), Document("b", "Cats purr.")]
    )
    assert (report.documents_written, report.documents_unchanged) == (1, 1)
    assert col.search("zebra", k=5, mode="sparse").hits == ()
    assert col.search("penguins", k=1, mode="hybrid").hits[0].text.startswith("Penguins")
    assert col.delete(["a", "missing"]) == 1
    assert all(h.doc_id != "a" for h in col.search("penguins", k=5, mode="dense").hits)
    assert col.stats()["documents"] == 1


def test_invalid_batch_writes_nothing(fresh_collection) -> None:  # type: ignore[no-untyped-def]
    col = fresh_collection
    bad = [
        Document("ok", "fine text"),
        Document("ok", "duplicate id"),
        Document("empty", "  "),
        Document("meta", "x", metadata={"when": object()}),
        Document("surrogate", "bad \udc80 text"),
    ]
    with pytest.raises(InputError) as err:
        col.upsert(bad)
    message = str(err.value)
    for expected in ("duplicate doc_id", "not JSON", "not valid UTF-8", "--skip-invalid"):
        assert expected in message
    assert "empty" not in message  # a document with no text is skipped, not invalid
    assert col.stats()["documents"] == 0


def test_skip_invalid_writes_the_rest_and_reports_what_it_skipped(fresh_collection) -> None:  # type: ignore[no-untyped-def]
    col = fresh_collection
    docs = [
        Document("ok", "fine text"),
        Document("ok", "duplicate id"),
        Document("empty", "  "),
        Document("title-only", "", title="Warsaw"),
        Document("surrogate", "bad \udc80 text"),
    ]
    report = col.upsert(docs, skip_invalid=True)
    assert (report.documents_written, report.documents_empty, report.documents_invalid) == (
        2,
        1,
        2,
    )
    assert dict(report.skipped) == {
        "empty": "no text",
        "ok": "duplicate doc_id in this batch",
        "surrogate": "text is not valid UTF-8 (unpaired surrogate)",
    }
    assert sorted(col.doc_ids()) == ["ok", "title-only"]
    assert col.search("Warsaw", k=1, mode="sparse").hits[0].doc_id == "title-only"


def test_documents_with_no_text_are_skipped_and_reported(fresh_collection) -> None:  # type: ignore[no-untyped-def]
    """A real corpus with a few empty documents (Cranfield has 2 of 1,400) is ingested."""
    col = fresh_collection
    docs = [Document(f"d{i}", f"document number {i} about rivers") for i in range(5)]
    docs += [Document("blank-1", ""), Document("blank-2", " \n ", title="  ")]
    report = col.upsert(docs)
    assert report.documents_written == 5 and report.documents_empty == 2
    assert report.skipped_summary() == "2 skipped: blank-1 (no text), blank-2 (no text)"
    assert len(col.doc_ids()) == 5


def test_metadata_filter_prefilters_both_signals(fresh_collection) -> None:  # type: ignore[no-untyped-def]
    col = fresh_collection
    docs = [
        Document(
            f"d{i}", f"Report number {i} about rivers and bridges.", metadata={"year": 2000 + i}
        )
        for i in range(30)
    ]
    col.upsert(docs)
    for mode in ("dense", "sparse", "hybrid"):
        res = col.search("rivers and bridges", k=5, mode=mode, filter={"year": {"gte": 2027}})
        assert sorted(h.doc_id for h in res.hits) == ["d27", "d28", "d29"], mode


def test_deadline_before_any_shard_answers_gives_flagged_empty_result(collection_factory) -> None:  # type: ignore[no-untyped-def]
    """A shard made slow on purpose: a query whose deadline passes before any shard has sent
    its term statistics returns no hits, coverage 0 and every shard named — not an error."""
    import threading

    from ragfleet.cluster.scatter import Scatter
    from ragfleet.search.request import SearchRequest
    from ragfleet.search.searcher import Searcher

    col = collection_factory(4)
    release = threading.Event()

    class Slow:
        def __init__(self, shard) -> None:  # type: ignore[no-untyped-def]
            self.shard = shard
            self.shard_id = shard.shard_id

        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            return getattr(self.shard, name)

        def term_stats(self, terms):  # type: ignore[no-untyped-def]
            release.wait(5)
            return self.shard.term_stats(terms)

    s = col.searcher
    scatter = Scatter(4)
    try:
        slow = Searcher([Slow(x) for x in col.shards], s.encoder, s.analyzer, s.defaults, scatter)
        res = slow.search(["Super Bowl"], SearchRequest(k=5, mode="hybrid", timeout_ms=50))[0]
    finally:
        release.set()
        scatter.close()
    assert res.hits == () and res.coverage == 0.0 and res.missing_shards == (0, 1, 2, 3)
