"""Isolated LIF neurons under Gaussian white noise (GaussianDrive, exact OU discretisation) against the diffusion
theory: the free membrane potential is an OU process, and the firing rate and ISI CV are the Siegert formulas of
theory.md §5.1 (computed here by scipy quadrature, independently of torchsnn.meanfield), once the known effect of
clock-driven threshold detection is accounted for.

**Discrete-time threshold detection.** A clock-driven neuron tests V >= theta only at the ends of steps and misses
excursions above threshold in between; for white noise this is a first-order effect in sqrt(dt). To first order the
clock-driven neuron fires like the continuous one with its threshold raised by the mean overshoot of a Gaussian
random walk, beta * s, beta = -zeta(1/2) / sqrt(2 pi) = 0.5826 (Siegmund 1979; Broadie, Glasserman & Kou 1997),
s = sigma sqrt((1 - e^{-2 dt / tau_m}) / 2) the noise std per step; the reset is exact and unshifted
(see sim_helpers.discrete_threshold_shift_mv).

Measured as in the tests (8000 neurons x 1 s after 200 ms; dt = 0.1 ms seed 0, dt = 0.02 ms seed 1 and 0.5 s),
rates in Hz (simulated +- SE):

    (mu, sigma) mV  dt ms  simulated        Siegert  theta + beta s  FB: theta, V_r + |zeta(1/2)| sigma sqrt(dt/2tau)
    (15, 5)         0.1    8.807 +- 0.028   9.461    8.823           8.427
    (18, 3)         0.1    11.927 +- 0.025  12.512   11.929          11.555
    (21, 7.4)       0.1    35.455 +- 0.045  37.179   35.482          35.251
    (25, 2)         0.1    42.237 +- 0.016  42.850   42.289          42.201
    (15, 5)         0.02   9.215 +- 0.039   9.461    9.171           8.992
    (18, 3)         0.02   12.297 +- 0.035  12.512   12.249          12.082
    (21, 7.4)       0.02   36.526 +- 0.063  37.179   36.408          36.315
    (25, 2)         0.02   42.651 +- 0.023  42.850   42.598          42.560

The last column is the correction of Fourcaud & Brunel (2002) for synaptic filtering carried over to the time step
(threshold and reset both shifted by sigma |zeta(1/2)| / sqrt(2) sqrt(dt / tau_m)): it fits the mean-driven points
but is 4 % (14 standard errors) off at the fluctuation-driven (15, 5) and 3 % off at (18, 3), so the tests use the
overshoot correction, which fits all points within the statistical error plus an O(dt) residual (largest at
(25, 2), dt = 0.1 ms: 0.05 Hz = 0.12 %).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sim_helpers import LIF, discrete_threshold_shift_mv, isi_cv_theory, record_spike_times, siegert_hz

from torchsnn.network import Network
from torchsnn.populations import GaussianDrive, LIFPopulation

POINTS = [(15.0, 5.0), (18.0, 3.0), (21.0, 7.4), (25.0, 2.0)]  # (mu, sigma) mV; the first three below theta
TRANSIENT_MS = 200.0  # 10 tau_m: the initial uniform voltages are forgotten (relaxation e^{-10})


def _isolated(mu: float, sigma: float, dt: float, n: int, seed: int, **neuron) -> tuple[Network, torch.Generator]:
    pop = LIFPopulation("P", n, dt, **{**LIF, **neuron})
    net = Network({"P": pop}, {"P": GaussianDrive(mu, sigma)}, {}, dt)
    gen = torch.Generator().manual_seed(seed)
    net.reset(1, gen)
    return net, gen


def _rates(mu: float, sigma: float, dt: float, n: int, t_ms: float, seed: int) -> np.ndarray:
    """Per-neuron rate (Hz) over [TRANSIENT_MS, TRANSIENT_MS + t_ms)."""
    net, gen = _isolated(mu, sigma, dt, n, seed)
    start, end = round(TRANSIENT_MS / dt), round((TRANSIENT_MS + t_ms) / dt)
    counts = torch.zeros(n, dtype=torch.int64)
    while net.step_count < end:
        t0 = net.step_count
        out = net.run_block(gen, (start if t0 < start else end) - t0)
        if t0 >= start:
            counts += out.spikes["P"][:, 0].sum(0)
    return counts.numpy() / (t_ms * 1e-3)


def _check_rate(rates: np.ndarray, mu: float, sigma: float, dt: float) -> tuple[float, float, float]:
    """Simulated mean rate vs Siegert with the discrete-threshold correction.

    Tolerance: 4 standard errors of the population mean (neurons are independent, so the SE is the std of the
    per-neuron rates over sqrt(N); it equals sqrt(CV^2 nu / T / N) for renewal trains) plus an allowance for the
    neglected O(dt) terms of relative size nu dt (one time step per ISI: measured residual 0.16 % at (25, 2),
    allowance 0.42 % there at dt = 0.1 ms).
    """
    sim = float(rates.mean())
    se = float(rates.std(ddof=1)) / math.sqrt(rates.size)
    shift = discrete_threshold_shift_mv(sigma, dt)
    corrected = siegert_hz(mu, sigma, theta_mv=LIF["theta_mv"] + shift)
    allowance = corrected * corrected * dt * 1e-3
    assert abs(sim - corrected) <= 4 * se + allowance, (sim, se, corrected, siegert_hz(mu, sigma))
    return sim, se, corrected


def test_free_membrane_potential_is_the_ou_process():
    """No threshold (theta = 1e4 mV): V is an OU process, stationary mean mu, variance sigma^2 / 2 and
    autocovariance (sigma^2 / 2) e^{-s / tau_m} (GaussianDrive's convention, Brunel 2000).

    Samples: 4000 neurons at 5 times 100 ms = 5 tau_m apart (correlation e^{-5}, i.e. independent), N = 20000.
    SE of the mean sqrt(12.5 / 20000) = 0.025 mV (tolerance 4 SE = 0.1 mV); relative SE of the variance
    sqrt(2 / N) = 1 % (tolerance 5 %); lag-10 ms correlation e^{-1/2} = 0.607 with SE (1 - rho^2) / sqrt(N) = 0.005
    (tolerance 0.025). The initial voltages (uniform in [10, 20), mean 15 = mu) are forgotten after 200 ms.
    """
    mu, sigma, dt = 15.0, 5.0, 0.1
    net, gen = _isolated(mu, sigma, dt, 4000, seed=7, theta_mv=1e4)
    pop = net.populations["P"]
    samples, lagged = [], []
    lag_steps = 100  # 10 ms
    for k in range(5):
        while net.step_count < round((200.0 + 100.0 * k) / dt):
            net.run_block(gen, round((200.0 + 100.0 * k) / dt) - net.step_count)
        samples.append(pop.v_mv[0].double().clone())
        target = net.step_count + lag_steps
        while net.step_count < target:
            net.run_block(gen, target - net.step_count)
        lagged.append(pop.v_mv[0].double().clone())
    v, w = torch.cat(samples).numpy(), torch.cat(lagged).numpy()
    assert v.mean() == pytest.approx(mu, abs=0.1)
    assert v.var() == pytest.approx(sigma**2 / 2, rel=0.05)
    rho = np.corrcoef(v, w)[0, 1]
    assert rho == pytest.approx(math.exp(-lag_steps * dt / LIF["tau_m_ms"]), abs=0.025)


def test_gaussian_drive_per_step_input():
    """Input per step: mean mu (1 - d) and variance sigma^2 (1 - d^2) / 2 with d = e^{-dt / tau_m}, independent
    across steps and neurons. 2e5 samples: SE of the mean 0.0022 sd, of the variance 0.32 %; tolerance 5 SE."""
    mu, sigma, dt, tau = 18.0, 3.0, 0.1, 20.0
    drive = GaussianDrive(mu, sigma)
    drive.bind(tau, dt)
    x = drive.sample_block(100, 2, 1000, torch.Generator().manual_seed(1)).double()
    assert x.shape == (100, 2, 1000)
    d = math.exp(-dt / tau)
    sd = sigma * math.sqrt((1 - d * d) / 2)
    n = x.numel()
    assert float(x.mean()) == pytest.approx(mu * (1 - d), abs=5 * sd / math.sqrt(n))
    assert float(x.var()) == pytest.approx(sd**2, rel=5 * math.sqrt(2 / n))
    lag1 = np.corrcoef(x[1:].flatten().numpy(), x[:-1].flatten().numpy())[0, 1]
    assert abs(lag1) < 5 / math.sqrt(n)
    assert drive.moments(tau) == (mu, sigma)


@pytest.mark.parametrize(("mu", "sigma"), POINTS)
def test_isolated_rate_matches_siegert_with_discrete_threshold_correction(mu, sigma):
    """dt = 0.1 ms, 8000 neurons x 1 s: SE about 0.03 Hz; the correction moves the prediction by 0.6-1.7 Hz, so the
    uncorrected Siegert rate is rejected at every point."""
    dt = 0.1
    rates = _rates(mu, sigma, dt, 8000, 1000.0, seed=0)
    sim, se, _ = _check_rate(rates, mu, sigma, dt)
    assert abs(sim - siegert_hz(mu, sigma)) > 8 * se  # the effect is real, and the test can tell


@pytest.mark.slow
@pytest.mark.parametrize(("mu", "sigma"), POINTS)
def test_smaller_time_step_approaches_siegert(mu, sigma):
    """At dt = 0.02 ms the corrected prediction still holds, and the gap to the uncorrected Siegert rate shrinks like
    sqrt(dt): by sqrt(0.02 / 0.1) = 0.45 relative to dt = 0.1 ms (accepted: 0.3-0.65, the O(dt) residuals and the
    statistical error, about 0.05 on the ratio, included)."""
    gaps = []
    for dt, n, t_ms in ((0.1, 8000, 1000.0), (0.02, 8000, 500.0)):
        rates = _rates(mu, sigma, dt, n, t_ms, seed=1)
        sim, _, _ = _check_rate(rates, mu, sigma, dt)
        gaps.append(siegert_hz(mu, sigma) - sim)
    assert gaps[0] > 0 and gaps[1] > 0  # missed crossings only ever lower the rate
    assert 0.3 < gaps[1] / gaps[0] < 0.65, gaps


@pytest.mark.parametrize(("mu", "sigma"), POINTS)
def test_isolated_isi_cv_matches_theory(mu, sigma):
    """CV of the ISI (Brunel 2000, A.13, at the corrected threshold) against the pooled ISIs of 4000 neurons.

    Estimator: all ISIs that *start* in [200, 1200) ms, followed to their end (the run goes on for 1 s more). Whether
    an ISI is included depends only on the ISIs before it, so by Wald's identity the pooled moments are unbiased for
    a renewal train; ISIs lying wholly inside a window would be biased short, and per-neuron CVs from ~10 ISIs are
    biased low (8 % at (15, 5)). SE: from 20 groups of neurons (neurons are independent). Tolerance 4 SE + 0.5 % of CV
    for the O(dt) residual. Measured (seed 2; theory at the corrected threshold, uncorrected in brackets):
    0.8165 +- 0.0057 vs 0.8207 (0.8148) at (15, 5); 0.6277 +- 0.0026 vs 0.6326 (0.6234) at (18, 3);
    0.6591 +- 0.0013 vs 0.6629 (0.6637) at (21, 7.4); 0.2083 +- 0.0004 vs 0.2090 (0.2083) at (25, 2). The CV barely
    depends on the threshold correction; this test checks the shape of the ISI distribution, the rate test its mean.
    """
    dt, n = 0.1, 4000
    net, gen = _isolated(mu, sigma, dt, n, seed=2)
    rec = record_spike_times(net, gen, round(2200.0 / dt))["P"]
    step, neuron = rec[:, 0], rec[:, 2]
    order = np.lexsort((step, neuron))
    step, neuron = step[order], neuron[order]
    same = neuron[1:] == neuron[:-1]
    start, isi, owner = step[:-1][same], np.diff(step)[same] * dt, neuron[:-1][same]
    keep = (start >= round(200.0 / dt)) & (start < round(1200.0 / dt))
    isi, owner = isi[keep], owner[keep]
    cv = isi.std() / isi.mean()
    groups = [isi[owner % 20 == g] for g in range(20)]
    se = np.std([g.std() / g.mean() for g in groups], ddof=1) / math.sqrt(20)
    theory = isi_cv_theory(mu, sigma, theta_mv=LIF["theta_mv"] + discrete_threshold_shift_mv(sigma, dt))
    assert abs(cv - theory) <= 4 * se + 0.005 * theory, (cv, se, theory, isi_cv_theory(mu, sigma))
    # and 1 / mean ISI agrees with the corrected rate (same tolerance as the rate test, SE from the groups)
    rate = 1e3 / isi.mean()
    rate_se = np.std([1e3 / g.mean() for g in groups], ddof=1) / math.sqrt(20)
    corrected = siegert_hz(mu, sigma, theta_mv=LIF["theta_mv"] + discrete_threshold_shift_mv(sigma, dt))
    assert abs(rate - corrected) <= 4 * rate_se + corrected**2 * dt * 1e-3, (rate, rate_se, corrected)
