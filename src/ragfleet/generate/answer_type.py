"""Answer-type cues: what kind of string a question asks for, and where a sentence offers
one that the question does not already hold.

A question is typed by its wh-phrase, a reduced form of the coarse classes of Li & Roth
(2002), "Learning Question Classifiers":

* ``number`` — how many / much / long / far / old / large / big, what percentage …
* ``date`` — when, what / which year, date, century, decade, month, day
* ``person`` — who, whom, whose
* ``place`` — where
* ``name`` — which / what followed by a noun ("Which NFL team …", "What company …")
* ``other`` — why, how (manner), what is …: no cue

A sentence's candidates of each type are found by surface patterns: numbers (digits, number
words), dates (years 1000–2099, month names), names (runs of capitalised words, not at the
sentence start unless the run is longer than one word). A candidate counts only when none
of its words is in the question — an answer is what the question does not already say.

    cue(s) = 1 if s has a candidate of the question's type (absent from the question) else 0

``person``, ``place`` and ``name`` questions all take name candidates. :func:`best_span`
picks, among a sentence's candidates, the one nearest the question's words in it: the
answer span shown with the sentence as its context.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

AnswerType = Literal["number", "date", "person", "place", "name", "other"]

_MONTHS = frozenset(
    {"january", "february", "march", "april", "may", "june", "july", "august", "september",
     "october", "november", "december"}
)  # fmt: skip
_NUMBER_WORDS = frozenset(
    {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
     "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
     "nineteen", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
     "hundred", "thousand", "million", "billion", "trillion", "dozen", "half"}
)  # fmt: skip
_WORD = re.compile(r"[A-Za-z0-9][\w'’\-.]*[\w]|[A-Za-z0-9]")
_YEAR = re.compile(r"^(1[0-9]|20)\d\d(s)?$")
_NUM = re.compile(r"^\d[\d,.]*(%|s)?$")
_STOP_CAPS = {"The", "A", "An", "In", "On", "At", "It", "This", "That", "These", "Those", "He",
              "She", "They", "We", "His", "Her", "Their", "Its", "As", "By", "For", "From",
              "After", "Before", "During", "However", "When", "While", "Although", "If", "Of",
              "And", "But", "Or", "To", "With", "There", "Some", "Many", "Most", "One"}  # fmt: skip

_DATE_NOUNS = r"(year|years|date|century|decade|month|day|era|period|time)"
_RULES: tuple[tuple[re.Pattern[str], AnswerType], ...] = (
    (re.compile(r"\bhow (many|much|long|far|old|large|big|tall|high|often|fast|wide|deep)\b"),
     "number"),
    (re.compile(r"\b(what|which) (percentage|percent|proportion|number|amount|fraction)\b"),
     "number"),
    (re.compile(rf"\b(what|which|in what|in which) {_DATE_NOUNS}\b"), "date"),
    (re.compile(r"^(when)\b|\bwhen (was|is|did|were|does|do|will|had|has)\b"), "date"),
    (re.compile(r"\b(who|whom|whose)\b"), "person"),
    (re.compile(r"\bwhere\b"), "place"),
    (re.compile(r"\b(which|what) [a-z]+"), "name"),
)  # fmt: skip


def question_type(question: str) -> AnswerType:
    """The answer type of ``question`` (the first rule of the module docstring that fits)."""
    q = " ".join(question.lower().split())
    for pattern, kind in _RULES:
        if pattern.search(q):
            if kind == "name" and re.search(r"\b(what|which) (is|are|was|were|does|do|did)\b", q):
                continue  # "what is X" asks for a description, not a name
            return kind
    return "other"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A typed stretch of a sentence: ``text[start:end]`` (character offsets in it)."""

    kind: Literal["number", "date", "name"]
    start: int
    end: int
    words: tuple[str, ...]


def _words(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def candidates(sentence: str) -> list[Candidate]:
    """Numbers, dates and names in ``sentence`` (see the module docstring)."""
    words = _words(sentence)
    out: list[Candidate] = []
    i = 0
    while i < len(words):
        w, a, _ = words[i]
        low = w.lower().rstrip(".")
        if _YEAR.match(w) or low in _MONTHS:
            j = i + 1  # "February 7, 2016": the month, a day and a year as one date
            while j < len(words) and (words[j][0].isdigit() or words[j][0].lower() in _MONTHS):
                j += 1
            out.append(Candidate("date", a, words[j - 1][2], tuple(x[0] for x in words[i:j])))
            i = j
            continue
        if _NUM.match(w) or low in _NUMBER_WORDS:
            j = i + 1
            while j < len(words) and (
                _NUM.match(words[j][0]) or words[j][0].lower() in _NUMBER_WORDS
            ):
                j += 1
            out.append(Candidate("number", a, words[j - 1][2], tuple(x[0] for x in words[i:j])))
            i = j
            continue
        if w[0].isupper():
            j = i + 1
            while j < len(words) and (words[j][0][0].isupper() or words[j][0] in ("of", "de")):
                j += 1
            while j - 1 > i and not words[j - 1][0][0].isupper():
                j -= 1  # a run does not end on "of"
            run = words[i:j]
            if run[0][0] in _STOP_CAPS and len(run) > 1:
                run = run[1:]
            first = i == 0 and len(run) == 1
            if not (first or run[0][0] in _STOP_CAPS):
                out.append(Candidate("name", run[0][1], run[-1][2], tuple(x[0] for x in run)))
            i = j
            continue
        i += 1
    return out


def _question_words(question: str) -> set[str]:
    return {w.lower() for w, _, _ in _words(question)}


def _fits(kind: AnswerType, c: Candidate) -> bool:
    if kind in ("person", "place", "name"):
        return c.kind == "name"
    return c.kind == kind


def typed_candidates(question: str, sentence: str) -> list[Candidate]:
    """The candidates of ``sentence`` of the question's type whose words are all new."""
    kind = question_type(question)
    if kind == "other":
        return []
    seen = _question_words(question)
    return [
        c
        for c in candidates(sentence)
        if _fits(kind, c) and not any(w.lower().rstrip(".") in seen for w in c.words)
    ]


def cue(question: str, sentence: str) -> float:
    """``cue(s)`` of the module docstring."""
    return 1.0 if typed_candidates(question, sentence) else 0.0


def best_span(question: str, sentence: str) -> tuple[int, int] | None:
    """The typed candidate nearest (in characters) to the question's words in the
    sentence; None when there is none."""
    found = typed_candidates(question, sentence)
    if not found:
        return None
    seen = _question_words(question)
    anchors = [(a + b) / 2 for w, a, b in _words(sentence) if w.lower() in seen]
    if not anchors:
        c = found[0]
        return c.start, c.end

    def distance(c: Candidate) -> float:
        mid = (c.start + c.end) / 2
        return min(abs(mid - x) for x in anchors)

    c = min(found, key=distance)
    return c.start, c.end
