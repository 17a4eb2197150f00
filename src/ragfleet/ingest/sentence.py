"""Sentence-aware chunking: whole sentences packed greedily up to ``max_tokens``.

Sentences come from a rule-based splitter in the spirit of Punkt (Kiss & Strunk 2006,
"Unsupervised Multilingual Sentence Boundary Detection") without its learned model: a
boundary is ``.``, ``!`` or ``?`` (plus closing quotes/brackets) followed by whitespace and
an upper-case letter, a digit or an opening quote, unless the word ending in ``.`` is a
known abbreviation (``e.g.``, ``Dr.``, ``Fig.``, ``et al.``…), an initial (``J.``) or
dotted (``U.S.``); a blank line, or a line break before a list item or heading, is always a
boundary. Packing: sentences ``i..j`` form a chunk while their tokens fit ``max_tokens``;
the next chunk starts with the last sentences of the previous one that fit in ``overlap``
tokens. A sentence longer than ``max_tokens`` is cut with the window rule
(:func:`ragfleet.ingest.window.window_ranges`).
"""

from __future__ import annotations

import itertools
import re

import numpy as np

from ragfleet.ingest.base import Cut, Fits, TokenChunker, TokenSpans, always_fits
from ragfleet.ingest.window import window_ranges

#: Words that end in "." without ending a sentence (lower case, without the final ".").
# fmt: off
ABBREVIATIONS = frozenset({
    "al", "approx", "ca", "cf", "co", "corp", "dept", "dr", "e.g", "eq", "eqs", "est", "etc",
    "fig", "figs", "i.e", "inc", "jr", "ltd", "mr", "mrs", "ms", "no", "nos", "pp", "prof",
    "ref", "refs", "resp", "sec", "sr", "st", "suppl", "tab", "vol", "vs",
})
# fmt: on
_ITEM = r"[ \t]*(?:[-*+•][ \t]|\d{1,3}[.)][ \t]|#{1,6}[ \t])"  # a list item or a heading
_BREAK = re.compile(
    r"(?=[\n.!?])"  # every alternative starts with one of these: skip other positions fast
    r"(?:(?P<para>\n[ \t\r\f\v]*\n)"  # a blank line ends a paragraph
    rf"|(?P<line>\n)(?={_ITEM})"  # so does a line break before an item or heading
    r"|(?P<end>[.!?])[\"'”’)\]]*(?P<gap>\s+))"  # sentence punctuation, then whitespace
)
_NEW_BLOCK = re.compile(rf"\n[ \t\r\f\v]*\n|\n(?={_ITEM})")
_OPENERS = frozenset("\"'“‘([")
_DOTTED = re.compile(r"(?:\w\.)+\w?")


def _is_abbreviation(text: str, lo: int, dot: int) -> bool:
    """Whether the word that ends with the ``.`` at ``dot`` is an abbreviation or initial."""
    word_start = max(text.rfind(c, lo, dot) for c in " \t\n") + 1
    word = text[max(word_start, lo) : dot].lstrip("\"'“‘([").lower()
    return word in ABBREVIATIONS or len(word) == 1 or _DOTTED.fullmatch(word) is not None


def _is_boundary(text: str, lo: int, hi: int, m: re.Match[str]) -> bool:
    """Whether a :data:`_BREAK` match ends a sentence (see the module docstring)."""
    if m.lastgroup != "gap":
        return True
    block = _NEW_BLOCK.search(text, m.start("gap"), min(m.end() + 12, hi))
    if block is not None and block.start() < m.end():  # the gap holds a paragraph break
        return True
    nxt = m.end()
    if nxt >= hi:
        return False
    c = text[nxt]
    if not (c.isupper() or c.isdigit() or c in _OPENERS):
        return False
    return m.group("end") != "." or not _is_abbreviation(text, lo, m.start("end"))


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    piece = text[start:end]
    left = len(piece) - len(piece.lstrip())
    return start + left, start + len(piece.rstrip())


def split_sentences(text: str, lo: int = 0, hi: int | None = None) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text[lo:hi]``: stripped, non-empty, in order,
    together covering every non-whitespace character."""
    hi = len(text) if hi is None else hi
    spans: list[tuple[int, int]] = []
    start = lo
    for m in _BREAK.finditer(text, lo, hi):
        if _is_boundary(text, lo, hi, m):
            end = m.start("gap") if m.lastgroup == "gap" else m.start()
            spans.append(_strip(text, start, end))
            start = m.end()
    spans.append(_strip(text, start, hi))
    return [(s, e) for s, e in spans if e > s]


def sentence_tokens(
    tokens: TokenSpans, spans: list[tuple[int, int]], lo: int = 0, hi: int | None = None
) -> list[tuple[int, int]]:
    """Contiguous token ranges of sentence spans, together covering tokens ``[lo, hi)``.

    Sentence ``k`` holds the tokens starting at or after its first character and before the
    first character of sentence ``k + 1``; the first sentence starts at token ``lo``, the
    last ends at ``hi`` (default: every token); sentences without tokens are dropped.
    """
    if not spans:
        return []
    char_starts = np.fromiter((s for s, _ in spans), dtype=np.int64, count=len(spans))
    cuts = np.searchsorted(tokens.starts, char_starts, side="left").tolist()
    cuts[0] = lo
    cuts.append(len(tokens) if hi is None else hi)
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def _carry(sents: list[tuple[int, int]], first: int, i: int, budget: int, cap: int) -> int:
    """The first sentence of the chunk after ``sents[first:i]``: the smallest ``j`` in
    ``(first, i]`` whose sentences ``j..i-1`` fit ``budget`` tokens and, with sentence
    ``i``, ``cap`` tokens (``j = i`` carries nothing)."""
    end, next_end = sents[i - 1][1], sents[i][1]
    j = i
    while j - 1 > first and end - sents[j - 1][0] <= budget and next_end - sents[j - 1][0] <= cap:
        j -= 1
    return j


def pack_sentences(
    sents: list[tuple[int, int]],
    bounds: list[int],
    max_tokens: int,
    overlap: int,
    fits: Fits = always_fits,
) -> list[tuple[int, int]]:
    """Greedy packing of contiguous sentence token ranges into ranges of ``<= max_tokens``."""
    out: list[tuple[int, int]] = []
    first = 0  # the first sentence of the open chunk
    for i, (lo, hi) in enumerate(sents):
        if hi - lo > max_tokens:
            if first < i:
                out.append((sents[first][0], sents[i - 1][1]))
            out.extend(window_ranges(bounds, lo, hi, max_tokens, overlap, fits))
            first = i + 1
        elif hi - sents[first][0] > max_tokens:
            out.append((sents[first][0], sents[i - 1][1]))
            first = _carry(sents, first, i, overlap, max_tokens)
    if first < len(sents):
        out.append((sents[first][0], sents[-1][1]))
    return out


class SentenceChunker(TokenChunker):
    """Whole sentences packed into chunks of at most ``max_tokens`` tokens."""

    __slots__ = ()

    def cuts(self, text: str, tokens: TokenSpans) -> list[Cut]:
        cfg = self.config
        if len(tokens) <= cfg.max_tokens:  # the whole text fits: no need to find sentences
            return [Cut(0, len(tokens))]
        sents = sentence_tokens(tokens, split_sentences(text))
        bounds, fits = self.grid(text, tokens)
        return [
            Cut(lo, hi)
            for lo, hi in pack_sentences(sents, bounds, cfg.max_tokens, cfg.overlap, fits)
        ]
