"""The query pipeline: search → rerank → generate in series under one deadline.

A request has a budget of ``B`` ms; its deadline is ``t0 + B``. Each stage gets what is
left, records its wall time, and the response says which stages were cut. Cuts are
planned from each stage's observed cost, its p99 over the last ``cost_window`` runs of the
last ``cost_max_age_s`` (:class:`CostModel`; the tail, since the budget is a tail promise;
before any run, or once a skipped stage's costs have aged out, the configured prior), in
this order, as the budget shrinks:

1. rerank fewer candidates: ``n = ⌊(left − ĝ) / r̂⌋`` where ``ĝ`` is the generator's p99
   per call and ``r̂`` the reranker's p99 per candidate;
2. skip rerank when ``n < min_rerank_candidates``;
   while it runs, rerank scores its candidates in batches and checks the clock before
   each: the next batch takes candidates only while ``ĉ · size · longest ≤ left − ĝ``
   (``ĉ``: the p99 cost per character of a padded batch, since a model pads a batch to
   its longest text; half the room only, until three batches were observed), and when
   not even one fits, rerank ends early (the scored prefix
   is reordered, the rest keeps its search order) — the deadline holds even when ``r̂``
   was a bad guess;
3. fall back from an expensive generator to the extractive one when ``left < ĝ``;
4. skip generation when nothing is left (the hits are still returned).

Search always runs (with ``timeout_ms = left``); a shard that misses it lowers coverage.

This module is longer than most (~350 lines) on purpose: the stages share one clock, one
cost model and one degradation policy, and splitting them would spread the budget rule.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ragfleet.errors import ConfigError, InputError
from ragfleet.generate.base import Answer, Generator
from ragfleet.rerank.base import Blender, HitScorer, Reranker, passage_text, reorder
from ragfleet.search.retriever import Retriever
from ragfleet.types import Hit, Mode

STAGES = ("embed", "search", "rerank", "generate")
TRUSTED_AFTER = 3  # rerank batches observed before a batch may use all the room left


@dataclass(frozen=True)
class PipelineConfig:
    """``k`` hits are retrieved, the first ``rerank_candidates`` of them reranked, the best
    ``top_n`` handed to the generator. Priors are the assumed costs before any observation;
    a stage's cost is planned as the ``cost_quantile`` of its last ``cost_window`` runs
    within ``cost_max_age_s``."""

    budget_ms: float = 1000.0
    k: int = 20
    mode: Mode | None = None
    top_n: int = 5
    rerank_candidates: int = 20
    min_rerank_candidates: int = 5
    rerank_prior_ms: float = 5.0
    generate_prior_ms: float = 20.0
    cost_window: int = 200
    cost_quantile: float = 0.99
    cost_max_age_s: float = 120.0

    def __post_init__(self) -> None:
        if self.budget_ms <= 0 or self.k < 1 or self.top_n < 1 or self.cost_window < 1:
            raise ConfigError("budget_ms > 0, k >= 1, top_n >= 1 and cost_window >= 1 required")
        if not 1 <= self.min_rerank_candidates <= self.rerank_candidates:
            raise ConfigError("need 1 <= min_rerank_candidates <= rerank_candidates")
        if self.rerank_prior_ms < 0 or self.generate_prior_ms < 0:
            raise ConfigError("cost priors must be >= 0 ms")
        if self.cost_max_age_s <= 0:
            raise ConfigError(f"cost_max_age_s must be > 0, got {self.cost_max_age_s}")


class CostModel:
    """The ``quantile`` of the last ``window`` observed costs per stage, or a prior before
    any. Observations older than ``max_age_s`` are forgotten: a stage the planner stopped
    running because it looked too slow (a cold first call, a burst of load) is tried again
    once its last cost has aged out, instead of being judged by one old sample forever.
    The probe is not single-flight: every request planned while the first probe runs also
    plans from the prior, so a stage that really is slow costs up to ``rate × its latency``
    over-budget requests once per ``max_age_s``."""

    def __init__(
        self,
        priors: Mapping[str, float],
        window: int = 200,
        quantile: float = 0.99,
        max_age_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < quantile <= 1:
            raise ConfigError(f"a cost quantile must be in (0, 1], got {quantile}")
        if max_age_s <= 0:
            raise ConfigError(f"max_age_s must be > 0, got {max_age_s}")
        self.quantile, self.max_age_s, self._clock = quantile, max_age_s, clock
        self._priors = dict(priors)
        self._samples: dict[str, deque[tuple[float, float]]] = {}
        self._window = window
        self._lock = threading.Lock()

    def observe(self, stage: str, ms: float) -> None:
        with self._lock:
            window = self._samples.setdefault(stage, deque(maxlen=self._window))
            window.append((self._clock(), float(ms)))

    def forget(self) -> None:
        """Drop every observation (back to the priors)."""
        with self._lock:
            self._samples.clear()

    def observed(self, stage: str) -> bool:
        """Whether ``stage`` has a recent observation (else :meth:`estimate` is the prior)."""
        return self.count(stage) > 0

    def count(self, stage: str) -> int:
        """How many recent observations of ``stage`` the window holds."""
        return len(self._recent(stage))

    def estimate(self, stage: str) -> float:
        """The ``quantile`` of the recent costs of ``stage`` (the prior before any)."""
        xs = self._recent(stage)
        if not xs:
            return self._priors.get(stage, 0.0)
        return float(np.quantile(xs, self.quantile))

    def _recent(self, stage: str) -> list[float]:
        oldest = self._clock() - self.max_age_s
        with self._lock:
            window = self._samples.get(stage)
            while window and window[0][0] < oldest:
                window.popleft()
            return [ms for _, ms in window or ()]


@dataclass(frozen=True)
class PipelineResponse:
    """One answered question: the answer (``None`` when generation was skipped), the hits,
    per-stage milliseconds (plus ``total``), the budget, whether it was met, and
    ``degraded``: stage → what was cut and why."""

    question: str
    answer: Answer | None
    hits: tuple[Hit, ...]
    timings_ms: Mapping[str, float]
    budget_ms: float
    slo_met: bool
    degraded: Mapping[str, str] = field(default_factory=dict)
    coverage: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``ragfleet ask --json``."""
        return {
            "question": self.question,
            "answer": self.answer.text if self.answer else None,
            "citations": [c.to_dict() for c in self.answer.citations] if self.answer else [],
            "generator": self.answer.model if self.answer else None,
            "truncated": self.answer.truncated if self.answer else False,
            "hits": [h.to_dict() for h in self.hits],
            "timings_ms": dict(self.timings_ms),
            "budget_ms": self.budget_ms,
            "slo_met": self.slo_met,
            "degraded": dict(self.degraded),
            "coverage": self.coverage,
        }


