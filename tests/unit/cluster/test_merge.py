import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ragfleet.cluster.merge import merge_topk
from ragfleet.index.hits import ShardHits


def _hits(shard: int, scores: list[float]) -> ShardHits:
    s = np.sort(np.asarray(scores, dtype=np.float32))[::-1].copy()
    rows = np.arange(len(s), dtype=np.int64)
    return ShardHits(shard, s, rows, np.asarray([f"s{shard}-r{r:03d}" for r in rows]))


def test_merge_is_global_topk() -> None:
    m = merge_topk([_hits(0, [0.9, 0.5]), _hits(1, [0.8, 0.7, 0.1])], k=3)
    assert m.scores.tolist() == np.float32([0.9, 0.8, 0.7]).tolist()
    assert m.keys() == [(0, 0), (1, 0), (1, 1)]
    assert m.ids.tolist() == ["s0-r000", "s1-r000", "s1-r001"]


def test_ties_break_by_chunk_id_not_by_shard() -> None:
    a = ShardHits(0, np.float32([0.5]), np.int64([0]), np.asarray(["doc-b#0"]))
    b = ShardHits(1, np.float32([0.5]), np.int64([0]), np.asarray(["doc-a#0"]))
    assert merge_topk([a, b], 2).ids.tolist() == ["doc-a#0", "doc-b#0"]


def test_empty() -> None:
    assert len(merge_topk([], 5).rows) == 0
    assert len(merge_topk([ShardHits.empty(3)], 5).rows) == 0


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
            (float(s), str(i_), int(r))
            for h in shards
            for r, s, i_ in zip(h.rows, h.scores, h.ids, strict=True)
        ),
        key=lambda t: (-t[0], t[1]),
    )[:k]
    assert list(zip(m.scores.tolist(), m.ids.tolist(), m.rows.tolist(), strict=True)) == union
    assert merge_topk(shards[::-1], k).keys() == m.keys()
