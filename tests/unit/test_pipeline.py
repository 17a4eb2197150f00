"""The query pipeline under one deadline: timings, degradation order, slow stages."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from ragfleet.collection import Collection
from ragfleet.errors import ConfigError, InputError
from ragfleet.generate.base import Answer, parse_citations
from ragfleet.generate.extractive import Extractive
from ragfleet.pipeline import CostModel, Pipeline, PipelineConfig
from ragfleet.rerank.base import RerankConfig, Scores, rerank_with
from ragfleet.types import Document, Hit

pytestmark = pytest.mark.model

DOCS = [
    Document(
        "sb50",
        "Super Bowl 50 was played on February 7, 2016, at Levi's Stadium in Santa "
        "Clara, California. The Denver Broncos defeated the Carolina Panthers 24–10.",
        title="Super Bowl 50",
    ),
    Document(
        "bread",
        "Sourdough bread is leavened by a starter of wild yeast and lactobacilli.",
        title="Sourdough",
    ),
    Document(
        "vaccine", "A vaccine trains the immune system to recognise a pathogen.", title="Vaccine"
    ),
    Document(
        "rhine",
        "The Rhine flows from the Swiss Alps to the North Sea through Germany.",
        title="Rhine",
    ),
    Document(
        "tesla",
        "Nikola Tesla was an inventor known for alternating current systems.",
        title="Tesla",
    ),
    Document(
        "oxygen", "Oxygen is a chemical element with symbol O and atomic number 8.", title="Oxygen"
    ),
]


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collection]:
    col = Collection.build(tmp_path_factory.mktemp("pipe") / "col", DOCS)
    yield col
    col.close()


class SleepyReranker:
    """A fault double: reverses the order and sleeps ``per_item_ms`` per candidate."""

    name = "sleepy"

    def __init__(self, per_item_ms: float) -> None:
        self.config = RerankConfig(candidates=50)
        self.per_item_ms = per_item_ms
        self.calls: list[int] = []

    def score(self, query: str, texts: Sequence[str]) -> Scores:
        self.calls.append(len(texts))
        time.sleep(self.per_item_ms * len(texts) / 1e3)
        return np.arange(len(texts), dtype=np.float32)

    def rerank(self, query: str, hits: Sequence[Hit], top_n: int) -> list[Hit]:
        return rerank_with(self, query, hits, top_n)


class SleepyGenerator:
    """A fault double: takes ``delay_ms`` but stops at its timeout, marking the answer cut."""

    name = "sleepy-llm"

    def __init__(self, delay_ms: float) -> None:
        self.delay_ms = delay_ms

    def generate(
        self, query: str, hits: Sequence[Hit], *, timeout_ms: float | None = None
    ) -> Answer:
        wait = self.delay_ms if timeout_ms is None else min(self.delay_ms, timeout_ms)
        time.sleep(wait / 1e3)
        text = "Levi's Stadium [1] [9]"
        return Answer(
            text,
            parse_citations(text, hits),
            tuple(hits),
            self.name,
            {"generate": wait},
            truncated=wait < self.delay_ms,
        )


def test_answer_with_citations_and_stage_timings(collection: Collection) -> None:
    p = Pipeline(collection, config=PipelineConfig(budget_ms=5000, k=5, top_n=3))
    r = p.ask("Where was Super Bowl 50 played?")
    assert r.answer is not None and "Levi's Stadium" in r.answer.text
    assert r.answer.citations and r.answer.citations[0].doc_id == "sb50"
    assert {c.chunk_id for c in r.answer.citations} <= {h.chunk_id for h in r.hits}
    assert set(r.timings_ms) == {"embed", "search", "rerank", "generate", "total"}
    assert r.timings_ms["total"] >= r.timings_ms["generate"] + r.timings_ms["embed"]
    assert r.slo_met and r.degraded == {} and [h.rank for h in r.hits] == [1, 2, 3]
    d = r.to_dict()
    assert (
        d["budget_ms"] == 5000 and d["answer"] == r.answer.text and d["generator"] == "extractive"
    )


def test_citations_only_point_at_hits_passed_to_the_generator(collection: Collection) -> None:
    p = Pipeline(collection, generator=SleepyGenerator(1), config=PipelineConfig(top_n=2))
    r = p.ask("Where was Super Bowl 50 played?", budget_ms=5000)
    assert r.answer is not None and [c.n for c in r.answer.citations] == [1]  # [9] dropped


def test_slow_generator_is_cut_at_the_deadline(collection: Collection) -> None:
    p = Pipeline(collection, generator=SleepyGenerator(2000), fallback=None)
    budget = 400.0
    r = p.ask("Where was Super Bowl 50 played?", budget_ms=budget)
    assert r.timings_ms["total"] <= budget * 1.1
    assert r.answer is not None and r.answer.truncated
    assert r.degraded["generate"] == "truncated at the deadline"


def test_slow_reranker_is_shortened_from_its_observed_cost(collection: Collection) -> None:
    rr = SleepyReranker(per_item_ms=80)
    config = PipelineConfig(k=6, rerank_candidates=6, min_rerank_candidates=2, top_n=3)
    p = Pipeline(collection, reranker=rr, config=config)
    p.ask("vaccine immune system", budget_ms=5000)  # observes ~80 ms per candidate
    assert rr.calls == [1, 5]  # a one-candidate probe of the unknown cost, then the rest
    r = p.ask("vaccine immune system", budget_ms=400)
    scored = sum(rr.calls[2:])
    assert 2 <= scored < 6 and r.degraded["rerank"].startswith("shortened")
    # what it ran fits what was left: n ≤ (left − ĝ) / r̂ with r̂ ≥ 80 ms
    assert scored * 80 <= 400 - r.timings_ms["embed"] - r.timings_ms["search"]
    assert r.timings_ms["total"] <= 400 * 1.1
    n = len(rr.calls)
    r = p.ask("vaccine immune system", budget_ms=60)
    assert r.degraded["rerank"].startswith("skipped") and len(rr.calls) == n


def test_a_reranker_slower_than_its_prior_still_meets_the_deadline(
    collection: Collection,
) -> None:
    """The prior says 5 ms per candidate, the truth is 150 ms: the probe finds out and the
    batches that no longer fit are not started; the scored prefix is reordered."""
    rr = SleepyReranker(per_item_ms=150)
    config = PipelineConfig(k=6, rerank_candidates=6, min_rerank_candidates=2, top_n=6)
    p = Pipeline(collection, reranker=rr, config=config)
    budget = 500.0
    r = p.ask("vaccine immune system", budget_ms=budget)
    assert r.timings_ms["total"] <= budget * 1.1, r.timings_ms
    assert 1 <= sum(rr.calls) < 6 and rr.calls[0] == 1
    assert r.degraded["rerank"].startswith("shortened at the deadline")
    scored = sum(rr.calls)
    # the double scores ascending, so the scored prefix comes back reversed, the rest after it
    ranks = [h.ranks.get("rerank") for h in r.hits]
    assert ranks[:scored] == list(range(1, scored + 1))
    assert all(x is None for x in ranks[scored:])


def test_degradation_order_as_the_budget_shrinks(collection: Collection) -> None:
    """rerank shortened → rerank skipped → generator falls back → generation skipped."""
    config = PipelineConfig(rerank_candidates=20, min_rerank_candidates=5)
    p = Pipeline(
        collection, reranker=SleepyReranker(0), generator=SleepyGenerator(0), config=config
    )
    p.costs.observe("rerank", 10.0)  # 10 ms per candidate
    p.costs.observe("generate", 300.0)
    p.costs.observe("fallback", 5.0)
    levels = []
    for left in np.linspace(1000, -10, 300):
        n, note = p.rerank_plan(float(left), 50)
        gen, gnote = p.generate_plan(float(left))
        level = 0 if not note else 1 if note.startswith("shortened") else 2
        if gen is None:
            level = 4
        elif gnote:
            level = max(level, 3)
        levels.append(level)
        assert (
            (n == 20) == (not note) and (n == 0) == note.startswith("skipped") if note else n == 20
        )
    assert levels == sorted(levels) and set(levels) == {0, 1, 2, 3, 4}
    # the boundaries are where the formulas put them: n = ⌊(left − ĝ) / r̂⌋
    assert p.rerank_plan(300 + 20 * 10, 50) == (20, "")
    assert p.rerank_plan(300 + 7 * 10 + 5, 50)[0] == 7
    assert p.rerank_plan(300 + 4 * 10, 50)[0] == 0
    assert p.generate_plan(299)[0] is p.fallback and p.generate_plan(4)[0] is None


def test_fallback_defaults_and_validation(collection: Collection) -> None:
    assert Pipeline(collection).fallback is None  # extractive needs no fallback
    default = Pipeline(collection).generator
    assert isinstance(default, Extractive) and default.encoder is collection.encoder
    assert isinstance(Pipeline(collection, generator=SleepyGenerator(0)).fallback, Extractive)
    with pytest.raises(InputError):
        Pipeline(collection).ask("  ")
    with pytest.raises(InputError):
        Pipeline(collection).ask("q", budget_ms=0)
    with pytest.raises(ConfigError):
        PipelineConfig(min_rerank_candidates=30, rerank_candidates=20)


def test_skipped_generation_still_returns_hits(collection: Collection, tmp_path: Path) -> None:
    p = Pipeline(collection, generator=SleepyGenerator(0))
    p.costs.observe("generate", 1e6)
    p.costs.observe("fallback", 1e6)
    r = p.ask("oxygen element", budget_ms=3000)
    assert r.answer is None and r.hits and r.degraded["generate"].startswith("skipped")
    assert r.to_dict()["answer"] is None


class ColdStartGenerator(SleepyGenerator):
    """A fault double for a model's cold start: the first call takes ``cold_ms``."""

    def __init__(self, cold_ms: float, warm_ms: float) -> None:
        super().__init__(cold_ms)
        self.warm_ms, self.calls = warm_ms, 0

    def generate(
        self, query: str, hits: Sequence[Hit], *, timeout_ms: float | None = None
    ) -> Answer:
        self.calls += 1
        answer = super().generate(query, hits, timeout_ms=timeout_ms)
        self.delay_ms = self.warm_ms
        return answer


