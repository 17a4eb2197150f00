"""Extractive answers (no model): the answer-bearing sentence of the top passages, cited.

Every sentence ``s`` of the packed passages (see :mod:`ragfleet.generate.prompt`) is scored
by the IDF-weighted share of the question's terms it contains (together with its
passage's title, which pronouns in the sentence refer to), plus an optional embedding
similarity and a small prior for the passage's rank ``n``:

    overlap(s) = Σ_{t ∈ Q ∩ s} idf(t) / Σ_{t ∈ Q} idf(t),   idf(t) = ln(1 + N / df(t))
    score(s)   = overlap(s) + γ·cue(s) + λ·cos(e_Q, e_s) + β / n

with ``N`` the number of candidate sentences and ``df(t)`` how many contain term ``t``
(terms from the BM25 analyzer: lowercased, stopwords dropped, Snowball-stemmed) and
``cue(s)`` the answer-type cue of :mod:`ragfleet.generate.answer_type` (1 when the sentence
holds a number, date or name of the kind the question asks for that the question does not
already hold). The overlap alone is the sliding-window baseline of SQuAD (Rajpurkar et al.
2016, §5) at sentence granularity; it prefers the sentence that restates the question over
the one that answers it, which the cue corrects. The best sentence is the answer, cited
``[n]`` with its character span; the typed candidate nearest the question's words in it is
``Answer.short``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ragfleet.errors import ConfigError
from ragfleet.generate.answer_type import best_span, cue
from ragfleet.generate.base import Answer, Citation, check_query
from ragfleet.generate.prompt import PromptConfig, TokenCounter, build_prompt
from ragfleet.types import Hit

TYPE_WEIGHT = 0.1  # γ, chosen on the tuning half of SQuAD dev (benchmarks/answer_select.py)


@dataclass(frozen=True)
class ExtractiveConfig:
    """``sentences``: how many top sentences form the answer; ``dense_weight`` λ (used only
    with an encoder) and ``dense_shortlist``, how many sentences (the best by the lexical
    terms) it is computed for; ``dense_prior_ms``, its assumed cost before one is observed
    (the term is left out when it does not fit the generator's timeout); ``rank_prior`` β;
    ``prompt``: how passages are packed.

    λ = 1 and β = 0.2 were chosen on 600 SQuAD dev questions disjoint from the 500 that
    ``benchmarks/qa_squad.py`` reports. There, with ~24 candidate sentences per question,
    citation precision is 0.843 without the dense term, 0.870 with a shortlist of 4 and
    0.873 with all of them. The term costs ~17 ms per sentence read on a 2-core CPU (p50
    +78 ms with 4, +138 ms with 8), so the default shortlist is 4."""

    sentences: int = 1
    type_weight: float = TYPE_WEIGHT
    dense_weight: float = 1.0
    dense_shortlist: int = 4
    dense_prior_ms: float = 100.0
    rank_prior: float = 0.2
    prompt: PromptConfig = field(
        default_factory=lambda: PromptConfig(budget_tokens=2048, max_passages=5)
    )

    def __post_init__(self) -> None:
        if min(self.dense_weight, self.rank_prior, self.type_weight) < 0 or self.sentences < 1:
            raise ConfigError(
                "extractive sentences >= 1, dense_weight, rank_prior and type_weight >= 0"
            )
        if self.dense_shortlist < self.sentences:
            raise ConfigError(
                f"dense_shortlist ({self.dense_shortlist}) must be >= sentences ({self.sentences})"
            )


@dataclass(frozen=True, slots=True)
class Sentence:
    n: int  # 1-based passage number
    start: int
    end: int
    text: str
    title: str = ""

    @property
    def context(self) -> str:
        """What the overlap is computed on: the passage title and the sentence, so that a
        sentence saying "It was played at …" still matches a question naming the title."""
        return f"{self.title} {self.text}"


class Extractive:
    """The default generator: picks and cites sentences, never invents text.

    Args:
        config: see :class:`ExtractiveConfig`.
        encoder: optional ``encode(texts, kind)`` encoder for the ``λ·cos`` term.
        counter: token counter for packing (default: the MiniLM tokenizer).
    """

    name = "extractive"

    def __init__(
        self,
        config: ExtractiveConfig | None = None,
        *,
        encoder: Any | None = None,
        counter: TokenCounter | None = None,
    ) -> None:
        from ragfleet.config import AnalyzerConfig
        from ragfleet.index.sparse.analyzer import Analyzer
        from ragfleet.ingest.tokenize import minilm_tokenizer

        self.config = config or ExtractiveConfig()
        self.encoder = encoder
        self.counter: TokenCounter = counter or minilm_tokenizer()
        self._analyzer = Analyzer(AnalyzerConfig())
        self._dense_ms: deque[float] = deque(maxlen=100)

    def generate(
        self, query: str, hits: Sequence[Hit], *, timeout_ms: float | None = None
    ) -> Answer:
        """The best ``config.sentences`` sentences, each followed by its ``[n]``. When the
        dense term is left out because it does not fit ``timeout_ms``, the answer is marked
        ``truncated`` (it was chosen with less evidence because of the deadline)."""
        check_query(query)
        t0 = time.perf_counter()
        passages = build_prompt(query, hits, self.counter, self.config.prompt).passages
        sentences = split_passages(passages)
        if not sentences:
            return Answer("", (), passages, self.name, {"generate": _ms(t0)})
        left = None if timeout_ms is None else timeout_ms - (time.perf_counter() - t0) * 1e3
        dense = self.dense_fits(left)
        scores = self.score(query, sentences, dense=dense)
        best = sorted(np.argsort(-scores, kind="stable")[: self.config.sentences])
        chosen = [sentences[int(i)] for i in best]
        text = " ".join(f"{s.text} [{s.n}]" for s in chosen)
        citations: list[Citation] = []
        for s in chosen:
            if all(c.n != s.n for c in citations):
                h = passages[s.n - 1]
                citations.append(Citation(s.n, h.chunk_id, h.doc_id, (s.start, s.end)))
        cut = not dense and self.encoder is not None and self.config.dense_weight > 0
        span = best_span(query, chosen[0].text)
        short = "" if span is None else chosen[0].text[span[0] : span[1]]
        timings = {"generate": _ms(t0)}
        return Answer(
            text, tuple(citations), passages, self.name, timings, truncated=cut, short=short
        )

    def dense_fits(self, left_ms: float | None) -> bool:
        """Whether the ``λ·cos`` term fits ``left_ms``: its p99 over the last runs (before
        any, ``config.dense_prior_ms``) must be at most ``left_ms``; ``None``: no limit."""
        if self.encoder is None or self.config.dense_weight <= 0:
            return False
        if left_ms is None:
            return True
        seen = list(self._dense_ms)
        cost = float(np.percentile(seen, 99)) if seen else self.config.dense_prior_ms
        return cost <= left_ms

    def score(
        self, query: str, sentences: Sequence[Sentence], *, dense: bool = True
    ) -> np.ndarray[Any, Any]:
        """``score(s)`` of the module docstring for each sentence. With an encoder (and
        ``dense``), the ``λ·cos`` term is computed for the ``dense_shortlist`` best sentences
        by the lexical part only and the others score ``-inf``, so the encoder reads a few
        sentences, not all of them."""
        q_terms, *s_terms = self._analyzer.analyze_batch([query, *(s.context for s in sentences)])
        overlap = term_overlap(set(q_terms), [set(t) for t in s_terms])
        prior = np.array([1.0 / s.n for s in sentences]) * self.config.rank_prior
        out = np.asarray(overlap + prior, dtype=np.float64)
        if self.config.type_weight > 0:
            out += self.config.type_weight * np.array([cue(query, s.text) for s in sentences])
        if dense and self.encoder is not None and self.config.dense_weight > 0:
            t0 = time.perf_counter()
            short = np.argsort(-out, kind="stable")[: self.config.dense_shortlist]
            q = self.encoder.encode([query], kind="query")[0]
            vecs = self.encoder.encode([sentences[int(i)].text for i in short], kind="document")
            out[short] += self.config.dense_weight * (vecs @ q).astype(np.float64)
            cut = np.ones(len(out), dtype=bool)
            cut[short] = False
            out[cut] = -np.inf  # outside the shortlist: never chosen over a shortlisted one
            self._dense_ms.append((time.perf_counter() - t0) * 1e3)
        return out


def term_overlap(query: set[str], sentences: Sequence[set[str]]) -> np.ndarray[Any, Any]:
    """``Σ_{t ∈ Q ∩ s} idf(t) / Σ_{t ∈ Q} idf(t)`` per sentence, ``idf = ln(1 + N / df)``;
    all zeros when the query has no terms."""
    n = max(len(sentences), 1)
    idf = {t: math.log(1.0 + n / max(1, sum(t in s for s in sentences))) for t in query}
    total = sum(idf.values())
    if total == 0:
        return np.zeros(len(sentences))
    return np.array([sum(idf[t] for t in query & s) / total for s in sentences])


def split_passages(passages: Sequence[Hit]) -> list[Sentence]:
    """Every sentence of every passage, with its passage number and character span."""
    from ragfleet.ingest.sentence import split_sentences

    return [
        Sentence(n, a, b, h.text[a:b], h.title)
        for n, h in enumerate(passages, start=1)
        for a, b in split_sentences(h.text)
    ]


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1e3, 3)
