"""One contract suite over every dense index spec, with the flat index as the oracle.

Compressed specs are in it twice over: their codes alone (sq8, ivf,pq16x4, ivf,sq8) and
with exact rescoring from vectors kept on disk (``+refine``; binary codes always).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from ragfleet.errors import CollectionError, DimensionError, IndexNotTrainedError, InputError
from ragfleet.eval.ann import exact_search, recall_at_k
from ragfleet.eval.raw_faiss import raw_search
from ragfleet.index.dense import DenseIndex, Metric, set_omp_threads
from ragfleet.index.rowfilter import RowFilter

N, D, NQ, K = 4000, 32, 100, 10
#: spec -> minimum recall@10 against flat (ip, l2) at the default ef_search=128 / nprobe=16
#: / oversample, measured on this data with a margin of ~0.05 (HNSW over 4-dimension PQ
#: codes ranks inner products of these unnormalised points poorly: 0.72 at oversample 4).
RECALL_FLOOR: dict[str, tuple[float, float]] = {
    "flat": (1.0, 1.0),
    "hnsw32": (0.95, 0.95),
    "ivf64": (0.9, 0.9),
    "ivf64,pq16x4": (0.3, 0.6),
    "ivf64,sq8": (0.85, 0.85),
    "sq8": (0.9, 0.9),
    "sq4+refine": (0.9, 0.85),
    "sqfp16+refine16": (0.95, 0.95),
    "binary": (0.8, 0.85),
    "hnsw32,binary": (0.8, 0.85),
    "ivf64,pq16+refine": (0.95, 0.95),
    "ivf64,pq16x4fs+refine": (0.75, 0.8),
    "opq,ivf64,pq16+refine": (0.95, 0.95),
    "hnsw16,pq8+refine": (0.65, 0.85),
    "rabitq4": (0.6, 0.6),
    "ivf64,rabitq+refine": (0.6, 0.6),
    "ivf64,rabitqfs+refine": (0.6, 0.6),
}
SPECS = list(RECALL_FLOOR)
METRICS: list[Metric] = ["ip", "l2"]
EXACT_STORAGE = {"flat", "hnsw32", "ivf64"}  # specs that store vectors uncompressed


def clustered(n: int, seed: int) -> npt.NDArray[np.float32]:
    """``n`` points around 40 seeded Gaussian centres in ``D`` dimensions."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).normal(size=(40, D)) * 3.0
    return (centres[rng.integers(0, 40, n)] + rng.normal(size=(n, D))).astype(np.float32)


BASE = clustered(N, 1)
QUERIES = clustered(NQ, 2)


@pytest.fixture(scope="module", autouse=True)
def one_omp_thread() -> Iterator[None]:
    """FAISS OpenMP on a small shared machine is slower than one thread; restore after."""
    faiss = pytest.importorskip("faiss")
    before = faiss.omp_get_max_threads()
    set_omp_threads(1)
    yield
    set_omp_threads(before)


@pytest.fixture(scope="module", params=[(s, m) for s in SPECS for m in METRICS], ids=str)
def built(request: pytest.FixtureRequest) -> DenseIndex:
    spec, metric = request.param
    index = DenseIndex(spec, D, metric)
    index.train(BASE)
    index.add(np.arange(N), BASE)
    return index


