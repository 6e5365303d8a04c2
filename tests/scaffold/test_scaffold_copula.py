"""Gaussian copula of (K, L): Pearson r against an independent quadrature, calibration, reachability,
E[L | K = k], and the realised r of configuration-model scaffolds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import special, stats

from torchsnn.errors import ConfigError
from torchsnn.scaffold import (
    ConfigurationModel,
    DegreeLaw,
    GammaDegree,
    LognormalDegree,
    NegativeBinomialDegree,
    PoissonDegree,
    calibrate_copula,
    conditional_out_mean,
    copula_pearson,
    reachable_r,
    sample_correlated_degrees,
)

PAIRS = [
    (PoissonDegree(3), NegativeBinomialDegree(5, 0.9)),
    (GammaDegree(30, 1.0), GammaDegree(30, 0.5)),
    (LognormalDegree(20, 0.6), GammaDegree(20, 0.8)),
]


def quadrature_pearson(law_in: DegreeLaw, law_out: DegreeLaw, rho: float) -> float:
    """Independent reference: E[K L] = int phi(z) h_K(z) E[L | z1 = z] dz with
    E[L | z1 = z] = l_min + sum_j Phi((rho z - b_j) / sqrt(1 - rho^2)), by Gauss-Legendre on each interval where
    h_K is constant (the integrand is smooth there)."""
    ka, a = law_in.normal_thresholds()
    kb, b = law_out.normal_thresholds()
    b = b[np.isfinite(b)]
    edges = np.concatenate([[-10.0], np.clip(a, -10.0, 10.0)])
    x, w = np.polynomial.legendre.leggauss(20)
    s = math.sqrt(1 - rho * rho)
    total = 0.0
    for i, k in enumerate(ka):
        lo, hi = edges[i], edges[i + 1]
        if hi > lo:
            z = 0.5 * (hi - lo) * x + 0.5 * (hi + lo)
            m = kb[0] + special.ndtr((rho * z[:, None] - b[None, :]) / s).sum(axis=1)
            total += k * 0.5 * (hi - lo) * np.sum(w * m * np.exp(-0.5 * z * z)) / math.sqrt(2 * math.pi)
    return (total - law_in.mean * law_out.mean) / math.sqrt(law_in.variance * law_out.variance)


@pytest.mark.parametrize(("law_in", "law_out"), PAIRS, ids=repr)
@pytest.mark.parametrize("rho", [-0.95, -0.4, 0.3, 0.9])
def test_pearson_matches_independent_quadrature(law_in: DegreeLaw, law_out: DegreeLaw, rho: float) -> None:
    assert copula_pearson(law_in, law_out, rho) == pytest.approx(quadrature_pearson(law_in, law_out, rho), abs=1e-6)


@pytest.mark.parametrize(
    ("law_in", "law_out"),
    [(PoissonDegree(0.5), PoissonDegree(0.7)), (PoissonDegree(0.05), NegativeBinomialDegree(2, 1.0))],
    ids=repr,
)
@pytest.mark.parametrize("rho", [-0.99999, -0.9999, 0.999, 0.99999])
def test_pearson_near_one_with_few_large_steps(law_in: DegreeLaw, law_out: DegreeLaw, rho: float) -> None:
    """Where the Hermite series converges slowly (tiny means, |rho| -> 1): Hoeffding's
    Cov = sum_ij [Phi2(a_i, b_j) - Phi(a_i) Phi(b_j)] with scipy's bivariate normal cdf as the reference."""
    _, a = law_in.normal_thresholds()
    _, b = law_out.normal_thresholds()
    grid = np.array([[x, y] for x in a[np.isfinite(a)] for y in b[np.isfinite(b)]])
    joint = stats.multivariate_normal.cdf(grid, [0, 0], [[1, rho], [rho, 1]], abseps=1e-12, releps=1e-12)
    cov = np.sum(joint - special.ndtr(grid[:, 0]) * special.ndtr(grid[:, 1]))
    reference = cov / math.sqrt(law_in.variance * law_out.variance)
    assert copula_pearson(law_in, law_out, rho) == pytest.approx(reference, abs=1e-8)
    end = reachable_r(law_in, law_out)[rho > 0]  # and continuity into the exact rho = +-1 values
    assert copula_pearson(law_in, law_out, rho) == pytest.approx(end, abs=5e-3)
    k, p = law_in.support()
    m = conditional_out_mean(law_in, law_out, rho, k)
    assert (np.dot(p, k * m) - law_in.mean * law_out.mean) == pytest.approx(cov, abs=1e-8)


