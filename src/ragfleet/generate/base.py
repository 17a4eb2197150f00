"""The :class:`Generator` protocol and the cited :class:`Answer` it returns.

A generator reads a question and ranked hits and writes an answer whose claims cite the
passages they come from as ``[n]``: ``n`` is the 1-based position of a passage in
``Answer.passages`` (the hits that were actually put in front of the model, best first).
A citation can only point at a passage that was passed: :func:`parse_citations` drops any
``[n]`` outside ``1..len(passages)``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ragfleet.errors import DeadlineExceeded, InputError
from ragfleet.types import Hit

_MARK = re.compile(r"\[(\d{1,3})\]")


@dataclass(frozen=True, slots=True)
class Citation:
    """``[n]`` in an answer → passage ``n`` (1-based), its chunk and document; ``span`` is
    the ``(start, end)`` character range of the cited text inside the passage text, or
    ``None`` when the generator does not know which part it used."""

    n: int
    chunk_id: str
    doc_id: str
    span: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "chunk_id": self.chunk_id,
            "doc_id": self.doc_id,
            "span": list(self.span) if self.span is not None else None,
        }


@dataclass(frozen=True, slots=True)
class Answer:
    """A generated answer: ``text`` with ``[n]`` markers, the citations they resolve to,
    the passages that were shown (``[n]`` is ``passages[n - 1]``), the model, and
    per-step timings in milliseconds. ``truncated`` is set when the deadline cut it short;
    ``short`` is the answer span an extractive answer found inside its sentence."""

    text: str
    citations: tuple[Citation, ...]
    passages: tuple[Hit, ...]
    model: str
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    truncated: bool = False
    short: str = ""  # the answer span inside ``text`` where one stands out ("" if none)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "short": self.short,
            "citations": [c.to_dict() for c in self.citations],
            "passages": [
                {"n": n, "chunk_id": h.chunk_id, "doc_id": h.doc_id, "title": h.title}
                for n, h in enumerate(self.passages, start=1)
            ],
            "model": self.model,
            "timings_ms": dict(self.timings_ms),
            "truncated": self.truncated,
        }


@runtime_checkable
class Generator(Protocol):
    """Question + ranked hits → cited :class:`Answer`.

    ``timeout_ms`` is what is left of the request's budget: a generator stops early (and
    sets ``Answer.truncated``) rather than run past it.
    """

    name: str

    def generate(
        self, query: str, hits: Sequence[Hit], *, timeout_ms: float | None = None
    ) -> Answer: ...


def check_query(query: str) -> None:
    """Raise :class:`InputError` for an empty question."""
    if not isinstance(query, str) or not query.strip():
        raise InputError(f"a question must be a non-empty string, got {query!r}")


def parse_citations(
    text: str, passages: Sequence[Hit], spans: Mapping[int, tuple[int, int]] | None = None
) -> tuple[Citation, ...]:
    """The distinct ``[n]`` markers of ``text`` that name a passed passage, in order of first
    appearance; markers outside ``1..len(passages)`` are ignored."""
    seen: list[int] = []
    for m in _MARK.finditer(text):
        n = int(m.group(1))
        if 1 <= n <= len(passages) and n not in seen:
            seen.append(n)
    spans = spans or {}
    return tuple(
        Citation(n, passages[n - 1].chunk_id, passages[n - 1].doc_id, spans.get(n)) for n in seen
    )


def strip_citations(text: str) -> str:
    """``text`` without its ``[n]`` markers and the spaces before them."""
    return re.sub(r"\s*\[\d{1,3}\]", "", text).strip()


def attribute(text: str, passages: Sequence[Hit]) -> tuple[str, tuple[Citation, ...]]:
    """Post-hoc attribution for a model that wrote no ``[n]``: cite the best-ranked passage
    that contains the answer verbatim (case-insensitive), with the span found, and append
    its marker. An answer found in no passage stays uncited (never a guessed citation)."""
    needle = strip_citations(text).strip().rstrip(".").lower()
    if len(needle) < 2:
        return text, ()
    for n, h in enumerate(passages, start=1):
        at = h.text.lower().find(needle)
        if at >= 0:
            return f"{text} [{n}]", (Citation(n, h.chunk_id, h.doc_id, (at, at + len(needle))),)
    return text, ()


def drain(
    deltas: Iterable[str],
    deadline: float | None,
    sinks: Sequence[Callable[[str], None] | None] = (),
) -> tuple[str, bool]:
    """A streamed completion: ``(text, truncated)``. Each non-empty delta goes to every sink
    as it arrives; the stream stops at the ``time.monotonic()`` deadline (``truncated``). A
    :class:`DeadlineExceeded` from the stream after some text is a truncation, before any
    text it propagates."""
    parts: list[str] = []
    truncated = False
    try:
        for delta in deltas:
            parts.append(delta)
            if delta:
                for sink in sinks:
                    if sink is not None:
                        sink(delta)
            if deadline is not None and time.monotonic() >= deadline:
                truncated = True
                break
    except DeadlineExceeded:
        if not parts:
            raise
        truncated = True
    return "".join(parts).strip(), truncated


def cited_answer(
    text: str, passages: tuple[Hit, ...], model: str, started: float, truncated: bool
) -> Answer:
    """The :class:`Answer` for a model's ``text``: its own ``[n]`` citations, or post-hoc
    :func:`attribute` when it wrote none; ``generate`` timed from ``started`` (perf_counter)."""
    timings = {"generate": round((time.perf_counter() - started) * 1e3, 3)}
    cites = parse_citations(text, passages)
    if not cites:
        text, cites = attribute(text, passages)
    return Answer(text, cites, passages, model, timings, truncated)
