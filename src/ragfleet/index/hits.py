"""One shard's ranked hits for one query (rows are shard-local)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class ShardHits:
    """Scores descending and the matching shard-local rows (all ≥ 0)."""

    shard: int
    scores: npt.NDArray[np.float32]
    rows: npt.NDArray[np.int64]

    @classmethod
    def from_faiss(
        cls, shard: int, scores: npt.NDArray[np.float32], rows: npt.NDArray[np.int64]
    ) -> ShardHits:
        """Drop FAISS's ``-1`` padding."""
        keep = rows >= 0
        return cls(shard, scores[keep], rows[keep])

    def __len__(self) -> int:
        return int(self.rows.shape[0])