@pytest.mark.parametrize("rho", [-1.0, -0.6, 0.7, 1.0])
def test_pearson_matches_sampling(rho: float) -> None:
    law_in, law_out = GammaDegree(50, 0.8), LognormalDegree(50, 1.0)
    k, ell = sample_correlated_degrees(law_in, law_out, rho, 1_000_000, torch.Generator().manual_seed(11))
    assert k.dtype == torch.int64 and ell.dtype == torch.int64
    k, ell = k.numpy(), ell.numpy()
    assert k.mean() == pytest.approx(law_in.mean, abs=5 * math.sqrt(law_in.variance / k.size))
    r = copula_pearson(law_in, law_out, rho)
    # sampling sd of Pearson r is about (1 - r^2) / sqrt(n) = 1e-3 here; heavy tails inflate it: allow 5e-3
    assert np.corrcoef(k, ell)[0, 1] == pytest.approx(r, abs=5e-3)


@pytest.mark.parametrize(("law_in", "law_out"), PAIRS, ids=repr)
@pytest.mark.parametrize("r", [-0.5, -0.1, 0.0, 0.3, 0.8])
def test_calibration_reproduces_r(law_in: DegreeLaw, law_out: DegreeLaw, r: float) -> None:
    rho = calibrate_copula(law_in, law_out, r)
    assert -1.0 <= rho <= 1.0
    assert copula_pearson(law_in, law_out, rho) == pytest.approx(r, abs=1e-3)
    assert abs(rho) >= abs(r) - 1e-9  # discretisation and skew only weaken the correlation


def test_reachable_interval_and_unreachable_r() -> None:
    law = GammaDegree(300, 1.0)
    lo, hi = reachable_r(law, law)
    assert hi == pytest.approx(1.0, abs=1e-9)  # identical marginals: comonotone coupling gives r = 1
    assert -0.7 < lo < -0.6  # exponential-like marginals cannot be strongly anti-correlated (exact: 1 - pi^2/6)
    assert lo == pytest.approx(1 - math.pi**2 / 6, abs=2e-3)  # Pearson of (X, Y) antitone exponentials
    with pytest.raises(ConfigError) as err:
        calibrate_copula(law, law, -0.99, field="projections[E<-E].r")
    msg = str(err.value)
    assert err.value.field == "projections[E<-E].r" and "-0.99" in msg
    assert "reachable" in msg and f"{lo:.4f}" in msg and f"{hi:.4f}" in msg


@pytest.mark.parametrize("rho", [-0.7, 0.0, 0.5, 1.0])
def test_conditional_out_mean_identities_and_sampling(rho: float) -> None:
    law_in, law_out = GammaDegree(50, 0.8), NegativeBinomialDegree(40, 0.6)
    k, p = law_in.support()
    m = conditional_out_mean(law_in, law_out, rho, k)
    assert np.dot(p, m) == pytest.approx(law_out.mean, rel=1e-8)  # E[E[L | K]] = E[L]
    cov = np.dot(p, k * m) - law_in.mean * law_out.mean  # Cov(K, E[L | K]) = Cov(K, L)
    assert cov / math.sqrt(law_in.variance * law_out.variance) == pytest.approx(
        copula_pearson(law_in, law_out, rho), abs=1e-8
    )
    kk, ell = (
        t.numpy() for t in sample_correlated_degrees(law_in, law_out, rho, 1_000_000, torch.Generator().manual_seed(5))
    )
    for value in np.quantile(kk, [0.1, 0.5, 0.9]).astype(int):
        sel = ell[kk == value]
        se = max(sel.std(), 1.0) / math.sqrt(sel.size)
        assert conditional_out_mean(law_in, law_out, rho, np.array([value]))[0] == pytest.approx(sel.mean(), abs=5 * se)
    if rho == 0.0:
        assert np.allclose(m, law_out.mean)
    assert np.isnan(conditional_out_mean(law_in, law_out, rho, np.array([-1]))[0])


@pytest.mark.parametrize("r", [-0.5, 0.0, 0.5])
def test_realised_r_of_configuration_model(r: float) -> None:
    """N = 10,000: the sampling sd of Pearson r for these marginals is about 0.01, so 0.02 is 2 sd at a fixed seed;
    stub adjustment and lost edges change the degrees by well under 1 %."""
    rule = ConfigurationModel(GammaDegree(300, 0.7), r=r)
    wiring = rule.connect(10_000, 10_000, True, torch.Generator().manual_seed(2024))
    kin = np.bincount(wiring.post.numpy(), minlength=10_000)
    kout = np.bincount(wiring.pre.numpy(), minlength=10_000)
    realised = np.corrcoef(kin, kout)[0, 1]
    assert wiring.report["r_realised"] == pytest.approx(realised, abs=1e-12)
    assert realised == pytest.approx(r, abs=0.02)
    law = GammaDegree(300, 0.7)
    assert wiring.report["copula_rho"] == pytest.approx(calibrate_copula(law, law, r))
