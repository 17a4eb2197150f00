"""A set of allowed rows of one shard, shared by dense and sparse search.

Built once from a boolean mask (tombstones removed, a metadata filter applied) and
reused across queries; dense search hands ``packed`` to ``faiss.IDSelectorBitmap``
(bit ``i`` of byte ``i >> 3``, little-endian bit order) and sparse search uses ``mask``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


class RowFilter:
    """Allowed rows ``0 <= row < n`` of a shard, as a mask and a FAISS bitmap."""

    __slots__ = ("mask", "n_allowed", "packed")

    def __init__(self, mask: npt.NDArray[np.bool_]) -> None:
        self.mask = np.ascontiguousarray(mask, dtype=bool)
        self.mask.setflags(write=False)
        self.packed = np.packbits(self.mask, bitorder="little")
        self.n_allowed = int(self.mask.sum())

    @classmethod
    def all_but(cls, n: int, denied: npt.ArrayLike) -> RowFilter:
        """Every row in ``[0, n)`` except ``denied``."""
        mask = np.ones(n, dtype=bool)
        mask[np.asarray(denied, dtype=np.int64)] = False
        return cls(mask)

    def __len__(self) -> int:
        return int(self.mask.shape[0])

    def allowed_rows(self) -> npt.NDArray[np.int64]:
        return np.flatnonzero(self.mask).astype(np.int64)

    def __and__(self, other: RowFilter) -> RowFilter:
        if len(self) != len(other):
            raise ValueError(f"row filters of different lengths: {len(self)} vs {len(other)}")
        return RowFilter(self.mask & other.mask)
