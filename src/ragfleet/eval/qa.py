"""End-to-end question answering quality: retrieval, answer and citation metrics.

SQuAD (Rajpurkar et al. 2016) metrics with the official v1.1 normalisation (lowercase,
drop punctuation and the articles a/an/the, collapse whitespace), each the max over the
gold answers:

    EM = [norm(pred) = norm(gold)]
    F1 = 2·P·R / (P + R),  P = |common| / |pred tokens|,  R = |common| / |gold tokens|

(``common`` is the multiset intersection of the tokens). The prediction is the answer text
without its ``[n]`` markers. Retrieval: context recall@k = a gold passage is among the
first ``k`` hits. Citations: precision = cited passages whose normalised text contains a
normalised gold answer / all cited passages (micro-averaged over questions).
"""

from __future__ import annotations

import re
import string
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ragfleet.errors import InputError
from ragfleet.eval.latency import StageLatencies

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(s: str) -> str:
    """SQuAD v1.1's ``normalize_answer``."""
    s = "".join(ch for ch in s.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", s).split())


def exact_match(pred: str, golds: Sequence[str]) -> float:
    return float(any(normalize_answer(pred) == normalize_answer(g) for g in golds))


def token_f1(pred: str, golds: Sequence[str]) -> float:
    """Max over ``golds`` of the token F1 of the module docstring (0 for an empty side)."""
    p = normalize_answer(pred).split()
    best = 0.0
    for g in golds:
        t = normalize_answer(g).split()
        common = sum((Counter(p) & Counter(t)).values())
        if common:
            prec, rec = common / len(p), common / len(t)
            best = max(best, 2 * prec * rec / (prec + rec))
    return best


def contains_answer(text: str, golds: Sequence[str]) -> bool:
    norm = f" {normalize_answer(text)} "
    return any(f" {normalize_answer(g)} " in norm for g in golds if normalize_answer(g))


@dataclass(frozen=True)
class QAItem:
    """One question with its gold answers and the ids of the passages that hold them."""

    qid: str
    question: str
    answers: tuple[str, ...]
    gold_docs: frozenset[str]


class Asker(Protocol):
    def ask(self, question: str, budget_ms: float | None = None) -> Any: ...


@dataclass(frozen=True)
class QAReport:
    """Means over ``n`` questions, per-stage latency percentiles and the run's settings."""

    n: int
    metrics: Mapping[str, float]
    latency_ms: Mapping[str, Any]
    settings: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "metrics": dict(self.metrics),
            "latency_ms": dict(self.latency_ms),
            "settings": dict(self.settings),
        }


def load_qa_items(root: Any, n: int | None = None, split: str = "test") -> list[QAItem]:
    """Questions of a BEIR folder whose query metadata has ``answers`` (SQuAD's layout); with
    ``n``, an evenly spaced sample of ``n`` of them (spread over all articles)."""
    from ragfleet.ingest import load_beir_query_records, load_qrels

    records, qrels = load_beir_query_records(root), load_qrels(root, split)
    items = [
        QAItem(
            qid,
            r["text"],
            tuple(r["metadata"]["answers"]),
            frozenset(d for d, s in qrels.get(qid, {}).items() if s > 0),
        )
        for qid, r in records.items()
        if r["metadata"].get("answers") and qid in qrels
    ]
    if not items:
        raise InputError(f"{root}: no query has metadata.answers and qrels; is it SQuAD?")
    if n is not None and n < len(items):
        items = [items[i * len(items) // n] for i in range(n)]
    return items


def evaluate_qa(
    pipeline: Asker,
    items: Iterable[QAItem],
    *,
    k: int = 5,
    budget_ms: float | None = None,
    progress: Any = None,
) -> QAReport:
    """Ask every question; the metrics of the module docstring and stage latencies."""
    items = list(items)
    sums: defaultdict[str, float] = defaultdict(float)
    lat = StageLatencies()
    for i, it in enumerate(items, start=1):
        r = pipeline.ask(it.question, budget_ms=budget_ms)
        lat.add(r.timings_ms)
        _score_one(sums, it, r, k)
        if progress is not None:
            progress(i, len(items))
    n = max(len(items), 1)
    metrics = {
        f"context_recall@{k}": sums["recall"] / n,
        "exact_match": sums["em"] / n,
        "f1": sums["f1"] / n,
        "citation_precision": sums["cited_ok"] / max(sums["cited"], 1),
        "answered": sums["answered"] / n,
        "slo_met": sums["slo"] / n,
    }
    return QAReport(len(items), metrics, lat.summary(), {"k": k, "budget_ms": budget_ms})


def _score_one(sums: defaultdict[str, float], it: QAItem, r: Any, k: int) -> None:
    from ragfleet.generate.base import strip_citations

    sums["recall"] += any(h.doc_id in it.gold_docs for h in r.hits[:k])
    sums["slo"] += bool(r.slo_met)
    if r.answer is None or not r.answer.text:
        return
    pred = strip_citations(r.answer.text)
    sums["answered"] += 1
    sums["em"] += exact_match(pred, it.answers)
    sums["f1"] += token_f1(pred, it.answers)
    for c in r.answer.citations:
        sums["cited"] += 1
        sums["cited_ok"] += contains_answer(r.answer.passages[c.n - 1].text, it.answers)
