"""The counting-noise model of torchsnn.analysis.counts against independent references: the ISI CV formula against
nested adaptive quadrature (scipy) and against a direct simulation of LIF neurons under white noise; the count
model's mean and variance against exact Poisson values, the renewal asymptotics and the same LIF simulation."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from scipy import integrate
from scipy.special import erf, erfcx

from torchsnn.analysis.counts import isi_cv, renewal_counts
from torchsnn.meanfield.transfer import siegert_rate_hz
from torchsnn.meanfield.transfers import RHO_OVERSHOOT

LIF = {"v_reset_mv": 10.0, "tau_m_ms": 20.0, "tau_ref_ms": 2.0}
THETA_MV = 20.0


def cv_by_quadrature(mu: float, sigma: float) -> float:
    """CV^2 = 2 pi (nu tau)^2 Int_{y_r}^{y_th} e^{x^2} Int_{-inf}^x e^{y^2} (1 + erf y)^2 dy dx, by scipy.quad."""
    y_th, y_r = (THETA_MV - mu) / sigma, (LIF["v_reset_mv"] - mu) / sigma

    def inner(x: float) -> float:
        f = lambda y: erfcx(-y) ** 2 * math.exp(-y * y) if y < 0 else math.exp(y * y) * (1 + erf(y)) ** 2  # noqa: E731
        return integrate.quad(f, -np.inf, x, limit=200)[0]

    outer = integrate.quad(lambda x: math.exp(x * x) * inner(x), y_r, y_th, limit=200, epsrel=1e-10)[0]
    mean_isi_s = 1e-3 * (
        LIF["tau_ref_ms"]
        + LIF["tau_m_ms"] * math.sqrt(math.pi) * integrate.quad(lambda u: erfcx(-u), y_r, y_th, epsrel=1e-12)[0]
    )
    return math.sqrt(2 * math.pi * (LIF["tau_m_ms"] * 1e-3) ** 2 * outer) / mean_isi_s


@pytest.mark.parametrize("mu, sigma", [(21.0, 7.7), (15.0, 5.0), (25.0, 2.0), (19.0, 1.0), (12.0, 3.0)])
def test_isi_cv_matches_nested_quadrature(mu: float, sigma: float):
    got = isi_cv(np.array([mu]), np.array([sigma]), theta_mv=THETA_MV, **LIF)[0]
    # the grid's trapezoidal rule (step 1e-3) is accurate to ~1e-6 relative here (measured: <= 9e-6)
    assert got == pytest.approx(cv_by_quadrature(mu, sigma), rel=3e-5)


def test_isi_cv_limits():
    """Escape-driven firing far below threshold is Poisson (CV -> 1); a weakly noisy suprathreshold neuron fires
    almost periodically (CV -> 0, ~ sigma)."""
    low = isi_cv(np.array([5.0, 0.0]), np.array([2.0, 0.4]), theta_mv=THETA_MV, **LIF)
    np.testing.assert_allclose(low, 1.0, atol=2e-3)
    regular = isi_cv(np.array([30.0, 30.0]), np.array([0.2, 0.4]), theta_mv=THETA_MV, **LIF)
    assert regular[0] < 0.03 and regular[1] == pytest.approx(2 * regular[0], rel=0.05)


@numba.njit(cache=False)
def _lif_counts(mu, sigma, theta, n, steps, first, dt_ms, tau_ms, ref_steps, v_reset, seed):  # pragma: no cover
    """Euler-Maruyama LIF neurons tau dV = (mu - V) dt + sigma sqrt(tau) dW: spike counts after step ``first``
    and the sum and sum of squares of the ISIs (ms) there."""
    np.random.seed(seed)
    counts = np.zeros(n, np.int64)
    isi_sum, isi_sq, n_isi = 0.0, 0.0, 0
    a, b = dt_ms / tau_ms, sigma * math.sqrt(dt_ms / tau_ms)
    for i in range(n):
        v, refractory, last = v_reset + (theta - v_reset) * np.random.random(), 0, -1
        for t in range(steps):
            if refractory > 0:
                refractory -= 1
                continue
            v += a * (mu - v) + b * np.random.standard_normal()
            if v >= theta:
                v, refractory = v_reset, ref_steps
                if t >= first:
                    counts[i] += 1
                    if last >= first:
                        d = (t - last) * dt_ms
                        isi_sum += d
                        isi_sq += d * d
                        n_isi += 1
                last = t
    return counts, isi_sum, isi_sq, n_isi


@pytest.mark.slow  # ~10 s of CPU (1.2e8 neuron updates)
def test_count_model_matches_simulated_lif_neurons():
    """2000 independent LIF neurons (dt 0.02 ms) at Brunel's AI operating point, counted over a 2 s window after
    0.3 s: their ISI CV is the formula's (with the threshold moved up by the Euler scheme's overshoot
    RHO_OVERSHOOT sigma sqrt(dt / tau), as in the simulator's theory), and the variance of their counts is CV^2 nu T
    (renewal counting), not nu T (Poisson: twice as large here), as the Gamma-renewal count model says."""
    mu, sigma, dt_ms, window_s, n = 21.0, 7.7, 0.02, 2.0, 2000
    theta = THETA_MV + RHO_OVERSHOOT * sigma * math.sqrt(dt_ms / LIF["tau_m_ms"])
    first = round(300 / dt_ms)
    counts, s1, s2, m = _lif_counts(
        mu,
        sigma,
        THETA_MV,
        n,
        first + round(window_s * 1e3 / dt_ms),
        first,
        dt_ms,
        LIF["tau_m_ms"],
        round(LIF["tau_ref_ms"] / dt_ms),
        LIF["v_reset_mv"],
        7,
    )
    nu = float(siegert_rate_hz(mu, sigma, theta_mv=theta, **LIF))
    cv = float(isi_cv(np.array([mu]), np.array([sigma]), theta_mv=theta, **LIF)[0])
    isi_mean = s1 / m
    cv_sim = math.sqrt(s2 / m - isi_mean**2) / isi_mean
    # ~150,000 ISIs: the CV's standard error is ~0.3 %; the Euler scheme's residual error in the rate is ~0.5 %
    assert cv_sim == pytest.approx(cv, rel=0.02)
    assert counts.mean() / window_s == pytest.approx(nu, rel=0.015)
    # variance of 2000 counts: standard error sqrt(2 / 1999) = 3.2 %, so 12 % is 3.8 standard errors
    assert counts.var(ddof=1) == pytest.approx(cv**2 * nu * window_s, rel=0.12)
    model = renewal_counts(np.full(20000, nu), np.full(20000, cv), window_s, np.random.default_rng(3))
    assert model.var() == pytest.approx(counts.var(ddof=1), rel=0.12)
    assert model.mean() == pytest.approx(counts.mean(), rel=0.01)


def test_renewal_counts_poisson_case_and_stationarity():
    """CV = 1 is the Poisson process: counts Poisson(nu T). For CV < 1 and a window of half a mean ISI, a process
    started at a spike would miss counts; the stationary start gives mean nu T exactly."""
    rng = np.random.default_rng(11)
    n = 100_000
    poisson = renewal_counts(np.full(n, 20.0), np.ones(n), 0.5, rng)  # mean = variance = 10
    se = math.sqrt(10 / n)
    assert abs(poisson.mean() - 10.0) < 4 * se
    assert poisson.var() == pytest.approx(10.0, rel=4 * math.sqrt(2 / n) + 0.01)
    short = renewal_counts(np.full(n, 10.0), np.full(n, 0.3), 0.05, rng)  # nu T = 0.5, variance <= 0.25
    assert abs(short.mean() - 0.5) < 4 * math.sqrt(0.25 / n)
    assert np.all(renewal_counts(np.zeros(5), np.ones(5), 1.0, rng) == 0)


def test_renewal_counts_variance_is_cv2_nu_t_for_long_windows():
    """nu T = 400, CV = 0.5: Var N = CV^2 nu T + O(1) = 100 (the O(1) term is < 1 %); 40,000 counts estimate a
    variance to 0.7 % (one standard error)."""
    n = 40_000
    counts = renewal_counts(np.full(n, 40.0), np.full(n, 0.5), 10.0, np.random.default_rng(5))
    assert abs(counts.mean() - 400.0) < 4 * math.sqrt(100 / n)
    assert counts.var() == pytest.approx(100.0, rel=0.04)
