"""Analyzer: tokenisation, lowercasing, stopwords, Snowball stemming, configuration."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragfleet.config import AnalyzerConfig
from ragfleet.errors import UnknownSpecError
from ragfleet.index.sparse.analyzer import ENGLISH_STOPWORDS, Analyzer


def test_default_chain_lowercases_drops_stopwords_and_stems() -> None:
    analyzer = Analyzer(AnalyzerConfig())
    assert analyzer("The Cells were RUNNING, and studies of cells!") == [
        "cell",
        "were",
        "run",
        "studi",
        "cell",
    ]


def test_tokens_are_unicode_words_with_digits() -> None:
    analyzer = Analyzer(AnalyzerConfig(stopwords=None, stemmer=None))
    assert analyzer("Über-Straße: café 42x, naïve_α β") == [
        "über",
        "straße",
        "café",
        "42x",
        "naïve_α",
        "β",
    ]


def test_each_step_can_be_switched_off() -> None:
    text = "The Running Dogs"
    assert Analyzer(AnalyzerConfig(lowercase=False, stopwords=None, stemmer=None))(text) == [
        "The",
        "Running",
        "Dogs",
    ]
    assert Analyzer(AnalyzerConfig(stopwords=None, stemmer=None))(text) == [
        "the",
        "running",
        "dogs",
    ]
    assert Analyzer(AnalyzerConfig(stemmer=None))(text) == ["running", "dogs"]
    assert Analyzer(AnalyzerConfig(stopwords=None))(text) == ["the", "run", "dog"]


def test_stopword_list_is_lucenes_english_set() -> None:
    assert len(ENGLISH_STOPWORDS) == 33
    assert {"the", "a", "with", "into"} <= ENGLISH_STOPWORDS
    assert Analyzer(AnalyzerConfig(stemmer=None))(" ".join(sorted(ENGLISH_STOPWORDS))) == []


def test_unknown_names_raise_config_errors() -> None:
    with pytest.raises(UnknownSpecError, match="stopword list"):
        Analyzer(AnalyzerConfig(stopwords="klingon"))
    with pytest.raises(UnknownSpecError, match="Snowball stemmer"):
        Analyzer(AnalyzerConfig(stemmer="klingon"))


def test_other_snowball_languages() -> None:
    assert Analyzer(AnalyzerConfig(stopwords=None, stemmer="french"))("continuellement") == [
        "continuel"
    ]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=8))
def test_batch_equals_one_at_a_time_and_is_repeatable(texts: list[str]) -> None:
    analyzer = Analyzer(AnalyzerConfig())
    batch = analyzer.analyze_batch(texts)
    assert batch == [analyzer(t) for t in texts]
    assert batch == Analyzer(AnalyzerConfig()).analyze_batch(texts)
    for terms in batch:
        assert all(t for t in terms)
