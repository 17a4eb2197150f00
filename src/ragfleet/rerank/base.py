"""The :class:`Reranker` protocol and the candidate budget every reranker shares.

A reranker re-scores the first ``candidates`` hits of a ranked list with a more expensive
model, in batches, and returns the best ``top_n``: each re-scored hit carries
``scores["rerank"]`` and ``ranks["rerank"]``, its ``score`` becomes the rerank score and
``rank`` is renumbered 1, 2, …. Hits beyond the candidate budget keep their order and
follow the re-scored ones (a reranker never drops a candidate it did not look at in favour
of one ranked lower).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ragfleet.errors import ConfigError, InputError
from ragfleet.types import Hit

Scores = npt.NDArray[np.float32]


@dataclass(frozen=True)
class RerankConfig:
    """``candidates``: how many of the incoming hits are re-scored at most (the candidate
    budget); ``batch_size``: pairs per model call; ``max_tokens``: a passage is cut to this
    many tokens before scoring."""

    candidates: int = 20
    batch_size: int = 16
    max_tokens: int = 256

    def __post_init__(self) -> None:
        if self.candidates < 1 or self.batch_size < 1 or self.max_tokens < 8:
            raise ConfigError(
                "rerank candidates and batch_size must be >= 1 and max_tokens >= 8, got "
                f"{self.candidates}, {self.batch_size}, {self.max_tokens}"
            )


@runtime_checkable
class Reranker(Protocol):
    """Re-scores ``(query, passage)`` pairs; ``name`` is reported in responses."""

    name: str
    config: RerankConfig

    def score(self, query: str, texts: Sequence[str]) -> Scores:
        """One relevance score per text, higher is better, batched internally."""
        ...

    def rerank(self, query: str, hits: Sequence[Hit], top_n: int) -> list[Hit]:
        """The best ``top_n`` of ``hits`` after re-scoring the first ``config.candidates``."""
        ...


@runtime_checkable
class HitScorer(Protocol):
    """A reranker that scores hits by what the index stored for them (late interaction
    over stored token vectors) rather than by their text; the pipeline prefers it."""

    def score_hits(self, query: str, hits: Sequence[Hit]) -> Scores:
        """One score per hit, higher is better."""
        ...


@runtime_checkable
class Blender(Protocol):
    """A reranker whose final order blends its scores with the incoming order
    (:mod:`ragfleet.rerank.interpolate`); the pipeline applies it to the prefix it scored."""

    name: str

    def blend(self, scores: Scores, budget: int) -> Scores:
        """The scores to reorder by, from the raw scores of a head in incoming order, out
        of a rerank planned for ``budget`` candidates."""
        ...


def check_request(query: str, top_n: int) -> None:
    """Raise :class:`InputError` for an empty query or ``top_n < 1``."""
    if not isinstance(query, str) or not query.strip():
        raise InputError(f"a rerank query must be a non-empty string, got {query!r}")
    if top_n < 1:
        raise InputError(f"rerank top_n must be >= 1, got {top_n}")


def passage_text(hit: Hit) -> str:
    """What a reranker reads of a hit: ``title`` then ``text``."""
    return f"{hit.title}\n{hit.text}" if hit.title else hit.text


def rerank_with(reranker: Reranker, query: str, hits: Sequence[Hit], top_n: int) -> list[Hit]:
    """The shared :meth:`Reranker.rerank`: score the candidate budget, reorder, renumber."""
    check_request(query, top_n)
    head = list(hits[: reranker.config.candidates])
    if not head:
        return []
    scores = reranker.score(query, [passage_text(h) for h in head])
    return reorder(head, scores, list(hits[len(head) :]), top_n)


def reorder(
    head: Sequence[Hit],
    scores: Scores,
    tail: Sequence[Hit],
    top_n: int,
    raw: Mapping[str, Scores] | None = None,
) -> list[Hit]:
    """``head`` sorted by ``scores`` (descending, ties keep the incoming order), then
    ``tail`` unchanged, cut to ``top_n`` and renumbered from 1. ``raw``: more per-hit
    scores of the head to keep in each hit's ``scores`` under their names (a blending
    reranker's own, before the blend; a missing one is left out). Inputs are not mutated."""
    if len(scores) != len(head) or any(len(v) != len(head) for v in (raw or {}).values()):
        raise InputError(f"{len(scores)} rerank scores for {len(head)} hits")
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    out: list[Hit] = []
    for r, i in enumerate(order, start=1):
        h, s = head[int(i)], float(scores[int(i)])
        extra = {k: float(v[int(i)]) for k, v in (raw or {}).items() if np.isfinite(v[int(i)])}
        out.append(
            dataclasses.replace(
                h,
                score=s,
                scores={**h.scores, **extra, "rerank": s},
                ranks={**h.ranks, "rerank": r},
            )
        )
    out.extend(tail)
    return [dataclasses.replace(h, rank=n) for n, h in enumerate(out[:top_n], start=1)]
