"""TEXMEX and .npy readers, and ANN dataset discovery."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from ragfleet.errors import DimensionError, InputError
from ragfleet.eval.vecio import load_ann_dataset, read_texmex, read_vectors

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


def write_texmex(path: Path, arr: npt.NDArray[np.generic]) -> None:
    """Each row: int32 dimension, then the row's values (the TEXMEX layout)."""
    with path.open("wb") as f:
        for row in arr:
            np.array([arr.shape[1]], dtype="<i4").tofile(f)
            row.tofile(f)


@pytest.mark.parametrize(
    ("suffix", "dtype"), [(".fvecs", np.float32), (".ivecs", np.int32), (".bvecs", np.uint8)]
)
def test_texmex_round_trip(tmp_path: Path, suffix: str, dtype: type[np.generic]) -> None:
    arr = (np.arange(35).reshape(5, 7) * 3).astype(dtype)
    write_texmex(tmp_path / f"x{suffix}", arr)
    got = read_vectors(tmp_path / f"x{suffix}")
    assert got.dtype == dtype and got.shape == (5, 7)
    np.testing.assert_array_equal(got, arr)


def test_texmex_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.fvecs"
    write_texmex(path, np.ones((3, 4), np.float32))
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(InputError, match="not a multiple"):
        read_texmex(path)
    with pytest.raises(InputError, match="not a TEXMEX"):
        read_texmex(tmp_path / "x.txt")
    mixed = tmp_path / "m.ivecs"
    mixed.write_bytes(np.array([2, 1, 1, 1, 5, 5], "<i4").tobytes())  # rows of 3 ints, d 2 then 1
    with pytest.raises(InputError, match="different dimensions"):
        read_texmex(mixed)
    empty = tmp_path / "e.bvecs"
    empty.write_bytes(b"")
    assert read_texmex(empty).shape == (0, 0)


def test_npy_refuses_pickles_and_non_matrices(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="cannot read"):
        read_vectors(tmp_path / "obj.npy")
    np.save(tmp_path / "v.npy", np.zeros(3))
    with pytest.raises(InputError, match="2-D"):
        read_vectors(tmp_path / "v.npy")


def test_load_ann_dataset_finds_exact_stems(tmp_path: Path) -> None:
    base = np.random.default_rng(0).integers(0, 255, (20, 4)).astype(np.uint8)
    np.save(tmp_path / "base.npy", base)
    write_texmex(tmp_path / "query.fvecs", np.ones((3, 4), np.float32))
    write_texmex(tmp_path / "groundtruth.ivecs", np.arange(15, dtype=np.int32).reshape(3, 5))
    write_texmex(tmp_path / "groundtruth_distances.fvecs", np.ones((3, 5), np.float32))
    b, q, gt = load_ann_dataset(tmp_path)
    assert [a.dtype.name for a in (b, q, gt)] == ["float32", "float32", "int64"]
    np.testing.assert_array_equal(b, base.astype(np.float32))
    assert gt.tolist()[0] == [0, 1, 2, 3, 4]


def test_load_ann_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_ann_dataset(tmp_path / "nope")
    np.save(tmp_path / "base.npy", np.zeros((4, 3), np.float32))
    with pytest.raises(InputError, match=r"lacks query\.\*, groundtruth\.\*"):
        load_ann_dataset(tmp_path)
    np.save(tmp_path / "query.npy", np.zeros((2, 5), np.float32))
    np.save(tmp_path / "groundtruth.npy", np.zeros((2, 1), np.int64))
    with pytest.raises(DimensionError, match="dimension 3 but query has 5"):
        load_ann_dataset(tmp_path)
    np.save(tmp_path / "query.npy", np.zeros((3, 3), np.float32))
    with pytest.raises(InputError, match="2 rows for 3 queries"):
        load_ann_dataset(tmp_path)


def test_fashion_mnist_layout() -> None:
    folder = DATA / "fashion-mnist-784-euclidean"
    if not folder.is_dir():
        pytest.skip(f"{folder} absent (shared benchmark data)")
    truth = read_vectors(folder / "groundtruth.ivecs")
    assert truth.shape == (10_000, 100) and truth.dtype == np.int32
