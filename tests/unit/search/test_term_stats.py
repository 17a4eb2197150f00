"""Collection-wide term statistics: merge, avgdl, Lucene idf."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ragfleet.errors import InputError
from ragfleet.search.stats import CollectionStats, ShardTermStats, global_idf

A = ShardTermStats(n_docs=10, total_len=100, df={"cell": 3, "gene": 0})
B = ShardTermStats(n_docs=30, total_len=140, df={"cell": 5, "gene": 2})


def test_merge_sums_counts_and_averages_lengths() -> None:
    stats = CollectionStats.merge([A, B])
    assert stats.n_docs == 40 and stats.total_len == 240
    assert dict(stats.df) == {"cell": 8, "gene": 2}
    assert stats.avgdl == 240 / 40


def test_idf_is_lucenes() -> None:
    stats = CollectionStats.merge([A, B])
    assert stats.idf("cell") == pytest.approx(math.log(1 + (40 - 8 + 0.5) / (8 + 0.5)))
    assert global_idf([A, B], ["gene", "cell", "gene"]) == {
        "gene": pytest.approx(math.log(1 + (40 - 2 + 0.5) / 2.5)),
        "cell": stats.idf("cell"),
    }
    assert stats.idf("gene") > stats.idf("cell") > 0


def test_empty_collection_has_a_usable_avgdl() -> None:
    stats = CollectionStats.merge([ShardTermStats(0, 0, {"x": 0})])
    assert stats.avgdl == 1.0
    assert stats.idf("x") == pytest.approx(math.log(1 + 0.5 / 0.5))


def test_errors_name_what_to_do() -> None:
    with pytest.raises(InputError, match="at least one shard"):
        CollectionStats.merge([])
    with pytest.raises(InputError, match="same terms"):
        CollectionStats.merge([A, ShardTermStats(1, 1, {"cell": 1})])
    with pytest.raises(InputError, match="stats_for"):
        CollectionStats.merge([A]).idf("protein")


shard_stats = st.builds(
    lambda n, extra, dfs: ShardTermStats(
        n, n + extra, {f"t{i}": min(d, n) for i, d in enumerate(dfs)}
    ),
    st.integers(0, 1000),
    st.integers(0, 5000),
    st.just([0, 3, 7, 1000]),
)


@given(st.lists(shard_stats, min_size=1, max_size=6), st.randoms())
def test_merge_is_order_independent_and_idf_positive(
    shards: list[ShardTermStats], rnd: random.Random
) -> None:
    shuffled = list(shards)
    rnd.shuffle(shuffled)
    one, two = CollectionStats.merge(shards), CollectionStats.merge(shuffled)
    assert one == two
    assert all(one.idf(t) > 0 for t in one.df)
    assert one.n_docs == sum(s.n_docs for s in shards)
