"""The Gaussian mixture sampler: Ledoit–Wolf shrinkage by formula, fit and sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ragfleet.errors import InputError
from ragfleet.eval.gmm import GaussianMixture, shrunk_covariance


def test_shrinkage_by_formula() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 5)) * np.array([1, 2, 3, 4, 5])
    c = x - x.mean(axis=0)
    n, d = c.shape
    s = c.T @ c / n
    mu = np.trace(s) / d
    b2 = (sum(np.linalg.norm(r) ** 4 for r in c) / n - np.linalg.norm(s) ** 2) / n
    alpha = min(1.0, b2 / np.linalg.norm(s - mu * np.eye(d)) ** 2)
    np.testing.assert_allclose(shrunk_covariance(c), (1 - alpha) * s + alpha * mu * np.eye(d))
    few = c[:3]  # fewer points than dimensions: still positive definite
    assert np.linalg.eigvalsh(shrunk_covariance(few)).min() > 0


def test_fit_recovers_well_separated_components_and_sampling_is_seeded(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    centres = np.array([[10.0, 0, 0, 0], [0, -10.0, 0, 0]])
    x = np.concatenate([c + 0.5 * rng.normal(size=(300, 4)) for c in centres])
    gmm = GaussianMixture.fit(x, 2, seed=0)
    order = np.argsort(gmm.means[:, 0])
    np.testing.assert_allclose(gmm.means[order], centres[::-1], atol=0.15)
    np.testing.assert_allclose(gmm.weights, [0.5, 0.5])
    raw = gmm.sample(4000, seed=3, normalize=False)
    assert raw.dtype == np.float32 and raw.shape == (4000, 4)
    assert abs((raw[:, 0] > 5).mean() - 0.5) < 0.05  # half from each component
    np.testing.assert_allclose(raw[raw[:, 0] > 5].std(axis=0), 0.5, atol=0.06)
    unit = gmm.sample(10, seed=3)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(gmm.sample(10, seed=3), unit)
    gmm.save(tmp_path / "g.npz")
    np.testing.assert_array_equal(GaussianMixture.load(tmp_path / "g.npz").sample(10, 3), unit)


def test_fit_needs_enough_points() -> None:
    with pytest.raises(InputError, match="at least 8"):
        GaussianMixture.fit(np.zeros((5, 3)), 4)
