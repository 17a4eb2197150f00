"""Top-k merge of per-shard result lists.

Each shard returns its own top-k sorted by score (higher is better). The global top-k
is contained in the union of the shards' top-k lists, so merging them is exact:
``topk(∪_s topk_s) = topk(∪_s D_s)`` (the argument of faiss ``ResultHeap``). Ties are
broken by (shard, row) so the merge is deterministic and independent of arrival order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ragfleet.index.hits import ShardHits


@dataclass(frozen=True, slots=True)
class Merged:
    """Global top-k: parallel arrays of score, shard and row, best first."""

    scores: npt.NDArray[np.float32]
    shards: npt.NDArray[np.int64]
    rows: npt.NDArray[np.int64]

    def keys(self) -> list[tuple[int, int]]:
        return list(zip(self.shards.tolist(), self.rows.tolist(), strict=True))


def merge_topk(lists: Sequence[ShardHits], k: int) -> Merged:
    """Merge per-shard top lists into the global top ``k`` (score desc, then shard, row)."""
    if not lists:
        empty_i = np.empty(0, dtype=np.int64)
        return Merged(np.empty(0, dtype=np.float32), empty_i, empty_i)
    scores = np.concatenate([h.scores for h in lists]).astype(np.float32, copy=False)
    rows = np.concatenate([h.rows for h in lists]).astype(np.int64, copy=False)
    shards = np.concatenate([np.full(len(h.rows), h.shard, dtype=np.int64) for h in lists])
    order = np.lexsort((rows, shards, -scores))[:k]
    return Merged(scores[order], shards[order], rows[order])
