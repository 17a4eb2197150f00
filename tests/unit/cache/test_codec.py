"""Results ↔ JSON bytes: an exact round trip, and corrupt entries refused."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragfleet.cache import results_from_bytes, results_to_bytes
from ragfleet.errors import InputError
from ragfleet.types import CacheInfo, Hit, Results

finite = st.floats(allow_nan=False, allow_infinity=False)
names = st.text(min_size=1, max_size=8)
json_leaf = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | finite | st.text(max_size=8)
metadata = st.dictionaries(names, json_leaf | st.lists(json_leaf, max_size=3), max_size=3)

hits = st.builds(
    Hit,
    rank=st.integers(1, 1000),
    doc_id=names,
    chunk_id=names,
    score=finite,
    text=st.text(max_size=200),
    shard=st.integers(0, 64),
    title=st.text(max_size=20),
    scores=st.dictionaries(st.sampled_from(["dense", "sparse", "fused", "rerank"]), finite),
    ranks=st.dictionaries(st.sampled_from(["dense", "sparse"]), st.integers(1, 1000)),
    metadata=metadata,
)
infos = st.one_of(
    st.just(CacheInfo()),
    st.just(CacheInfo(hit=True, kind="exact")),
    st.builds(
        CacheInfo,
        hit=st.just(True),
        kind=st.just("semantic"),
        matched_query=st.text(min_size=1),
        similarity=st.floats(0.0, 1.0),
    ),
)
results = st.builds(
    Results,
    hits=st.lists(hits, max_size=5).map(tuple),
    timings_ms=st.dictionaries(names, st.floats(0, 1e6)),
    coverage=st.floats(0.0, 1.0),
    missing_shards=st.lists(st.integers(0, 64), max_size=3).map(tuple),
    mode=st.sampled_from(["dense", "sparse", "hybrid"]),
    cache=infos,
)


@settings(max_examples=100, deadline=None)
@given(results)
def test_round_trip_is_exact(r: Results) -> None:
    data = results_to_bytes(r)
    assert isinstance(data, bytes)
    back = results_from_bytes(data)
    assert back == r
    assert back.to_dict() == r.to_dict()


def test_unicode_is_kept_as_utf8() -> None:
    r = Results(hits=(Hit(1, "d", "d#0", 1.0, "naïve café 東京", 0),), timings_ms={})
    assert "東京".encode() in results_to_bytes(r)


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        b'{"format": 2, "hits": []}',
        b'{"format": 1, "hits": "x"}',
        b'{"format": 1, "hits": [], "timings_ms": {}, "coverage": 1, "missing_shards": [],'
        b' "mode": "dense", "cache": {"hit": true, "kind": "fuzzy"}}',
        json.dumps({"format": 1, "hits": [{"rank": 1}]}).encode(),
    ],
)
def test_corrupt_entries_raise_input_error(data: bytes) -> None:
    with pytest.raises(InputError, match="results"):
        results_from_bytes(data)
