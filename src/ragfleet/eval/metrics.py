"""IR metrics through trec_eval (``pytrec_eval``), under the names the field reports.

- ``ndcg@k``: trec_eval ``ndcg_cut_k`` = DCG@k / ideal DCG@k with
  ``DCG@k = Σ_{i ≤ k} rel_i / log2(i + 1)`` (gain = the judgement, Järvelin & Kekäläinen 2002);
- ``recall@k``: ``recall_k`` = relevant in the top k / relevant;
- ``precision@k``: ``P_k`` = relevant in the top k / k;
- ``map@k``: ``map_cut_k``, average precision cut at k;
- ``mrr@k``: ``recip_rank`` on the run cut to its top k = 1 / rank of the first relevant
  document within k, else 0 (MS MARCO's MRR@10).

trec_eval orders a run by score descending and breaks ties by doc id *descending*; the
``mrr@k`` cut uses the same order, so it agrees with trec_eval's own ranking. A document
is relevant when its judgement is ≥ 1. A query in ``qrels`` that the run does not answer
scores 0 on every metric (trec_eval ``-c``), so a retriever that drops queries is not
rewarded; queries absent from ``qrels`` are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ragfleet._optional import require
from ragfleet.errors import InputError, UnknownSpecError

__all__ = ["Evaluation", "evaluate", "truncate_run"]

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]

_NAME = re.compile(r"^(ndcg|recall|precision|map|mrr)@([1-9]\d*)$")
_TREC = {"ndcg": "ndcg_cut_{k}", "recall": "recall_{k}", "precision": "P_{k}", "map": "map_cut_{k}"}


@dataclass(frozen=True)
class Evaluation:
    """Mean of each metric over the judged queries, and each query's values."""

    means: Mapping[str, float]
    per_query: Mapping[str, Mapping[str, float]]

    @property
    def n_queries(self) -> int:
        return len(self.per_query)


def evaluate(
    run: Run, qrels: Qrels, metrics: Sequence[str] = ("ndcg@10", "recall@100", "mrr@10")
) -> Evaluation:
    """Score ``run`` (``{qid: {doc_id: score}}``) against ``qrels`` (``{qid: {doc_id: rel}}``).

    Args:
        run: retrieved documents and scores per query (higher is better).
        qrels: relevance judgements per query; relevant means ``rel >= 1``.
        metrics: names such as ``"ndcg@10"``, ``"recall@100"``, ``"mrr@10"``,
            ``"precision@5"``, ``"map@100"``.
    """
    if not qrels:
        raise InputError("qrels are empty: there is nothing to evaluate against")
    parsed = {m: _parse(m) for m in metrics}
    judged = {q: {d: int(r) for d, r in rels.items()} for q, rels in qrels.items()}
    per_query: dict[str, dict[str, float]] = {q: dict.fromkeys(parsed, 0.0) for q in judged}
    answered = {q: {d: float(s) for d, s in run[q].items()} for q in judged if run.get(q)}
    for name, (kind, k) in parsed.items():
        if kind == "mrr":
            trec, sub = "recip_rank", {q: truncate_run(d, k) for q, d in answered.items()}
        else:
            trec, sub = _TREC[kind].format(k=k), answered
        for q, values in _trec_eval(judged, sub, trec).items():
            per_query[q][name] = values[trec]
    n = len(per_query)
    means = {m: sum(v[m] for v in per_query.values()) / n for m in parsed}
    return Evaluation(means=means, per_query=per_query)


def truncate_run(docs: Mapping[str, float], k: int) -> dict[str, float]:
    """The top ``k`` of one query's run in trec_eval's order (score desc, doc id desc)."""
    ranked = sorted(docs.items(), key=lambda x: (x[1], x[0]), reverse=True)
    return dict(ranked[:k])


def _parse(name: str) -> tuple[str, int]:
    match = _NAME.match(name)
    if match is None:
        raise UnknownSpecError(
            f"unknown metric {name!r}; use ndcg@K, recall@K, precision@K, map@K or mrr@K"
        )
    return match.group(1), int(match.group(2))


def _trec_eval(qrels: Qrels, run: Run, measure: str) -> dict[str, dict[str, float]]:
    pytrec_eval: Any = require("pytrec_eval", extra="eval")
    if not run:
        return {}
    evaluator = pytrec_eval.RelevanceEvaluator(dict(qrels), {measure})
    result: dict[str, dict[str, float]] = evaluator.evaluate(dict(run))
    return result
