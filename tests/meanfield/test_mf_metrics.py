"""Theory-vs-simulation metrics (torchsnn.analysis.metrics.compare_samples) against direct numpy computations of the
two-sample KS and Wasserstein-1 distances and against analytic values (theory §6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from mf_helpers import one_torch_thread  # noqa: F401  (autouse fixture)
from scipy import special

from torchsnn.analysis.metrics import compare_samples


def ks_direct(a: np.ndarray, b: np.ndarray) -> float:
    """sup_x |F_a(x) - F_b(x)| over the pooled sample points (right-continuous empirical CDFs)."""
    grid = np.concatenate([a, b])
    fa = np.searchsorted(np.sort(a), grid, side="right") / a.size
    fb = np.searchsorted(np.sort(b), grid, side="right") / b.size
    return float(np.max(np.abs(fa - fb)))


def w1_direct(a: np.ndarray, b: np.ndarray) -> float:
    """Integral |F_a - F_b| dx, exact for step functions on the pooled sorted points."""
    grid = np.sort(np.concatenate([a, b]))
    fa = np.searchsorted(np.sort(a), grid[:-1], side="right") / a.size
    fb = np.searchsorted(np.sort(b), grid[:-1], side="right") / b.size
    return float(np.sum(np.abs(fa - fb) * np.diff(grid)))


def test_identical_samples_give_zero_distances():
    x = np.random.default_rng(0).gamma(2.0, 3.0, 5000)
    m = compare_samples(x, x.copy())
    assert m["ks"] == 0.0 and m["wasserstein_hz"] == 0.0
    assert m["mean_rel_error"] == 0.0 and m["std_rel_error"] == 0.0


def test_shifted_normal_samples():
    # y = x + s: the empirical laws are translates, so W1 = s exactly; KS -> 2 Phi(s / 2) - 1 for two N(0, 1)
    # samples shifted by s (sup |Phi(x) - Phi(x - s)| at x = s / 2), within the two-sample Kolmogorov
    # fluctuation ~1.95 sqrt(2 / n) at 99.9 %
    rng = np.random.default_rng(1)
    n, shift = 20_000, 0.7
    x = rng.standard_normal(n)
    y = rng.standard_normal(n) + shift
    translate = compare_samples(x + shift, x)
    assert translate["wasserstein_hz"] == pytest.approx(shift, rel=1e-12)
    m = compare_samples(y, x)
    assert m["ks"] == pytest.approx(ks_direct(y, x), abs=1e-12)
    assert m["wasserstein_hz"] == pytest.approx(w1_direct(y, x), rel=1e-10)
    analytic_ks = 2 * special.ndtr(shift / 2) - 1
    assert abs(m["ks"] - analytic_ks) < 1.95 * math.sqrt(2 / n)
    assert abs(m["wasserstein_hz"] - shift) < 5 * math.sqrt(2 / n)  # W1 = |mean shift| + O(n^-1/2)


def test_unequal_sizes_and_discrete_values():
    # ties and different sample sizes, as with spike counts over a window
    rng = np.random.default_rng(2)
    a = rng.poisson(8.0, 3000) / 2.0
    b = rng.poisson(9.0, 1700) / 2.0
    m = compare_samples(a, b)
    assert m["ks"] == pytest.approx(ks_direct(a, b), abs=1e-12)
    assert m["wasserstein_hz"] == pytest.approx(w1_direct(a, b), rel=1e-10)


def test_relative_errors_are_signed_and_overridable():
    predicted = np.array([1.0, 2.0, 3.0, 4.0])  # mean 2.5, population std sqrt(1.25)
    simulated = np.array([1.5, 2.5, 3.5, 4.5, 10.0])
    m = compare_samples(simulated, predicted)
    assert m["mean_rel_error"] == pytest.approx((simulated.mean() - 2.5) / 2.5, rel=1e-14)
    assert m["mean_rel_error"] > 0
    assert m["std_rel_error"] == pytest.approx((simulated.std() - math.sqrt(1.25)) / math.sqrt(1.25), rel=1e-14)
    lower = compare_samples(predicted, simulated)
    assert lower["mean_rel_error"] < 0 and lower["std_rel_error"] < 0
    # exact theory moments override the sample moments of the predicted draws
    o = compare_samples(simulated, predicted, predicted_mean=5.0, predicted_std=2.0)
    assert o["mean_rel_error"] == pytest.approx((simulated.mean() - 5.0) / 5.0, rel=1e-14)
    assert o["std_rel_error"] == pytest.approx((simulated.std() - 2.0) / 2.0, rel=1e-14)
    # the distances do not depend on the overrides
    assert o["ks"] == m["ks"] and o["wasserstein_hz"] == m["wasserstein_hz"]
