"""Top-k merge of per-shard result lists.

Each shard returns its own top-k sorted by score (higher is better). The global top-k
is contained in the union of the shards' top-k lists, so merging them is exact:
``topk(∪_s topk_s) = topk(∪_s D_s)`` (the argument of faiss ``ResultHeap``). Ties are
broken by chunk id, so the merge is deterministic and independent both of arrival order
and of which shard holds a chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ragfleet.index.hits import Ids, ShardHits


@dataclass(frozen=True, slots=True)
class Merged:
    """Global top-k: parallel arrays of score, shard, row and chunk id, best first."""

    scores: npt.NDArray[np.float32]
    shards: npt.NDArray[np.int64]
    rows: npt.NDArray[np.int64]
    ids: Ids

    def keys(self) -> list[tuple[int, int]]:
        return list(zip(self.shards.tolist(), self.rows.tolist(), strict=True))


def merge_topk(lists: Sequence[ShardHits], k: int) -> Merged:
    """Merge per-shard top lists into the global top ``k`` (score desc, then chunk id)."""
    if not lists:
        lists = [ShardHits.empty(0)]
    scores = np.concatenate([h.scores for h in lists]).astype(np.float32, copy=False)
    rows = np.concatenate([h.rows for h in lists]).astype(np.int64, copy=False)
    ids = np.concatenate([h.ids for h in lists])
    shards = np.concatenate([np.full(len(h.rows), h.shard, dtype=np.int64) for h in lists])
    order = np.lexsort((ids, -scores))[:k]
    return Merged(scores[order], shards[order], rows[order], ids[order])
