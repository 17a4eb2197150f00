"""One shard's ranked hits for one query (rows are shard-local, ids collection-wide)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Ids = npt.NDArray[np.str_]


@dataclass(frozen=True, slots=True)
class ShardHits:
    """Scores descending, the shard-local rows and the chunk ids of those rows.

    The chunk id breaks ties everywhere downstream, so that the order of equal scores
    does not depend on which shard holds a chunk.
    """

    shard: int
    scores: npt.NDArray[np.float32]
    rows: npt.NDArray[np.int64]
    ids: Ids

    @classmethod
    def empty(cls, shard: int) -> ShardHits:
        return cls(shard, np.empty(0, np.float32), np.empty(0, np.int64), np.empty(0, np.str_))

    def __len__(self) -> int:
        return int(self.rows.shape[0])