def test_a_cold_warm_up_does_not_keep_the_generator_off(collection: Collection) -> None:
    """A first call 20x slower than the rest (a model loading) used to be the only sample
    of the generator's cost: every later request under a smaller budget fell back to
    extractive and never ran it again. The warm-up forgets its cold run."""
    gen = ColdStartGenerator(cold_ms=400, warm_ms=20)
    p = Pipeline(collection, generator=gen)
    p.warm_up("Where was Super Bowl 50 played?")
    assert gen.calls == 2 and p.costs.estimate("generate") < 200
    r = p.ask("Where was Super Bowl 50 played?", budget_ms=300)
    assert r.answer is not None and r.answer.model == "sleepy-llm" and not r.degraded


def test_a_stage_judged_too_slow_is_probed_again_once_its_costs_age_out(
    collection: Collection,
) -> None:
    now = [0.0]
    config = PipelineConfig(cost_max_age_s=60)
    p = Pipeline(collection, generator=SleepyGenerator(5), config=config)
    p.costs = CostModel({"generate": 20.0, "fallback": 0.0}, max_age_s=60, clock=lambda: now[0])
    p.costs.observe("generate", 5000.0)  # one slow burst
    assert p.generate_plan(300)[0] is p.fallback  # judged too slow: the fallback runs
    now[0] = 59.0
    assert p.generate_plan(300)[0] is p.fallback
    now[0] = 61.0  # the slow sample aged out: the generator is tried again
    assert p.generate_plan(300)[0] is p.generator and not p.costs.observed("generate")
    r = p.ask("Where was Super Bowl 50 played?", budget_ms=300)
    assert r.answer is not None and r.answer.model == "sleepy-llm"
    assert p.costs.count("generate") == 1 and p.costs.estimate("generate") < 300
    with pytest.raises(ConfigError):
        PipelineConfig(cost_max_age_s=0)