def true_scores(index: DenseIndex, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """``<q, x>`` or ``-||q - x||²`` of each returned row, in float64."""
    x, q = BASE[rows].astype(np.float64), QUERIES.astype(np.float64)[:, None, :]
    if index.metric == "ip":
        return np.asarray((x * q).sum(-1))
    return np.asarray(-((x - q) ** 2).sum(-1))


def floor_of(index: DenseIndex) -> float:
    name = index.spec.replace("binary+refine", "binary")
    return RECALL_FLOOR[name][METRICS.index(index.metric)]


def spec_name(index: DenseIndex) -> str:
    return index.spec.replace("binary+refine", "binary")


def test_recall_against_flat(built: DenseIndex) -> None:
    _, truth = exact_search(BASE, QUERIES, K, built.metric)
    _, rows = built.search(QUERIES, K)
    assert recall_at_k(rows, truth, K) >= floor_of(built)


def test_shapes_dtypes_and_descending_scores(built: DenseIndex) -> None:
    scores, rows = built.search(QUERIES, K)
    assert scores.shape == rows.shape == (NQ, K)
    assert scores.dtype == np.float32 and rows.dtype == np.int64
    assert np.all(np.diff(scores, axis=1) <= 1e-5)
    assert np.all((rows >= 0) & (rows < N))
    assert all(len(set(r)) == K for r in rows)


def test_scores_are_higher_is_better_for_both_metrics(built: DenseIndex) -> None:
    scores, rows = built.search(QUERIES, K, nprobe=64)
    if spec_name(built) in EXACT_STORAGE or built.vectors is not None:  # exact, or rescored
        fp16 = built.vectors is not None and built.vectors.precision == "fp16"
        tol = {"rtol": 2e-3, "atol": 5e-2} if fp16 else {"rtol": 1e-4, "atol": 1e-3}
        np.testing.assert_allclose(scores, true_scores(built, rows), **tol)
    else:  # quantized codes: approximate scores, same sign convention
        err = np.abs(scores - true_scores(built, rows)).mean()
        assert err < 0.25 * np.abs(true_scores(built, rows)).mean()


def test_float64_and_noncontiguous_queries_give_same_result(built: DenseIndex) -> None:
    s32, r32 = built.search(QUERIES[:10], K)
    s64, r64 = built.search(QUERIES[:10].astype(np.float64), K)
    sf, rf = built.search(np.asfortranarray(QUERIES[:10]), K)
    np.testing.assert_array_equal(r32, r64)
    np.testing.assert_array_equal(r32, rf)
    np.testing.assert_allclose(s32, s64)
    np.testing.assert_allclose(s32, sf)


@pytest.mark.parametrize("fraction", [0.5, 0.1, 0.01])
def test_filtered_search_returns_allowed_rows_with_recall(
    built: DenseIndex, fraction: float
) -> None:
    mask = np.random.default_rng(3).random(N) < fraction
    allow = RowFilter(mask)
    scores, rows = built.search(QUERIES, K, allow=allow)
    want = min(K, allow.n_allowed)
    assert np.all(rows[:, :want] >= 0)
    assert np.all(mask[rows[:, :want]])
    assert np.all(np.isfinite(scores[:, :want]))
    allowed = allow.allowed_rows()
    _, local = exact_search(BASE[allowed], QUERIES, K, built.metric)
    floor = 1.0 if built.spec == "flat" else floor_of(built) - 0.05
    assert recall_at_k(rows, allowed[local], K) >= floor


def test_filter_allowing_fewer_than_k_rows_pads(built: DenseIndex) -> None:
    mask = np.zeros(N, dtype=bool)
    mask[[5, 500, 3999]] = True
    scores, rows = built.search(QUERIES[:4], K, allow=RowFilter(mask))
    assert np.all(np.sort(rows[:, :3], axis=1) == [5, 500, 3999])
    assert np.all(rows[:, 3:] == -1) and np.all(np.isneginf(scores[:, 3:]))
    assert np.all(np.isfinite(scores[:, :3]))


def test_empty_filter_returns_only_padding(built: DenseIndex) -> None:
    scores, rows = built.search(QUERIES[:2], K, allow=RowFilter(np.zeros(N, dtype=bool)))
    assert np.all(rows == -1) and np.all(np.isneginf(scores))


def saved(index: DenseIndex, folder: Path) -> tuple[Path, list[tuple[str, Path]]]:
    path = folder / "dense.faiss"
    index.save(path)
    if index.vectors is None:
        return path, []
    vectors = folder / "vectors-0.000001.npy"
    index.vectors.save(vectors)
    return path, [("vectors-0", vectors)]


def test_save_load_round_trip_is_identical(built: DenseIndex, tmp_path: Path) -> None:
    path, vectors = saved(built, tmp_path)
    metric = built.metric if built.dense_spec.binary else None  # binary files keep no metric
    for loaded in (
        DenseIndex.load(path, metric=metric, vectors=vectors),
        DenseIndex.load(path, built.spec, built.metric, vectors=vectors),
    ):
        assert (loaded.spec, loaded.metric, loaded.d, len(loaded)) == (
            built.spec,
            built.metric,
            D,
            N,
        )
        assert (loaded.vectors is None) == (built.vectors is None)
        for a, b in zip(loaded.search(QUERIES, K), built.search(QUERIES, K), strict=True):
            np.testing.assert_array_equal(a, b)
        if loaded.vectors is not None:  # memory-mapped from disk, read-only
            assert (
                loaded.vectors.contiguous() is None
                or not loaded.vectors.contiguous().flags.writeable
            )
    names = sorted(p.name for p in tmp_path.iterdir())  # no temp file left
    assert names == sorted(["dense.faiss", *(p.name for _, p in vectors)])


def test_load_rejects_another_spec_or_metric(built: DenseIndex, tmp_path: Path) -> None:
    path, vectors = saved(built, tmp_path)
    other_metric: Metric = "l2" if built.metric == "ip" else "ip"
    if not built.dense_spec.binary:  # a binary index keeps no metric: the config decides
        with pytest.raises(CollectionError, match="expected"):
            DenseIndex.load(path, built.spec, other_metric, vectors=vectors)
    other_spec = "hnsw16" if built.spec != "hnsw16" else "flat"
    with pytest.raises(CollectionError, match="expected"):
        DenseIndex.load(path, other_spec, built.metric, vectors=vectors)
    if vectors:  # the vectors must be there and cover every row
        with pytest.raises(CollectionError, match="rows but its vectors"):
            DenseIndex.load(path, built.spec, built.metric)
        short = tmp_path / "vectors-0.000002.npy"
        np.save(short, np.load(vectors[0][1])[:-1])
        with pytest.raises(CollectionError, match="rows but its vectors"):
            DenseIndex.load(path, built.spec, built.metric, vectors=[("vectors-0", short)])


def test_bad_inputs_raise_the_error_tree(built: DenseIndex) -> None:
    with pytest.raises(DimensionError):
        built.search(np.zeros((1, D + 1), np.float32), K)
    with pytest.raises(InputError, match="NaN or infinite"):
        built.search(np.full((1, D), np.nan, np.float32), K)
    with pytest.raises(InputError, match="positive int"):
        built.search(QUERIES[:1], 0)
    with pytest.raises(InputError, match="shape"):
        built.search(QUERIES[0], K)
    with pytest.raises(InputError, match="rows must be exactly"):
        built.add(np.arange(1, 2), BASE[:1])
    with pytest.raises(InputError, match="row filter covers"):
        built.search(QUERIES[:1], K, allow=RowFilter(np.ones(N - 1, dtype=bool)))


@pytest.mark.parametrize("spec", SPECS)
def test_append_pads_when_fewer_rows_than_k_and_untrained_raises(spec: str) -> None:
    index = DenseIndex(spec, D, "l2")
    if index.needs_training:
        with pytest.raises(IndexNotTrainedError):
            index.search(QUERIES[:1], K)
        with pytest.raises(IndexNotTrainedError):
            index.add(np.arange(5), BASE[:5])
        index.train(BASE)
    index.add(np.arange(3), BASE[:3])
    index.add(np.arange(3, 5), BASE[3:5])
    scores, rows = index.search(BASE[:1], 8, nprobe=64)
    assert sorted(rows[0, :5]) == [0, 1, 2, 3, 4] and rows[0, 0] == 0
    assert np.all(rows[0, 5:] == -1) and np.all(np.isneginf(scores[0, 5:]))


@pytest.mark.parametrize("spec", ["flat", "hnsw32"])
def test_ip_and_l2_rank_differently(spec: str) -> None:
    x = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    q = np.array([[1.0, 0.0]], dtype=np.float32)
    ip, l2 = DenseIndex(spec, 2, "ip"), DenseIndex(spec, 2, "l2")
    for index in (ip, l2):
        index.add(np.arange(3), x)
    ip_scores, ip_rows = ip.search(q, 3)
    l2_scores, l2_rows = l2.search(q, 3)
    assert ip_rows[0].tolist() == [1, 0, 2] and ip_scores[0].tolist() == [3.0, 1.0, 0.0]
    assert l2_rows[0].tolist() == [0, 2, 1] and l2_scores[0].tolist() == [0.0, -2.0, -4.0]


# -- rescoring (+refine specs) -------------------------------------------------------------


def test_rescore_off_is_the_raw_faiss_first_stage(built: DenseIndex) -> None:
    """``rescore=False`` ranks by the codes alone: the rows raw FAISS returns for the same
    index and parameters."""
    if built.vectors is None:
        with pytest.raises(InputError, match="keeps no full-precision vectors"):
            built.search(QUERIES[:1], K, rescore=True)
        return
    _, rows = built.search(QUERIES, K, rescore=False, nprobe=16)
    raw = raw_search(built, {"nprobe": 16, "rescore": False}, K, BASE)(QUERIES)
    np.testing.assert_array_equal(rows, raw[1][1])  # type: ignore[index]


def test_more_oversample_never_loses_recall_and_all_rows_is_exact(built: DenseIndex) -> None:
    """With a first stage that scans every code (flat) or the same lists (ivf), the
    candidates for oversample o are a subset of those for o' > o, so recall after exact
    rescoring cannot drop; with every row a candidate the result is the flat one (over the
    vectors as kept: rounded to float16 for +refine16)."""
    if built.vectors is None or built.dense_spec.structure == "hnsw":
        return
    kept = BASE.astype(built.vectors.dtype).astype(np.float32)
    _, truth = exact_search(kept, QUERIES, K, built.metric)
    recalls = [
        recall_at_k(built.search(QUERIES, K, oversample=o, nprobe=64)[1], truth, K)
        for o in (1, 2, 4, 8, 16)
    ]
    assert recalls == sorted(recalls), recalls
    if built.dense_spec.structure == "flat":
        _, rows = built.search(QUERIES, K, oversample=N / K)
        assert recall_at_k(rows, truth, K) == 1.0


def test_bad_oversample_is_refused(built: DenseIndex) -> None:
    if built.vectors is None:
        return
    for bad in (0.5, 0, float("nan"), float("inf"), -2):
        with pytest.raises(InputError, match="oversample must be a number >= 1"):
            built.search(QUERIES[:1], K, oversample=bad)
