"""SQuAD v1.1 answer metrics and the QA evaluation loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from ragfleet.eval.qa import (
    QAItem,
    contains_answer,
    evaluate_qa,
    exact_match,
    normalize_answer,
    token_f1,
)
from ragfleet.generate.base import Answer, Citation
from ragfleet.types import Hit


def test_official_normalisation() -> None:
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert normalize_answer("an apple, a pear") == "apple pear"


def test_exact_match_and_f1_formulas() -> None:
    assert exact_match("the Denver Broncos", ["Denver Broncos", "Broncos"]) == 1.0
    assert exact_match("Broncos team", ["Denver Broncos"]) == 0.0
    # pred {denver, broncos, won}, gold {denver, broncos}: P = 2/3, R = 1, F1 = 2PR/(P+R) = 0.8
    assert token_f1("Denver Broncos won", ["Denver Broncos"]) == pytest.approx(0.8)
    assert token_f1("Denver Broncos won", ["Carolina", "Denver Broncos"]) == pytest.approx(0.8)
    assert token_f1("", ["x"]) == 0.0
    assert contains_answer("They played at Levi's Stadium.", ["Levi's Stadium"])
    assert not contains_answer("Stadiums are big", ["Stadium X"])


@dataclass
class Canned:
    """A pipeline stand-in with a fixed response (the metrics under test are pure)."""

    answer: Answer | None
    hits: tuple[Hit, ...]
    timings_ms: dict[str, float] = field(default_factory=lambda: {"generate": 1.0, "total": 2.0})
    slo_met: bool = True

    def ask(self, question: str, budget_ms: float | None = None) -> Any:
        return self


def test_evaluate_qa_counts_recall_and_citation_precision() -> None:
    hits = (
        Hit(1, "a", "a#0", 1.0, "Denver Broncos won.", 0),
        Hit(2, "b", "b#0", 0.5, "Nothing here.", 0),
    )
    answer = Answer(
        "Denver Broncos won [1] [2]",
        (Citation(1, "a#0", "a", None), Citation(2, "b#0", "b", None)),
        hits,
        "x",
    )
    item = QAItem("q", "who won", ("Denver Broncos",), frozenset({"b"}))
    report = evaluate_qa(Canned(answer, hits), [item, item], k=1)
    m = report.metrics
    assert m["context_recall@1"] == 0.0  # gold doc b is at rank 2
    assert evaluate_qa(Canned(answer, hits), [item], k=2).metrics["context_recall@2"] == 1.0
    assert m["citation_precision"] == 0.5 and m["exact_match"] == 0.0
    assert m["f1"] == pytest.approx(0.8) and m["answered"] == 1.0
    assert report.latency_ms["total"]["n"] == 2
    assert evaluate_qa(Canned(None, hits), [item], k=1).metrics["answered"] == 0.0
