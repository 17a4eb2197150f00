"""Late interaction over token vectors stored at ingest, with the real int8 encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.conftest import demo_docs

from ragfleet.collection import Collection
from ragfleet.config import CollectionConfig, ShardingConfig, TokensConfig
from ragfleet.embed.token_capture import TokenCapture
from ragfleet.errors import ConfigError, InputError
from ragfleet.index.writebatch import ChunkRecord
from ragfleet.rerank.late import LateReranker
from ragfleet.types import Document

pytestmark = pytest.mark.model

Q = "Which NFL team represented the AFC at Super Bowl 50?"
CONFIG = CollectionConfig(sharding=ShardingConfig(n_shards=2), tokens=TokensConfig(enabled=True))


def _order(col: Any, q: str = Q, **kw: Any) -> list[tuple[str, float]]:
    hits = col.search(q, k=20).hits
    return [(h.chunk_id, h.score) for h in LateReranker(col, **kw).rerank(q, hits, 10)]


def _same(a: list[tuple[str, float]], b: list[tuple[str, float]]) -> None:
    assert [c for c, _ in a] == [c for c, _ in b]
    assert [s for _, s in b] == pytest.approx([s for _, s in a], abs=1e-4)


@pytest.fixture
def col(tmp_path: Path, encoder: Any) -> Any:
    c = Collection.build(tmp_path / "c", demo_docs(30), CONFIG, encoder=encoder)
    yield c
    c.close()


def test_stored_scores_are_maxsim_of_the_texts_token_vectors(col: Any) -> None:
    hits = col.search(Q, k=8).hits
    rr = LateReranker(col)
    stored = rr.score_hits(Q, hits)
    texts = rr.score(Q, [f"{h.title} {h.text}" if h.title else h.text for h in hits])
    np.testing.assert_allclose(stored, texts, rtol=2e-3)  # int8 activations vary by batch
    m = len(col.query_tokens(Q))
    assert np.all(stored <= m + 1e-3) and np.all(stored > 0)  # Σ_i max_j cos ≤ m


def test_scores_from_the_shards_equal_blocks_scored_here(col: Any) -> None:
    _same(_order(col), _order(col, via="blocks"))


def test_the_query_is_encoded_once_for_search_and_rerank(col: Any) -> None:
    capture = col.searcher.encoder
    assert isinstance(capture, TokenCapture)
    before = capture.passes
    hits = col.search(Q, k=20).hits
    LateReranker(col).rerank(Q, hits, 5)
    assert capture.passes == before + 1


def test_stats_report_bytes_per_token_and_chunk(col: Any) -> None:
    tv = col.stats()["token_vectors"]
    assert tv["codec"] == "int8" and tv["bytes_per_token"] == 384 + 2
    assert tv["bytes_per_chunk"] == pytest.approx(tv["bytes"] / col.stats()["chunks"])
    assert col.info.contract.token_vectors == "int8-pool2"  # the default pools 2-fold


def test_tokens_survive_reopen_and_a_reader_sees_the_log(col: Any, tmp_path: Path) -> None:
    before = _order(col)
    col.upsert([Document("extra", "The Denver Broncos won Super Bowl 50 for the AFC.")])
    with_extra = _order(col)
    reader = Collection.open(tmp_path / "c", encoder=col.encoder, read_only=True)
    try:  # the new document is in the writer's log only
        _same(_order(reader), with_extra)
    finally:
        reader.close()
    col.close()
    again = Collection.open(tmp_path / "c", encoder=col.encoder)
    try:
        _same(_order(again), with_extra)
        assert [c for c, _ in before] != [c for c, _ in with_extra]
        assert len(again.shards[0].tokens.segments) + len(again.shards[1].tokens.segments) >= 3
    finally:
        again.close()


def test_tokens_follow_replace_delete_and_compaction(col: Any) -> None:
    hits = col.search(Q, k=20).hits
    top = LateReranker(col, first_stage_weight=0.0).rerank(Q, hits, 3)[0]  # score: MaxSim
    col.delete([top.doc_id])
    assert np.isnan(LateReranker(col).score_hits(Q, [top])[0])  # gone since its search
    assert col.late_scores(Q, [top])[0] == 0.0  # the retriever's default for a gone chunk
    col.upsert([Document(top.doc_id, "A recipe for apple pie with cinnamon.")])
    replaced = col.search("apple pie cinnamon", k=1).hits
    assert LateReranker(col).score_hits(Q, replaced)[0] < top.score
    order = _order(col)
    col.compact(0.0)
    assert all(s.rows.n_rows == s.rows.n_live for s in col.shards)
    _same(_order(col), order)


def test_reshard_and_reindex_keep_the_reranked_order(col: Any, tmp_path: Path) -> None:
    from ragfleet.collection.reshard import reshard, reshard_to

    order = _order(col)
    col.close()
    reshard_to(tmp_path / "c", tmp_path / "r", 3)
    with Collection.open(tmp_path / "r", encoder=col.encoder) as r:
        assert r.config.tokens.enabled and len(r.shards) == 3
        _same(_order(r), order)
    reshard(tmp_path / "c", 1)  # a new generation in place
    with Collection.open(tmp_path / "c", encoder=col.encoder) as c:
        assert len(c.shards) == 1
        _same(_order(c), order)
        c.reindex("minilm-int8")  # token vectors embedded again with the (same) model
        _same(_order(c), order)


def test_a_collection_without_token_vectors_is_refused(collection_factory: Any) -> None:
    plain = collection_factory(1)
    with pytest.raises(ConfigError, match="token-vectors"):
        LateReranker(plain)
    rec = next(iter(plain.shards[0].live_chunks(limit=1)))
    record = ChunkRecord.of(rec, np.zeros(384), tokens=np.zeros((2, 386), np.uint8))
    with pytest.raises(InputError, match="does not store them"):
        plain.shards[0].apply([record])


def test_records_without_tokens_are_refused_where_they_are_stored(col: Any) -> None:
    rec = col.shards[0].live_chunks(limit=1)[0]
    with pytest.raises(InputError, match="no token vectors"):
        col.shards[0].apply([ChunkRecord.of(rec, np.ones(384))])
    with pytest.raises(InputError, match="bytes per token"):
        col.shards[0].apply([ChunkRecord.of(rec, np.ones(384), tokens=np.zeros((2, 9), np.uint8))])


def test_the_pipeline_learns_the_late_stage_cost(col: Any) -> None:
    from ragfleet.pipeline import Pipeline, PipelineConfig
    from ragfleet.rerank.base import RerankConfig

    rr = LateReranker(col, RerankConfig(candidates=20, batch_size=64))
    p = Pipeline(col, rr, config=PipelineConfig(k=20, rerank_candidates=20))
    assert not p.costs.observed("rerank")
    r = p.warm_up(Q)
    assert p.costs.observed("rerank") and r.timings_ms["rerank"] > 0
    r = p.ask(Q, budget_ms=60_000)
    assert "rerank" not in r.degraded and all("rerank" in h.scores for h in r.hits)
    assert p.rerank_plan(60_000, 20) == (20, "")
    per_candidate = p.costs.estimate("rerank")
    n, note = p.rerank_plan(p.costs.estimate("generate") + 10.5 * per_candidate, 20)
    assert n == 10 and "shortened" in note  # the planner cuts by the learned cost


def test_pooled_tokens_halve_the_vectors_and_score_as_the_texts_do(
    tmp_path: Path, encoder: Any
) -> None:
    """``pool=2``: ⌈T/2⌉ stored vectors per chunk, recorded in the contract; the stored
    scores equal MaxSim over the re-encoded texts' pooled tokens."""
    from ragfleet.embed.token_capture import maxsim_states

    config = CONFIG.replace(tokens=TokensConfig(enabled=True, pool=2))
    docs = demo_docs(12)
    with Collection.build(tmp_path / "p", docs, config, encoder=encoder) as pooled:
        assert pooled.info.contract.token_vectors == "int8-pool2"
        tv = pooled.stats()["token_vectors"]
        assert tv["pool"] == 2
        hits = pooled.search(Q, k=6).hits
        texts = [f"{h.title} {h.text}" if h.title else h.text for h in hits]
        _, states = encoder.encode_with_tokens(texts, kind="document")
        full = [len(maxsim_states(s)) for s in states]
        blocks = [pooled.shards[h.shard].token_blocks([h.chunk_id]) for h in hits]
        assert [int(b.offsets[1]) for b in blocks] == [-(-t // 2) for t in full]
        rr = LateReranker(pooled)
        np.testing.assert_allclose(rr.score_hits(Q, hits), rr.score(Q, texts), rtol=2e-3)
    with Collection.open(tmp_path / "p") as again:  # collection.json keeps the factor
        assert again.config.tokens.pool == 2


def test_the_first_stage_weight_blends_the_incoming_order(col: Any) -> None:
    hits = col.search(Q, k=20).hits
    maxsim = LateReranker(col, first_stage_weight=0.0)
    raw = maxsim.score_hits(Q, hits)
    alone = [h.chunk_id for h in maxsim.rerank(Q, hits, 20)]
    assert alone == [hits[int(i)].chunk_id for i in np.argsort(-raw, kind="stable")]
    kept = [h.chunk_id for h in LateReranker(col, first_stage_weight=1.0).rerank(Q, hits, 20)]
    assert kept == [h.chunk_id for h in hits] != alone
    rr = LateReranker(col)  # the default weight, 0.4, over the default budget of 50
    blended = rr.rerank(Q, hits, 20)
    want = rr.blend(raw, 50)
    order = np.argsort(-want, kind="stable")
    assert [h.chunk_id for h in blended] == [hits[int(i)].chunk_id for i in order]
    assert [h.score for h in blended] == pytest.approx([float(want[i]) for i in order])
    assert [h.scores["late"] for h in blended] == pytest.approx([float(raw[i]) for i in order])
    assert [h.chunk_id for h in blended] not in ([h.chunk_id for h in hits], alone)
    with pytest.raises(ConfigError, match="first-stage weight"):
        LateReranker(col, first_stage_weight=2.0)


def test_the_pipeline_blends_as_the_reranker_does(col: Any) -> None:
    from ragfleet.pipeline import Pipeline, PipelineConfig
    from ragfleet.rerank.base import RerankConfig

    rr = LateReranker(col, RerankConfig(candidates=20, batch_size=64))
    hits = col.search(Q, k=20).hits
    want = [h.chunk_id for h in rr.rerank(Q, hits, 20)]
    assert want != [h.chunk_id for h in hits]
    cfg = PipelineConfig(k=20, rerank_candidates=20, top_n=20)
    out = Pipeline(col, rr, config=cfg).ask(Q, budget_ms=60_000)
    assert "rerank" not in out.degraded
    assert [h.chunk_id for h in out.hits] == want
    assert all("late" in h.scores for h in out.hits)


def test_a_chunk_deleted_since_the_search_goes_last_and_leaves_the_rest(col: Any) -> None:
    hits = col.search(Q, k=20).hits
    rr = LateReranker(col)
    before = [h.chunk_id for h in rr.rerank(Q, hits, 20)]
    gone = before[0]
    col.delete([gone.rpartition("#")[0]])
    after = rr.rerank(Q, hits, 20)
    live = [c for c in before if not c.startswith(gone.rpartition("#")[0] + "#")]
    assert [h.chunk_id for h in after][: len(live)] == live  # one zero does not squash the rest
    assert after[-1].chunk_id.startswith(gone.rpartition("#")[0]) and "late" not in after[-1].scores
