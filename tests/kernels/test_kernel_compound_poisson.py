"""``compound_poisson_table``: the tabulated law of sum_s J_s n_s, n_s ~ Poisson(lam_s), against the exact
convolution of Poisson pmfs (scipy), its moments, and goodness of fit of the drive's samples (chi-square, fixed
seed) with a power check (a wrong lambda is rejected)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from torchsnn.populations import PoissonDrive
from torchsnn.populations.drive import compound_poisson_table

SOURCES = {
    "single": [(2.0, 0.1)],  # brunel_a: k_ext nu_ext dt = 1000 x 20 Hz x 0.1 ms
    "balanced": [(3.8, 0.1), (2.66, -0.1)],  # hetero_static: both signs on one grid, values merge
    "incommensurate": [(0.7, 0.25), (1.3, -0.4)],
    "three": [(0.05, 1.0), (4.5, 0.02), (0.3, -0.35)],
    "large": [(40.0, 0.05)],
}


def exact_law(sources: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values (float64, rounded to 1e-9 as the table does) and probabilities, by brute-force convolution
    of independently computed pmfs (each carried far beyond any mass that float64 can hold)."""
    values, probs = np.zeros(1), np.ones(1)
    for lam, jump in sources:
        k = np.arange(int(lam + 60 * math.sqrt(lam + 1) + 60))
        pmf = stats.poisson.pmf(k, lam)
        v = (values[:, None] + jump * k[None, :]).ravel()
        p = (probs[:, None] * pmf[None, :]).ravel()
        values, inverse = np.unique(np.round(v, 9), return_inverse=True)
        probs = np.zeros(values.size)
        np.add.at(probs, inverse, p)
    return values, probs


@pytest.mark.parametrize("name", list(SOURCES))
def test_table_equals_exact_convolution(name):
    sources = SOURCES[name]
    values, cdf = compound_poisson_table(sources)
    assert values.dtype == np.float32 and cdf.dtype == np.float64
    assert cdf[-1] == 1.0 and np.all(np.diff(cdf) >= 0)
    assert np.all(np.diff(values) > 0)
    table_p = np.diff(cdf, prepend=0.0)
    exact_v, exact_p = exact_law(sources)
    # the table may stop earlier in the far tail (mass < 1e-17 per source); compare on the common support
    index = np.searchsorted(exact_v.astype(np.float32), values)
    assert np.array_equal(exact_v.astype(np.float32)[index], values)
    np.testing.assert_allclose(table_p, exact_p[index], rtol=0, atol=1e-12)
    assert exact_p.sum() - exact_p[index].sum() < 1e-12  # nothing of weight left out
    # moments: sum lam J and sum lam J^2 (exact values with the table's probabilities)
    mean = sum(lam * j for lam, j in sources)
    var = sum(lam * j * j for lam, j in sources)
    v64 = exact_v[index]
    m_table = float((table_p * v64).sum())
    v_table = float((table_p * (v64 - m_table) ** 2).sum())
    assert math.isclose(m_table, mean, rel_tol=1e-12, abs_tol=1e-13)
    assert math.isclose(v_table, var, rel_tol=1e-12)
    # and with the float32 values the table hands out (rounding of the values only)
    v32 = values.astype(np.float64)
    assert math.isclose(float((table_p * v32).sum()), mean, rel_tol=1e-6, abs_tol=1e-7)
    assert math.isclose(float((table_p * v32**2).sum()) - float((table_p * v32).sum()) ** 2, var, rel_tol=1e-5)


def test_tail_truncation_is_below_the_requested_mass():
    values, _ = compound_poisson_table([(2.0, 0.1)], tail=1e-6)
    k_last = round(float(values[-1]) / 0.1)
    assert stats.poisson.sf(k_last, 2.0) < 1e-6  # mass beyond the last value is below the tail asked for
    assert stats.poisson.sf(k_last - 1, 2.0) >= 1e-6  # ... and the table did not stop later than needed


def _chi_square(samples: np.ndarray, values: np.ndarray, probs: np.ndarray) -> float:
    """p-value of Pearson's chi-square test of ``samples`` against the law (values, probs); cells with an
    expected count below 5 are merged into their neighbours from the tails inwards."""
    n = samples.size
    index = np.searchsorted(values.astype(np.float32), samples)
    assert np.array_equal(values.astype(np.float32)[np.clip(index, 0, values.size - 1)], samples)
    observed = np.bincount(index, minlength=values.size).astype(float)
    expected = probs / probs.sum() * n
    cells_o, cells_e, acc_o, acc_e = [], [], 0.0, 0.0
    for o, e in zip(observed, expected, strict=True):
        acc_o, acc_e = acc_o + o, acc_e + e
        if acc_e >= 5:
            cells_o.append(acc_o)
            cells_e.append(acc_e)
            acc_o = acc_e = 0.0
    cells_o[-1] += acc_o
    cells_e[-1] += acc_e
    return float(stats.chisquare(cells_o, cells_e).pvalue)


@pytest.mark.parametrize(
    "params",
    [
        {"k_ext": 1000, "nu_ext_hz": 20.0, "j_ext_mv": 0.1},
        {
            "k_ext": 1000,
            "nu_ext_hz": 38.0,
            "j_ext_mv": 0.1,
            "k_ext_inh": 1000,
            "nu_ext_inh_hz": 26.6,
            "j_ext_inh_mv": 0.1,
        },
    ],
    ids=["brunel", "balanced"],
)
def test_samples_fit_the_exact_law_and_a_wrong_lambda_is_rejected(params):
    drive = PoissonDrive(**params)
    drive.bind(20.0, 0.1)
    gen = torch.Generator().manual_seed(12345)
    samples = drive.sample_block(20, 1, 10_000, gen).numpy().ravel()  # 200,000 draws
    sources = drive.sources()
    values, probs = exact_law(sources)
    p_right = _chi_square(samples, values, probs)
    assert p_right > 1e-3, f"samples do not fit the exact law (p = {p_right:.2e})"
    # power: the same samples against the law with the first source's lambda 3% off
    wrong = [(sources[0][0] * 1.03, sources[0][1]), *sources[1:]]
    w_values, w_probs = exact_law(wrong)
    p_wrong = _chi_square(samples, w_values, w_probs)
    assert p_wrong < 1e-6, f"a 3% error in lambda went unnoticed (p = {p_wrong:.2e})"
    # sample moments within 5 standard errors of the exact ones
    mean = sum(lam * j for lam, j in sources)
    var = sum(lam * j * j for lam, j in sources)
    assert abs(samples.astype(np.float64).mean() - mean) < 5 * math.sqrt(var / samples.size)