class _Clock:
    """Milliseconds since the request began and what is left of its budget."""

    def __init__(self, budget_ms: float) -> None:
        self.t0 = time.perf_counter()
        self.budget_ms = budget_ms

    def elapsed(self) -> float:
        return (time.perf_counter() - self.t0) * 1e3

    def left(self) -> float:
        return self.budget_ms - self.elapsed()


class Pipeline:
    """Answers questions over a collection (see the module docstring).

    Args:
        collection: any :class:`~ragfleet.search.retriever.Retriever` (a Collection, a
            Fleet, a CachedSearch, a RemoteCollection).
        reranker: optional; used only where configured.
        generator: default :class:`~ragfleet.generate.extractive.Extractive` with the
            retriever's encoder.
        config: budget, depths and cost priors.
        fallback: the cheap generator used when the configured one cannot fit (default
            extractive; ``None`` to skip generation instead).
    """

    def __init__(
        self,
        collection: Retriever,
        reranker: Reranker | None = None,
        generator: Generator | None = None,
        config: PipelineConfig | None = None,
        fallback: Generator | bool | None = True,
    ) -> None:
        from ragfleet.generate.extractive import Extractive

        self.collection = collection
        self.reranker = reranker
        encoder = collection.encoder
        self.generator: Generator = (
            generator if generator is not None else Extractive(encoder=encoder)
        )
        self.config = config or PipelineConfig()
        if fallback is True:
            is_extractive = isinstance(self.generator, Extractive)
            self.fallback: Generator | None = None if is_extractive else Extractive(encoder=encoder)
        else:
            self.fallback = fallback or None
        self.costs = CostModel(
            {
                "rerank": self.config.rerank_prior_ms,
                "generate": self.config.generate_prior_ms,
                "fallback": 0.0,
            },
            self.config.cost_window,
            self.config.cost_quantile,
            self.config.cost_max_age_s,
        )

    def ask(
        self,
        question: str,
        budget_ms: float | None = None,
        *,
        on_hits: Callable[[tuple[Hit, ...], float], None] | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> PipelineResponse:
        """Answer ``question`` within ``budget_ms`` (default ``config.budget_ms``).

        ``on_hits(hits, coverage)`` is called as soon as the passages are final (after
        rerank, before generation) and ``on_token(text)`` with each piece of the answer as
        it is generated (a generator that cannot stream gives its whole answer at once):
        what a streaming client shows while the rest is still running."""
        budget = self.config.budget_ms if budget_ms is None else budget_ms
        if not isinstance(question, str) or not question.strip():
            raise InputError(f"a question must be a non-empty string, got {question!r}")
        if budget <= 0:
            raise InputError(f"budget_ms must be > 0, got {budget}")
        clock, timings, degraded = _Clock(budget), dict.fromkeys(STAGES, 0.0), {}
        res = self.collection.search(
            question, k=self.config.k, mode=self.config.mode, timeout_ms=max(clock.left(), 1.0)
        )
        timings["embed"] = float(res.timings_ms.get("embed", 0.0))
        timings["search"] = max(clock.elapsed() - timings["embed"], 0.0)
        if res.coverage < 1.0:
            degraded["search"] = f"partial: {res.coverage:.0%} of shards answered in time"
        hits = self._rerank(question, list(res.hits), clock, timings, degraded)
        if on_hits is not None:
            on_hits(tuple(hits), res.coverage)
        answer = self._generate(question, tuple(hits), clock, timings, degraded, on_token)
        timings["total"] = clock.elapsed()
        return PipelineResponse(
            question,
            answer,
            tuple(hits),
            {s: round(v, 3) for s, v in timings.items()},
            budget,
            timings["total"] <= budget,
            degraded,
            res.coverage,
        )

    def warm_up(self, question: str) -> PipelineResponse:
        """Answer ``question`` twice with a budget of a minute, so every configured stage
        runs and its cost is observed: the next request plans from measurements, not
        priors (a server calls this before it reports ready). The first, cold run (models
        loading, caches empty: often many times the steady cost) is forgotten; the plan
        starts from the second."""
        self.ask(question, budget_ms=60_000)
        self.costs.forget()
        return self.ask(question, budget_ms=60_000)

    def rerank_plan(self, left_ms: float, n_hits: int) -> tuple[int, str]:
        """How many candidates to rerank with ``left_ms`` left, and why if cut (§1–2)."""
        want = min(self.config.rerank_candidates, n_hits)
        per_item = max(self.costs.estimate("rerank"), 1e-3)
        affordable = (left_ms - self.costs.estimate("generate")) / per_item
        n = min(want, max(0, math.floor(affordable)))
        if n >= want:
            return want, ""
        if n < min(self.config.min_rerank_candidates, want):
            return 0, f"skipped: {left_ms:.0f} ms left, p99 {per_item:.1f} ms/candidate"
        return n, f"shortened: {n} of {want} candidates ({left_ms:.0f} ms left)"

    def generate_plan(self, left_ms: float) -> tuple[Generator | None, str]:
        """Which generator runs with ``left_ms`` left (``None``: skip), and why if cut (§3–4)."""
        if left_ms > self.costs.estimate("generate") or (left_ms > 0 and self.fallback is None):
            return self.generator, ""
        if self.fallback is not None and left_ms > self.costs.estimate("fallback"):
            return self.fallback, f"fell back to {self.fallback.name}: {left_ms:.0f} ms left"
        return None, f"skipped: {max(left_ms, 0.0):.0f} ms left"

    def _rerank(
        self,
        q: str,
        hits: list[Hit],
        clock: _Clock,
        timings: dict[str, float],
        degraded: dict[str, str],
    ) -> list[Hit]:
        top_n = self.config.top_n
        if self.reranker is None or not hits:
            return _renumber(hits[:top_n])
        n, note = self.rerank_plan(clock.left(), len(hits))
        if note:
            degraded["rerank"] = note
        if n == 0:
            return _renumber(hits[:top_n])
        t = time.perf_counter()
        scores = self._score_within(self.reranker, q, hits[:n], clock)
        timings["rerank"] = (time.perf_counter() - t) * 1e3
        done = len(scores)
        if done < n:
            degraded["rerank"] = (
                f"shortened at the deadline: {done} of {n} candidates scored"
                if done
                else f"skipped at the deadline: {clock.left():.0f} ms left"
            )
        if done == 0:
            return _renumber(hits[:top_n])
        final = raw = np.asarray(scores)
        if isinstance(self.reranker, Blender):  # the rank term over the planned budget
            final = self.reranker.blend(raw, self.config.rerank_candidates)
            return reorder(hits[:done], final, hits[done:], top_n, raw={self.reranker.name: raw})
        return reorder(hits[:done], final, hits[done:], top_n)

    def _score_within(
        self, reranker: Reranker, q: str, head: list[Hit], clock: _Clock
    ) -> list[float]:
        """Scores for a prefix of ``head``, computed in batches that each must fit the
        time left after generation (``ĉ · size · longest ≤ left − ĝ``, ``ĉ`` re-estimated
        after every batch), so a slow reranker ends early instead of overrunning. Before any
        observation the first batch is a single candidate: a probe of the real cost."""
        texts = [passage_text(h) for h in head]
        step = reranker.config.batch_size
        scores: list[float] = []
        while len(scores) < len(texts):
            done = len(scores)
            if not self.costs.observed("rerank_char"):
                size = 1
            else:
                room = clock.left() - self.costs.estimate("generate")
                if self.costs.count("rerank_char") < TRUSTED_AFTER:
                    room /= 2  # an estimate from one or two batches is a rough one
                per_char = self.costs.estimate("rerank_char")
                size, longest = 0, 1
                while size < step and done + size < len(texts):
                    longest = max(longest, len(texts[done + size]))
                    if per_char * (size + 1) * longest > room:
                        break
                    size += 1
                if size == 0:
                    break
            batch = texts[done : done + size]
            t = time.perf_counter()
            if isinstance(reranker, HitScorer):  # late interaction: stored token vectors
                out = reranker.score_hits(q, head[done : done + size])
            else:
                out = reranker.score(q, batch)
            ms = (time.perf_counter() - t) * 1e3
            self.costs.observe("rerank", ms / len(batch))
            self.costs.observe("rerank_char", ms / (len(batch) * max(map(len, batch), default=1)))
            if len(out) != len(batch):
                raise InputError(f"{len(out)} rerank scores for {len(batch)} hits")
            scores.extend(float(x) for x in out)
        return scores

    def _generate(
        self,
        q: str,
        hits: tuple[Hit, ...],
        clock: _Clock,
        timings: dict[str, float],
        degraded: dict[str, str],
        on_token: Callable[[str], None] | None = None,
    ) -> Answer | None:
        left = clock.left()
        generator, note = self.generate_plan(left)
        if note:
            degraded["generate"] = note
        if generator is None:
            return None
        stage = "generate" if generator is self.generator else "fallback"
        t = time.perf_counter()
        if on_token is not None and getattr(generator, "streams", False):
            answer = generator.generate(  # type: ignore[call-arg]
                q, hits, timeout_ms=max(left, 1.0), on_token=on_token
            )
        else:
            answer = generator.generate(q, hits, timeout_ms=max(left, 1.0))
            if on_token is not None and answer.text:
                on_token(answer.text)
        timings["generate"] = (time.perf_counter() - t) * 1e3
        self.costs.observe(stage, timings["generate"])
        if answer.truncated:
            degraded.setdefault("generate", "truncated at the deadline")
        return answer


def _renumber(hits: list[Hit]) -> list[Hit]:
    return [h if h.rank == n else replace(h, rank=n) for n, h in enumerate(hits, start=1)]
