import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ragfleet.cluster.merge import merge_topk
from ragfleet.index.hits import ShardHits


def _hits(shard: int, scores: list[float]) -> ShardHits:
    s = np.sort(np.asarray(scores, dtype=np.float32))[::-1].copy()
    return ShardHits(shard, s, np.arange(len(s), dtype=np.int64))


def test_merge_is_global_topk() -> None:
    m = merge_topk([_hits(0, [0.9, 0.5]), _hits(1, [0.8, 0.7, 0.1])], k=3)
    assert m.scores.tolist() == np.float32([0.9, 0.8, 0.7]).tolist()
    assert m.keys() == [(0, 0), (1, 0), (1, 1)]


def test_ties_break_by_shard_then_row() -> None:
    m = merge_topk([_hits(1, [0.5]), _hits(0, [0.5, 0.5])], k=3)
    assert m.keys() == [(0, 0), (0, 1), (1, 0)]


def test_from_faiss_drops_padding() -> None:
    h = ShardHits.from_faiss(2, np.float32([0.3, -np.inf]), np.int64([4, -1]))
    assert h.rows.tolist() == [4] and len(h) == 1


def test_empty() -> None:
    assert len(merge_topk([], 5).rows) == 0


@given(
    st.lists(st.lists(st.floats(-10, 10, width=32), max_size=20), min_size=1, max_size=5),
    st.integers(1, 30),
)
def test_merge_equals_sort_of_union_and_is_order_independent(
    lists: list[list[float]], k: int
) -> None:
    shards = [_hits(i, xs) for i, xs in enumerate(lists)]
    m = merge_topk(shards, k)
    union = sorted(
        (
            (float(s), i, r)
            for i, h in enumerate(shards)
            for r, s in zip(h.rows, h.scores, strict=True)
        ),
        key=lambda t: (-t[0], t[1], t[2]),
    )[:k]
    assert [
        (s, i, r)
        for s, i, r in zip(m.scores.tolist(), m.shards.tolist(), m.rows.tolist(), strict=True)
    ] == [(s, i, int(r)) for s, i, r in union]
    assert merge_topk(shards[::-1], k).keys() == m.keys()
