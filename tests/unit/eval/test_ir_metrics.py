"""IR metrics through trec_eval, checked against formulas written out by hand."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ragfleet.errors import InputError, UnknownSpecError
from ragfleet.eval.metrics import evaluate, truncate_run

QRELS = {"q1": {"d1": 2, "d3": 1, "d9": 1, "dx": 0}, "q2": {"d5": 1}, "q3": {"d7": 1}}
RUN = {
    "q1": {"d1": 0.9, "d2": 0.8, "d3": 0.7, "dx": 0.6},  # d9 never retrieved
    "q2": {f"n{i:02d}": 1.0 - i / 100 for i in range(10)} | {"d5": 0.5},  # relevant at rank 11
}


def test_hand_computed_ndcg_recall_mrr() -> None:
    ev = evaluate(RUN, QRELS, ("ndcg@10", "recall@100", "mrr@10", "precision@2"))
    dcg = 2 / math.log2(1 + 1) + 1 / math.log2(3 + 1)  # d1 (rel 2) at rank 1, d3 (rel 1) at 3
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)  # 2, 1, 1 ideally
    q1 = ev.per_query["q1"]
    assert q1["ndcg@10"] == pytest.approx(dcg / idcg)
    assert q1["recall@100"] == pytest.approx(2 / 3)
    assert q1["mrr@10"] == 1.0
    assert q1["precision@2"] == 0.5
    q2 = ev.per_query["q2"]
    assert q2["mrr@10"] == 0.0 and q2["recall@100"] == 1.0  # found at rank 11 only
    assert evaluate(RUN, QRELS, ("mrr@11",)).per_query["q2"]["mrr@11"] == pytest.approx(1 / 11)
    assert ev.per_query["q3"] == dict.fromkeys(ev.means, 0.0)  # judged, not answered: zeros
    assert ev.n_queries == 3
    assert ev.means["ndcg@10"] == pytest.approx((dcg / idcg + q2["ndcg@10"]) / 3)


def test_truncation_breaks_ties_like_trec_eval() -> None:
    run = {"q": {"a": 1.0, "b": 1.0, "c": 0.5}}
    assert list(truncate_run(run["q"], 2)) == ["b", "a"]  # doc id descending on ties
    ev = evaluate(run, {"q": {"a": 1}}, ("mrr@1", "mrr@2"))
    assert ev.per_query["q"] == {"mrr@1": 0.0, "mrr@2": 0.5}


def test_unjudged_queries_are_ignored_and_errors() -> None:
    ev = evaluate({"q2": {"d5": 1.0}, "extra": {"z": 1.0}}, {"q2": {"d5": 1}})
    assert ev.means == {"ndcg@10": 1.0, "recall@100": 1.0, "mrr@10": 1.0}
    with pytest.raises(UnknownSpecError, match="unknown metric"):
        evaluate(RUN, QRELS, ("ndcg_cut_10",))
    with pytest.raises(InputError, match="qrels are empty"):
        evaluate(RUN, {})


@given(
    st.dictionaries(st.sampled_from("abcdefghijkl"), st.floats(0, 1), max_size=12),
    st.dictionaries(st.sampled_from("abcdefghijkl"), st.integers(0, 3), min_size=1, max_size=6),
)
def test_metrics_lie_in_unit_interval(docs: dict[str, float], rels: dict[str, int]) -> None:
    ev = evaluate({"q": docs}, {"q": rels}, ("ndcg@10", "recall@5", "mrr@10", "map@10"))
    assert all(0.0 <= v <= 1.0 + 1e-12 for v in ev.means.values())
