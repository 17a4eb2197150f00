"""VectorStore: rows in memory-mapped segments and a tail; the checkpoint merge policy."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragfleet.errors import CollectionError, DimensionError
from ragfleet.index.vectors import VectorStore, segment_roles

D = 8


def rows(n: int, start: int = 0) -> np.ndarray:
    """Row ``i`` is the vector ``i + j / 8`` (j = 0..7): every row tells its number."""
    i = np.arange(start, start + n, dtype=np.float32)[:, None]
    return i + np.arange(D, dtype=np.float32) / D


def checkpoint(store: VectorStore, folder: Path, number: int) -> dict[str, Path]:
    """Write and adopt checkpoint ``number``; returns the live role -> path."""
    plan = store.write(folder, number)
    store.adopt(plan)
    return plan.new  # type: ignore[return-value]


def test_tail_then_segments_then_tail_read_back_exactly(tmp_path: Path) -> None:
    store = VectorStore(D)
    store.add(rows(5))
    assert len(store) == 5 and store.tail_rows == 5 and store.n_segments == 0
    assert store.ram_bytes() == 5 * D * 4 and store.disk_bytes() == 0
    new = checkpoint(store, tmp_path, 1)
    assert list(new) == ["vectors-0"] and new["vectors-0"].name == "vectors-0.000001.npy"
    assert store.tail_rows == 0 and store.ram_bytes() == 0 and store.disk_bytes() == 5 * D * 4
    store.add(rows(3, 5))
    want = rows(8)
    order = np.array([7, 0, 5, 4, 6, 1], dtype=np.int64)
    np.testing.assert_array_equal(store.take(order), want[order])
    whole = VectorStore(D)
    whole.add(rows(8))
    assert whole.contiguous() is not None and store.contiguous() is None  # two parts


def test_segments_are_read_only_maps_and_reload(tmp_path: Path) -> None:
    store = VectorStore(D)
    store.add(rows(10))
    checkpoint(store, tmp_path, 1)
    mapped = store.contiguous()
    assert mapped is not None and not mapped.flags.writeable
    assert isinstance(mapped, np.memmap)
    again = VectorStore.load(D, "fp32", [("vectors-0", tmp_path / "vectors-0.000001.npy")])
    np.testing.assert_array_equal(again.take(np.arange(10)), rows(10))


def test_fp16_keeps_half_the_bytes_and_rounds_once(tmp_path: Path) -> None:
    store = VectorStore(D, "fp16")
    x = np.random.default_rng(0).normal(size=(20, D)).astype(np.float32)
    store.add(x)
    checkpoint(store, tmp_path, 1)
    assert store.disk_bytes() == 20 * D * 2
    got = store.take(np.arange(20))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, x.astype(np.float16).astype(np.float32))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=30))
def test_merge_policy_keeps_log_many_segments_of_decreasing_size(batches: list[int]) -> None:
    """After each checkpoint, segment sizes from first to last shrink by more than 2x, so
    there are at most ``1 + log2(n)`` of them; every row reads back as itself."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        store, n = VectorStore(D), 0
        for number, b in enumerate(batches, start=1):
            store.add(rows(b, n))
            n += b
            checkpoint(store, Path(tmp), number)
            sizes = [s.n for s in store._segments]
            assert all(a > 2 * b for a, b in itertools.pairwise(sizes)), sizes
            assert len(sizes) <= 1 + math.log2(n)
            np.testing.assert_array_equal(store.take(np.arange(n)), rows(n))


def test_an_empty_tail_writes_nothing_and_keeps_every_segment(tmp_path: Path) -> None:
    store = VectorStore(D)
    store.add(rows(4))
    checkpoint(store, tmp_path, 1)
    plan = store.write(tmp_path, 2)
    assert plan.new == {} and plan.kept == ("vectors-0",) and plan.n_rows == 4


def test_load_refuses_what_does_not_tile_the_rows(tmp_path: Path) -> None:
    a, b = tmp_path / "vectors-0.000001.npy", tmp_path / "vectors-4.000002.npy"
    np.save(a, rows(4))
    np.save(b, rows(2, 4))
    assert len(VectorStore.load(D, "fp32", [("vectors-0", a), ("vectors-4", b)])) == 6
    with pytest.raises(CollectionError, match="starts at row 4, expected 0"):
        VectorStore.load(D, "fp32", [("vectors-4", b)])
    with pytest.raises(CollectionError, match="expected float16"):
        VectorStore.load(D, "fp16", [("vectors-0", a)])
    np.save(tmp_path / "wide.npy", np.zeros((2, D + 1), np.float32))
    with pytest.raises(CollectionError, match=r"\(n, 8\)"):
        VectorStore.load(D, "fp32", [("vectors-0", tmp_path / "wide.npy")])
    (tmp_path / "torn.npy").write_bytes(a.read_bytes()[:100])
    with pytest.raises(CollectionError, match="cannot read vectors"):
        VectorStore.load(D, "fp32", [("vectors-0", tmp_path / "torn.npy")])
    with pytest.raises(FileNotFoundError):  # a reader racing a checkpoint retries
        VectorStore.load(D, "fp32", [("vectors-0", tmp_path / "gone.npy")])


def test_add_checks_the_width_and_roles_sort_by_first_row() -> None:
    with pytest.raises(DimensionError):
        VectorStore(D).add(np.zeros((1, D + 1), np.float32))
    roles = ["dense", "vectors-100", "sparse", "vectors-0", "vectors-12"]
    assert segment_roles(roles) == ["vectors-0", "vectors-12", "vectors-100"]
    with pytest.raises(CollectionError, match="fp32 or fp16"):
        VectorStore(D, "fp8")  # type: ignore[arg-type]
