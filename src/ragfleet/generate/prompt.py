"""A prompt with numbered passages, packed best-first under a token budget.

::

    Answer the question using only the passages below. Cite the passages you use as [n].

    [1] <title>: <text>
    [2] …

    Question: <question>
    Answer:

Passages go in rank order while they fit; the first that does not fit whole is cut at a
token boundary to the room left (if at least ``min_passage_tokens``) and packing stops. The
finished prompt is counted again with the same tokenizer and passages are dropped from the
end until it fits, so ``n_tokens <= budget_tokens`` always holds (the header and the
question alone must fit, else :class:`~ragfleet.errors.InputError`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ragfleet.errors import ConfigError, InputError
from ragfleet.types import Hit

HEADER = "Answer the question using only the passages below. Cite the passages you use as [n].\n\n"


class TokenCounter(Protocol):
    """Counts tokens batch-first (``ragfleet.ingest.tokenize.HFTokenizer`` is one)."""

    def count(self, texts: Sequence[str]) -> list[int]: ...

    def offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]: ...


@dataclass(frozen=True)
class PromptConfig:
    """``budget_tokens``: the whole prompt's size limit; ``max_passages``: at most this many
    passages; ``min_passage_tokens``: a cut passage must keep at least this many tokens."""

    budget_tokens: int = 1024
    max_passages: int = 5
    min_passage_tokens: int = 32
    header: str = HEADER

    def __post_init__(self) -> None:
        if self.budget_tokens < 16 or self.max_passages < 1 or self.min_passage_tokens < 1:
            raise ConfigError(
                "prompt budget_tokens must be >= 16 and max_passages, min_passage_tokens >= 1"
            )


@dataclass(frozen=True)
class Prompt:
    """The prompt text, the passages it numbers (``[n]`` is ``passages[n - 1]``, possibly
    cut: their ``text`` is what the model saw) and its token count."""

    text: str
    passages: tuple[Hit, ...]
    n_tokens: int


def passage_line(n: int, hit: Hit) -> str:
    """``[n] title: text`` on one line (newlines in the text become spaces)."""
    body = " ".join(hit.text.split())
    return f"[{n}] {hit.title}: {body}\n" if hit.title else f"[{n}] {body}\n"


def render(question: str, passages: Sequence[Hit], header: str = HEADER) -> str:
    """The prompt text for already-chosen passages."""
    lines = "".join(passage_line(n, h) for n, h in enumerate(passages, start=1))
    return f"{header}{lines}\nQuestion: {' '.join(question.split())}\nAnswer:"


def build_prompt(
    question: str, hits: Sequence[Hit], counter: TokenCounter, config: PromptConfig | None = None
) -> Prompt:
    """Pack ``hits`` best-first into a prompt of at most ``config.budget_tokens`` tokens."""
    config = config or PromptConfig()
    base = counter.count([render(question, [], config.header)])[0]
    if base > config.budget_tokens:
        raise InputError(
            f"the question alone needs {base} tokens, over the prompt budget of "
            f"{config.budget_tokens}; shorten it or raise budget_tokens"
        )
    chosen = _pack(hits[: config.max_passages], counter, config, config.budget_tokens - base)
    while True:
        text = render(question, chosen, config.header)
        n_tokens = counter.count([text])[0]
        if n_tokens <= config.budget_tokens or not chosen:
            return Prompt(text, tuple(chosen), n_tokens)
        chosen = chosen[:-1]


def _pack(hits: Sequence[Hit], counter: TokenCounter, config: PromptConfig, room: int) -> list[Hit]:
    """Whole passages while they fit in ``room`` tokens, then at most one cut passage."""
    lines = [passage_line(n, h) for n, h in enumerate(hits, start=1)]
    sizes = [c - 2 for c in counter.count(lines)] if lines else []  # minus [CLS] [SEP]
    chosen: list[Hit] = []
    for hit, size in zip(hits, sizes, strict=True):
        if size <= room:
            chosen.append(hit)
            room -= size
            continue
        keep = room - (size - (counter.count([hit.text])[0] - 2))  # room for text tokens
        if keep >= config.min_passage_tokens:
            chosen.append(_cut(hit, counter, keep))
        break
    return chosen


def _cut(hit: Hit, counter: TokenCounter, n_tokens: int) -> Hit:
    """``hit`` with its text cut after its first ``n_tokens`` tokens."""
    spans = counter.offsets([hit.text])[0]
    end = spans[n_tokens - 1][1] if n_tokens <= len(spans) else len(hit.text)
    return dataclasses.replace(hit, text=hit.text[:end])
