"""DenseIndex behaviour beyond the contract suite, and the atomic file writes it uses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from ragfleet.errors import CollectionError, ConfigError, InputError
from ragfleet.eval.ann import exact_search, recall_at_k
from ragfleet.index import dense
from ragfleet.index.atomic import atomic_path, atomic_write_bytes
from ragfleet.index.dense import DenseIndex, brute_force_limit, set_omp_threads
from ragfleet.index.rowfilter import RowFilter

D = 16


def data(n: int, seed: int = 0) -> npt.NDArray[np.float32]:
    return np.random.default_rng(seed).normal(size=(n, D)).astype(np.float32)


def test_constructor_validates() -> None:
    with pytest.raises(ConfigError, match="metric"):
        DenseIndex("flat", D, "cosine")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="dimension"):
        DenseIndex("flat", 0)
    with pytest.raises(ConfigError, match="pq8 needs m to divide d=30"):
        DenseIndex("ivf16,pq8", 30).train(np.zeros((300, 30), np.float32))


def test_flat_and_hnsw_need_no_training_and_train_is_a_noop() -> None:
    for spec in ("flat", "hnsw8"):
        index = DenseIndex(spec, D)
        assert index.is_trained and not index.needs_training and len(index) == 0
        index.train(data(3))
        assert len(index) == 0


def test_too_few_training_vectors_says_how_many_and_what_else() -> None:
    index = DenseIndex("ivf64", D)
    assert index.needs_training and not index.is_trained
    with pytest.raises(ConfigError, match=r"at least 64 training vectors \(2496 recommended\)"):
        index.train(data(63))
    with pytest.raises(ConfigError, match="'flat' or 'hnsw32'"):
        DenseIndex("ivf16,pq4", D).train(data(255))  # PQ needs 2**8 = 256


def test_train_resolves_auto_nlist_and_refuses_a_second_training() -> None:
    index = DenseIndex("ivfsq8", D)
    index.train(data(400))
    assert index.spec == "ivf80,sq8"  # round(4 * sqrt(400)) = 80
    with pytest.raises(InputError, match="already trained"):
        index.train(data(400))


def test_search_on_empty_index_pads_everything() -> None:
    scores, rows = DenseIndex("hnsw8", D).search(data(2), 3)
    assert rows.tolist() == [[-1] * 3] * 2 and np.all(np.isneginf(scores))


def test_numpy_integer_k_is_accepted_and_bool_is_not() -> None:
    index = DenseIndex("flat", D)
    index.add(np.arange(5), data(5))
    assert index.search(data(1), np.int64(2))[1].shape == (1, 2)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        index.search(data(1), True)


def test_add_rejects_non_finite_and_non_numeric() -> None:
    index = DenseIndex("flat", D)
    bad = data(2)
    bad[1, 3] = np.inf
    with pytest.raises(InputError, match="NaN or infinite"):
        index.add(np.arange(2), bad)
    with pytest.raises(InputError, match="numeric"):
        index.add(np.arange(1), [["a"] * D])
    assert len(index) == 0


def test_huge_finite_values_are_not_mistaken_for_inf() -> None:
    index = DenseIndex("flat", D)
    index.add(np.arange(1), np.full((1, D), 1e30, np.float32))  # sum of squares overflows
    assert len(index) == 1


def test_ef_search_below_k_is_raised_to_k() -> None:
    index = DenseIndex("hnsw8", D)
    index.add(np.arange(500), data(500))
    _, rows = index.search(data(4, 1), 50, ef_search=1)
    assert np.all(rows >= 0)
    with pytest.raises(InputError, match="ef_search"):
        index.search(data(1), 5, ef_search=0)


def test_brute_force_limit_formula() -> None:
    assert brute_force_limit(0) == dense.BRUTE_FORCE_MIN_ROWS
    n = 10_000_000
    assert brute_force_limit(n) == int(dense.BRUTE_FORCE_FRACTION * n)


def test_approximate_filtered_search_is_completed_exactly() -> None:
    """nprobe=1 with a 30% filter leaves some queries short; they are re-run exactly."""
    x, q = data(4000), data(50, 1)
    index = DenseIndex("ivf256", D, "l2")
    index.train(x)
    index.add(np.arange(4000), x)
    mask = np.random.default_rng(2).random(4000) < 0.3
    allow = RowFilter(mask)
    assert allow.n_allowed > brute_force_limit(4000)  # the approximate path is taken
    _, raw_rows = index.faiss_index.search(q, 10, params=_ivf_params(1, allow))
    assert np.any(raw_rows[:, -1] < 0)  # raw FAISS does leave queries short here
    _, rows = index.search(q, 10, allow=allow, nprobe=1)
    assert np.all(rows >= 0) and np.all(mask[rows])


def _ivf_params(nprobe: int, allow: RowFilter) -> object:
    faiss = pytest.importorskip("faiss")
    sel = faiss.IDSelectorBitmap(len(allow), faiss.swig_ptr(allow.packed))
    return faiss.SearchParametersIVF(nprobe=nprobe, sel=sel)


def test_exact_filtered_path_matches_brute_force() -> None:
    x, q = data(3000), data(20, 1)
    index = DenseIndex("hnsw8", D, "ip")
    index.add(np.arange(3000), x)
    mask = np.zeros(3000, dtype=bool)
    mask[::7] = True  # 429 rows < the brute-force limit
    scores, rows = index.search(q, 10, allow=RowFilter(mask))
    allowed = np.flatnonzero(mask)
    want_scores, local = exact_search(x[allowed], q, 10, "ip")
    assert recall_at_k(rows, allowed[local], 10) == 1.0
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5)


def test_set_omp_threads_validates() -> None:
    with pytest.raises(ConfigError):
        set_omp_threads(0)


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(CollectionError, match="no dense index"):
        DenseIndex.load(tmp_path / "missing.faiss")
    (tmp_path / "junk.faiss").write_bytes(b"not a faiss index")
    with pytest.raises(CollectionError, match="cannot read"):
        DenseIndex.load(tmp_path / "junk.faiss")


def test_save_untrained_raises_and_leaves_nothing(tmp_path: Path) -> None:
    from ragfleet.errors import IndexNotTrainedError

    with pytest.raises(IndexNotTrainedError):
        DenseIndex("ivf16", D).save(tmp_path / "dense.faiss")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_atomic_path_failure_keeps_old_file_and_removes_temp(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_bytes(b"half written")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_load_rejects_an_index_the_grammar_cannot_say(tmp_path: Path) -> None:
    faiss = pytest.importorskip("faiss")
    faiss.write_index(faiss.index_factory(D, "PCA4,Flat"), str(tmp_path / "sq.faiss"))
    with pytest.raises(CollectionError, match="unsupported FAISS index"):
        DenseIndex.load(tmp_path / "sq.faiss")


def test_invalid_search_parameters_are_rejected_before_the_cache() -> None:
    index = DenseIndex("hnsw8", D)
    index.add(np.arange(20), data(20))
    index.search(data(1), 5)  # caches the default parameters
    with pytest.raises(InputError, match="ef_search and nprobe"):
        index.search(data(1), 5, ef_search=0)
    with pytest.raises(InputError, match="ef_search and nprobe"):
        index.search(data(1), 5, nprobe=-1)
