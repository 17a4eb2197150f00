"""Read ANN benchmark vectors: TEXMEX ``.fvecs``/``.ivecs``/``.bvecs`` and numpy ``.npy``.

TEXMEX format (http://corpus-texmex.irisa.fr/): each row is a little-endian int32 dimension
``d`` followed by ``d`` values — float32 (fvecs), int32 (ivecs) or uint8 (bvecs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ragfleet.errors import DimensionError, InputError

_TEXMEX: dict[str, np.dtype[Any]] = {
    ".fvecs": np.dtype("<f4"),
    ".ivecs": np.dtype("<i4"),
    ".bvecs": np.dtype("u1"),
}
SUFFIXES = (*_TEXMEX, ".npy")


def read_texmex(path: str | Path) -> npt.NDArray[np.generic]:
    """Read a ``.fvecs``, ``.ivecs`` or ``.bvecs`` file into an ``(n, d)`` array.

    Raises:
        InputError: unknown suffix, or a file whose size or row headers are inconsistent.
    """
    p = Path(path)
    dtype = _TEXMEX.get(p.suffix)
    if dtype is None:
        raise InputError(f"{p} is not a TEXMEX file: expected one of {sorted(_TEXMEX)}")
    raw = np.fromfile(p, dtype=np.uint8)
    if raw.size == 0:
        empty: npt.NDArray[np.generic] = np.zeros((0, 0), dtype=dtype)
        return empty
    if raw.size < 4:
        raise InputError(f"{p} is truncated: {raw.size} bytes")
    d = int(raw[:4].view("<i4")[0])
    row_bytes = 4 + d * dtype.itemsize
    if d < 1 or raw.size % row_bytes:
        raise InputError(f"{p}: file size {raw.size} is not a multiple of a row ({row_bytes} B)")
    rows = raw.reshape(-1, row_bytes)
    if not np.all(rows[:, :4].copy().view("<i4") == d):
        raise InputError(f"{p}: rows have different dimensions; not a valid TEXMEX file")
    values: npt.NDArray[np.generic] = np.ascontiguousarray(rows[:, 4:]).view(dtype)
    return values.reshape(-1, d)


def read_vectors(path: str | Path) -> npt.NDArray[np.generic]:
    """Read vectors from ``.fvecs``/``.ivecs``/``.bvecs``/``.npy`` (``allow_pickle=False``)."""
    p = Path(path)
    if p.suffix != ".npy":
        return read_texmex(p)
    try:
        arr: npt.NDArray[np.generic] = np.load(p, allow_pickle=False)
    except ValueError as e:
        raise InputError(f"cannot read {p}: {e}") from e
    if arr.ndim != 2:
        raise InputError(f"{p} must hold a 2-D array (n, d), got shape {arr.shape}")
    return arr


def find_vectors(directory: Path, stem: str) -> Path | None:
    """The file ``directory/stem.<suffix>`` for the first known suffix, or None."""
    for suffix in SUFFIXES:
        candidate = directory / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def load_ann_dataset(
    directory: str | Path,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Load ``base.*``, ``query.*`` and ``groundtruth.*`` from an ANN dataset directory.

    Returns:
        ``(base, queries, groundtruth)``: float32 ``(n, d)``, float32 ``(nq, d)`` and int64
        ``(nq, K)`` row ids of each query's exact nearest neighbours, best first.

    Raises:
        InputError: a missing directory or file (named), or inconsistent shapes.
    """
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"ANN dataset directory {root} does not exist")
    paths = {stem: find_vectors(root, stem) for stem in ("base", "query", "groundtruth")}
    missing = [stem for stem, p in paths.items() if p is None]
    if missing:
        raise InputError(
            f"{root} lacks {', '.join(f'{m}.*' for m in missing)}; "
            f"expected base, query and groundtruth with a suffix in {SUFFIXES}"
        )
    base, query, truth = (read_vectors(p) for p in paths.values() if p is not None)
    if base.shape[1] != query.shape[1]:
        raise DimensionError(f"base has dimension {base.shape[1]} but query has {query.shape[1]}")
    if truth.shape[0] != query.shape[0]:
        raise InputError(f"groundtruth has {truth.shape[0]} rows for {query.shape[0]} queries")
    return (
        np.ascontiguousarray(base, dtype=np.float32),
        np.ascontiguousarray(query, dtype=np.float32),
        truth.astype(np.int64),
    )
