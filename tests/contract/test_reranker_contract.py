"""One behavioural suite over every Reranker: MaxSim re-encoding at query time, late
interaction over stored token vectors (scoring on the shards and from returned blocks),
and a cross-encoder where a trained one is on disk (``RAGFLEET_CROSS_ENCODER``; skipped
otherwise, none ships with weights). Each must keep the candidate budget, return the
re-scored hits in descending score order renumbered from 1 with ``scores["rerank"]``,
leave hits beyond the budget in their order, not mutate its input, refuse bad requests,
and put the passage that answers the query first."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ragfleet.errors import InputError
from ragfleet.rerank.base import RerankConfig, Reranker

pytestmark = pytest.mark.model

KINDS = ["maxsim", "late-scores", "late-blocks", "cross-encoder"]
Q = "Which NFL team represented the AFC at Super Bowl 50?"


@pytest.fixture(scope="module")
def late_collection(collection_factory: Any) -> Any:
    return collection_factory(4, tokens=True)


@pytest.fixture(params=KINDS)
def reranker(request: pytest.FixtureRequest, late_collection: Any, encoder: Any) -> Iterator[Any]:
    config = RerankConfig(candidates=6, batch_size=4)
    kind = request.param
    if kind == "maxsim":
        from ragfleet.rerank.maxsim import MaxSimReranker

        yield MaxSimReranker(encoder, config)
    elif kind.startswith("late"):
        from ragfleet.rerank.late import LateReranker

        yield LateReranker(late_collection, config, via=kind.split("-")[1])  # type: ignore[arg-type]
    else:
        path = os.environ.get("RAGFLEET_CROSS_ENCODER")
        if not path or not Path(path).is_dir():
            pytest.skip("no trained cross-encoder: set RAGFLEET_CROSS_ENCODER to its directory")
        from ragfleet.rerank.cross_encoder import CrossEncoderReranker

        yield CrossEncoderReranker(Path(path), config)


@pytest.fixture(scope="module")
def hits(late_collection: Any) -> list[Any]:
    return list(late_collection.search(Q, k=10).hits)


def test_is_a_reranker(reranker: Any) -> None:
    assert isinstance(reranker, Reranker) and reranker.name


def test_rescores_the_budget_in_order_and_keeps_the_tail(reranker: Any, hits: list[Any]) -> None:
    before = [dataclasses.replace(h) for h in hits]
    out = reranker.rerank(Q, hits, len(hits))
    assert hits == before  # the input is not mutated
    n = reranker.config.candidates
    head, tail = out[:n], out[n:]
    assert {h.chunk_id for h in head} == {h.chunk_id for h in hits[:n]}
    assert [h.chunk_id for h in tail] == [h.chunk_id for h in hits[n:]]
    scores = [h.scores["rerank"] for h in head]
    assert scores == sorted(scores, reverse=True)
    assert [h.score for h in head] == scores
    assert [h.rank for h in out] == list(range(1, len(out) + 1))
    assert [h.ranks["rerank"] for h in head] == list(range(1, n + 1))


def test_top_n_cuts_and_empty_input_is_empty(reranker: Any, hits: list[Any]) -> None:
    assert len(reranker.rerank(Q, hits, 3)) == 3
    assert reranker.rerank(Q, [], 3) == []


def test_bad_requests_are_refused(reranker: Any, hits: list[Any]) -> None:
    with pytest.raises(InputError):
        reranker.rerank("  ", hits, 3)
    with pytest.raises(InputError):
        reranker.rerank(Q, hits, 0)


def test_score_gives_one_float_per_text(reranker: Any) -> None:
    texts = ["The Denver Broncos won Super Bowl 50.", "Warsaw lies on the Vistula river."]
    scores = reranker.score(Q, texts)
    assert scores.shape == (2,) and scores[0] > scores[1]
    assert len(reranker.score(Q, [])) == 0


def test_the_answering_passage_comes_first(reranker: Any, hits: list[Any]) -> None:
    top = reranker.rerank(Q, hits, 3)[0]
    assert top.doc_id.startswith("Super_Bowl_50")
