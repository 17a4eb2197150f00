"""Markdown-structure-aware chunking: split at ATX headings, then pack sentences.

Each section runs from its heading line to the next heading; its *path* is the chain of
enclosing headings, e.g. ``"Intro > Setup"``, stored in chunk metadata ``"section"``. A
heading with no body of its own joins the section after it, so no chunk is a bare heading.
Lines inside fenced code blocks (```````` or ``~~~``, CommonMark §4.5) are never headings.
Each section is packed with the sentence rule (:mod:`ragfleet.ingest.sentence`); no chunk
spans two sections.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from ragfleet.ingest.base import Cut, TokenChunker, TokenSpans
from ragfleet.ingest.sentence import pack_sentences, sentence_tokens, split_sentences

_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


@dataclass(frozen=True, slots=True)
class Heading:
    """An ATX heading: its line starts at character ``start``; ``path`` includes itself."""

    start: int
    level: int
    title: str
    path: str


def iter_headings(text: str) -> Iterator[Heading]:
    """The ATX headings of ``text`` in order, skipping fenced code blocks."""
    fence: str | None = None
    stack: list[tuple[int, str]] = []
    pos = 0
    for line in text.splitlines(keepends=True):
        start, pos = pos, pos + len(line)
        body = line.rstrip("\r\n")
        f = _FENCE.match(body)
        if f is not None:
            marker = f.group(1)
            if fence is None:
                fence = marker
            elif (
                marker[0] == fence[0] and len(marker) >= len(fence) and not body[f.end() :].strip()
            ):
                fence = None
            continue
        h = None if fence is not None else _HEADING.fullmatch(body)
        if h is None:
            continue
        level, title = len(h.group(1)), (h.group(2) or "").strip()
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        yield Heading(start, level, title, " > ".join(t for _, t in stack if t))


def first_heading(text: str) -> str | None:
    """The title of the first non-empty ATX heading, or ``None``."""
    return next((h.title for h in iter_headings(text) if h.title), None)


def sections(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, path)`` of each section, in order, together covering ``text``.

    The text before the first heading has path ``""``; a section with nothing after its
    heading line (or a blank preamble) joins the section after it.
    """
    heads = list(iter_headings(text))
    starts = [0, *(h.start for h in heads)]
    paths = ["", *(h.path for h in heads)]
    ends = [*starts[1:], len(text)]
    out: list[tuple[int, int, str]] = []
    start = 0
    for k, (head, end, path) in enumerate(zip(starts, ends, paths, strict=True)):
        body = head if k == 0 else _line_end(text, head)
        if k + 1 < len(starts) and not text[body:end].strip():
            continue
        out.append((start, end, path))
        start = end
    return out


def _line_end(text: str, pos: int) -> int:
    newline = text.find("\n", pos)
    return len(text) if newline < 0 else newline + 1


class MarkdownChunker(TokenChunker):
    """Sections split at headings, each packed with the sentence rule; the heading path
    goes into chunk metadata ``"section"`` (:data:`~ragfleet.ingest.base.SECTION_KEY`)."""

    __slots__ = ()

    def cuts(self, text: str, tokens: TokenSpans) -> list[Cut]:
        cfg = self.config
        bounds, fits = self.grid(text, tokens)
        out: list[Cut] = []
        for start, end, path in sections(text):
            lo, hi = tokens.starts.searchsorted([start, end], side="left").tolist()
            sents = sentence_tokens(tokens, split_sentences(text, start, end), lo, hi)
            packed = pack_sentences(sents, bounds, cfg.max_tokens, cfg.overlap, fits)
            out.extend(Cut(lo, hi, path) for lo, hi in packed)
        return out
