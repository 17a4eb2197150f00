"""Exact rescoring of candidates and exact search over a subset, against numpy formulas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ragfleet.index import rescore
from ragfleet.index.binary import binarize
from ragfleet.index.vectors import VectorStore

faiss = pytest.importorskip("faiss")
D = 16
RNG = np.random.default_rng(7)
X = RNG.normal(size=(300, D)).astype(np.float32)
Q = RNG.normal(size=(4, D)).astype(np.float32)


def exact(metric: str, q: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``<q, x>`` or ``-||q - x||²``, in float64."""
    q64, x64 = q.astype(np.float64), x.astype(np.float64)
    if metric == "ip":
        return np.asarray(q64 @ x64.T)
    return np.asarray(-((q64[:, None, :] - x64[None]) ** 2).sum(-1))


def stores(tmp_path: Path) -> list[VectorStore]:
    """One contiguous store (FAISS by-idx kernels), one in two parts (gathered)."""
    whole = VectorStore(D)
    whole.add(X)
    parts = VectorStore(D)
    parts.add(X[:200])
    parts.adopt(parts.write(tmp_path, 1))
    parts.add(X[200:])
    assert whole.contiguous() is not None and parts.contiguous() is None
    return [whole, parts]


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_rescore_keeps_the_best_k_by_exact_score(metric: str, tmp_path: Path) -> None:
    cand = np.stack([RNG.choice(300, 12, replace=False) for _ in range(4)]).astype(np.int64)
    cand[1, 5:] = -1  # a query with only 5 candidates
    for store in stores(tmp_path):
        scores, rows = rescore.rescore(faiss, store, Q, cand, 8, metric)  # type: ignore[arg-type]
        for i in range(4):
            valid = cand[i][cand[i] >= 0]
            s = exact(metric, Q[i : i + 1], X[valid])[0]
            best = np.argsort(-s, kind="stable")[:8]
            n = min(8, valid.size)
            np.testing.assert_array_equal(rows[i, :n], valid[best][:n])
            np.testing.assert_allclose(scores[i, :n], s[best][:n], rtol=1e-5, atol=1e-4)
            assert np.all(rows[i, n:] == -1) and np.all(np.isneginf(scores[i, n:]))


@pytest.mark.parametrize("metric", ["ip", "l2"])
@pytest.mark.parametrize("gap", [False, True])
def test_rescore_over_many_queries_with_gaps_and_k_beyond_the_candidates(
    metric: str, gap: bool, tmp_path: Path
) -> None:
    """Full rows, a row padded at its tail and (``gap``) a -1 between candidates, with
    ``k`` above the candidates per row: every row is its own brute-force top ``k``."""
    cand = np.stack([RNG.choice(300, 6, replace=False) for _ in range(4)]).astype(np.int64)
    cand[3, 4:] = -1
    if gap:
        cand[0, 2] = -1
    for store in stores(tmp_path):
        scores, rows = rescore.rescore(faiss, store, Q, cand, 9, metric)  # type: ignore[arg-type]
        assert rows.shape == scores.shape == (4, 9)
        for i in range(4):
            valid = cand[i][cand[i] >= 0]
            s = exact(metric, Q[i : i + 1], X[valid])[0]
            best = np.argsort(-s, kind="stable")
            np.testing.assert_array_equal(rows[i, : valid.size], valid[best])
            np.testing.assert_allclose(scores[i, : valid.size], s[best], rtol=1e-5, atol=1e-4)
            assert np.all(rows[i, valid.size :] == -1)
            assert np.all(np.isneginf(scores[i, valid.size :]))


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_rescore_of_no_queries_is_empty(metric: str, tmp_path: Path) -> None:
    for store in stores(tmp_path):
        none = np.empty((0, 6), dtype=np.int64)
        scores, rows = rescore.rescore(faiss, store, Q[:0], none, 4, metric)  # type: ignore[arg-type]
        assert scores.shape == rows.shape == (0, 4)


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_exact_subset_is_brute_force_over_the_allowed_rows(
    metric: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rescore, "SUBSET_BLOCK", 7)  # many blocks, merged
    allowed = np.sort(RNG.choice(300, 40, replace=False)).astype(np.int64)
    for store in stores(tmp_path):
        scores, rows = rescore.exact_subset(faiss, store, Q, allowed, 5, metric)  # type: ignore[arg-type]
        s = exact(metric, Q, X[allowed])
        order = np.argsort(-s, axis=1, kind="stable")[:, :5]
        np.testing.assert_array_equal(rows, allowed[order])
        np.testing.assert_allclose(scores, np.take_along_axis(s, order, 1), rtol=1e-5, atol=1e-4)
    few = allowed[:3]
    scores, rows = rescore.exact_subset(faiss, stores(tmp_path)[0], Q, few, 5, metric)  # type: ignore[arg-type]
    assert np.all(rows[:, 3:] == -1) and np.all(np.isneginf(scores[:, 3:]))


def test_candidates_formula() -> None:
    assert rescore.candidates(10, 1.0) == 10
    assert rescore.candidates(10, 1.5) == 15
    assert rescore.candidates(10, 1.01) == 11  # ceil(10.1)
    assert rescore.candidates(100, 8) == 800


def test_binarize_is_the_sign_bits_packed_little_endian() -> None:
    x = np.array([[0.5, -1, 0, 2, -3, 4, 5, -6, 7, 0.1, -0.1, 0, 0, 0, 0, 1]], np.float32)
    bits = (x > 0).astype(np.uint8)[0]
    want = [sum(int(bits[8 * b + i]) << i for i in range(8)) for b in range(2)]
    assert binarize(x).tolist() == [want]
    a, b = binarize(X[:1]), binarize(X[1:2])
    hamming = int(np.unpackbits(a ^ b).sum())
    assert hamming == int(((X[0] > 0) != (X[1] > 0)).sum())
