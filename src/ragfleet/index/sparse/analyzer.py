"""Text analysis for BM25: tokenise, lowercase, drop stopwords, stem.

The chain is Lucene's ``EnglishAnalyzer`` minus its possessive filter: unicode word
tokens (the regex ``\\w+``, so letters, digits and ``_`` of any script), optional
lowercasing, removal of a named stopword list, then a Snowball stemmer (Porter 2001,
"Snowball: A language for stemming algorithms") through PyStemmer.

Speed: the analyzer runs on every query and on bulk ingest, so stems are cached per
surface word in a dict, and :meth:`Analyzer.analyze_batch` stems all words not yet seen
in one ``stemWords`` call (PyStemmer's C loop) before mapping tokens through the cache.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Sequence
from itertools import chain

from ragfleet._optional import require
from ragfleet.config import AnalyzerConfig
from ragfleet.errors import UnknownSpecError

__all__ = ["ENGLISH_STOPWORDS", "STOPWORD_LISTS", "Analyzer"]

#: Lucene's ``EnglishAnalyzer.ENGLISH_STOP_WORDS_SET`` (also bm25s's ``"en"`` list).
ENGLISH_STOPWORDS: frozenset[str] = frozenset(
    (  # noqa: SIM905 - one line per word would hide the list
        "a an and are as at be but by for if in into is it no not of on or such that the "
        "their then there these they this to was will with"
    ).split()
)

#: Stopword lists by the name used in :attr:`AnalyzerConfig.stopwords`.
STOPWORD_LISTS: dict[str, frozenset[str]] = {"english": ENGLISH_STOPWORDS}

_TOKEN = re.compile(r"\w+")
_MAX_CACHE = 1_000_000  # stems kept per analyzer before the cache is reset


def _stopword_set(name: str | None) -> frozenset[str]:
    if name is None:
        return frozenset()
    try:
        return STOPWORD_LISTS[name]
    except KeyError as e:
        raise UnknownSpecError(
            f"unknown stopword list {name!r}; choose one of {sorted(STOPWORD_LISTS)} or None"
        ) from e


def _stem_function(name: str | None) -> Callable[[list[str]], list[str]] | None:
    if name is None:
        return None
    stemmer_module = require("Stemmer", extra="sparse")
    try:
        stemmer = stemmer_module.Stemmer(name)
    except KeyError as e:
        raise UnknownSpecError(
            f"unknown Snowball stemmer {name!r}; choose one of "
            f"{stemmer_module.algorithms()} or None"
        ) from e
    stem_words: Callable[[list[str]], list[str]] = stemmer.stemWords
    return stem_words


class Analyzer:
    """Turns text into BM25 terms as configured by :class:`AnalyzerConfig`.

    ``stopwords`` are compared with the token after lowercasing (when enabled) and
    before stemming, as Lucene's ``StopFilter`` does.

    Example:
        >>> Analyzer(AnalyzerConfig())("The cells were running")
        ['cell', 'were', 'run']
    """

    __slots__ = ("_cache", "_lock", "_stem", "_stopwords", "config")

    def __init__(self, config: AnalyzerConfig | None = None) -> None:
        self.config = config if config is not None else AnalyzerConfig()
        self._stopwords = _stopword_set(self.config.stopwords)
        self._stem = _stem_function(self.config.stemmer)
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, text: str) -> list[str]:
        """The terms of one text, in order (repeated terms repeat)."""
        return self.analyze_batch((text,))[0]

    def analyze_batch(self, texts: Iterable[str]) -> list[list[str]]:
        """The terms of each text; stems every new word of the batch in one call."""
        words = [self._words(text) for text in texts]
        if self._stem is None:
            return words
        stem_of = self._stems(words).__getitem__
        return [list(map(stem_of, ws)) for ws in words]

    def _words(self, text: str) -> list[str]:
        if self.config.lowercase:
            text = text.lower()
        stop = self._stopwords
        return [w for w in _TOKEN.findall(text) if w not in stop]

    def _stems(self, words: Sequence[list[str]]) -> dict[str, str]:
        """The stem cache, holding every word of ``words``. Safe across threads: a full
        cache is replaced (never cleared under a reader) and the stemmer, which is not
        thread-safe, runs under a lock."""
        cache = self._cache
        if len(cache) > _MAX_CACHE:
            cache = self._cache = {}
        new = [w for w in set(chain.from_iterable(words)) if w not in cache]
        if new and self._stem is not None:
            with self._lock:
                stems = self._stem(new)
            cache.update(zip(new, stems, strict=True))
        return cache
