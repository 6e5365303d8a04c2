"""PoissonDrive (per-step counts and diffusion moments, theory.md §1) and the spike-trace RateEstimator (§3) on
Bernoulli spike trains, against exact discrete-time moments."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from torchsnn.estimators import RateEstimator
from torchsnn.populations import PoissonDrive


# ----------------------------------------------------------------------------------------------- PoissonDrive
@pytest.mark.parametrize(("k_ext", "nu_hz", "j_mv", "dt_ms"), [(1000, 20.0, 0.1, 0.1), (250, 8.0, 0.35, 0.5)])
def test_poisson_drive_counts_have_poisson_moments(k_ext, nu_hz, j_mv, dt_ms):
    """Per step and neuron the jump is j * n, n ~ Poisson(lam = k nu dt): mean = var = lam, integer n, independent
    steps. 3e5 samples: SE of the mean sqrt(lam / n), of the variance sqrt((lam + 2 lam^2) / n) (Poisson fourth
    moment); tolerance 5 SE; lag-1 correlation within 5 / sqrt(n)."""
    drive = PoissonDrive(k_ext, nu_hz, j_mv)
    drive.bind(20.0, dt_ms)
    x = drive.sample_block(150, 2, 1000, torch.Generator().manual_seed(5))
    assert x.shape == (150, 2, 1000) and x.dtype == torch.float32
    x = x.double()
    counts = x / j_mv
    assert torch.allclose(counts, counts.round(), atol=1e-4)  # whole numbers of input spikes
    lam = k_ext * nu_hz * dt_ms * 1e-3
    n = counts.numel()
    assert float(counts.mean()) == pytest.approx(lam, abs=5 * math.sqrt(lam / n))
    assert float(counts.var()) == pytest.approx(lam, abs=5 * math.sqrt((lam + 2 * lam**2) / n))
    lag1 = np.corrcoef(counts[1:].flatten().numpy(), counts[:-1].flatten().numpy())[0, 1]
    assert abs(lag1) < 5 / math.sqrt(n)
    # and P(n = 0) = e^{-lam}: SE sqrt(p (1 - p) / n)
    p0 = math.exp(-lam)
    assert float((counts.round() == 0).double().mean()) == pytest.approx(p0, abs=5 * math.sqrt(p0 * (1 - p0) / n))


def test_poisson_drive_with_inhibitory_sources():
    """Excitatory and inhibitory Poisson sources: x = j_e n_e - j_i n_i with n ~ Poisson(lam = k nu dt): mean
    j_e lam_e - j_i lam_i, variance j_e^2 lam_e + j_i^2 lam_i (fourth cumulant j_e^4 lam_e + j_i^4 lam_i sets the
    SE of the variance); 3e5 samples, tolerance 5 SE. Values lie on the lattice of multiples of gcd(j_e, j_i)."""
    k_e, nu_e, j_e, k_i, nu_i, j_i, dt = 800, 15.0, 0.1, 200, 8.0, 0.5, 0.1
    drive = PoissonDrive(k_e, nu_e, j_e, k_ext_inh=k_i, nu_ext_inh_hz=nu_i, j_ext_inh_mv=j_i)
    drive.bind(20.0, dt)
    x = drive.sample_block(150, 2, 1000, torch.Generator().manual_seed(6)).double()
    lam_e, lam_i = k_e * nu_e * dt * 1e-3, k_i * nu_i * dt * 1e-3
    mean, var = j_e * lam_e - j_i * lam_i, j_e**2 * lam_e + j_i**2 * lam_i
    k4 = j_e**4 * lam_e + j_i**4 * lam_i
    n = x.numel()
    assert float(x.mean()) == pytest.approx(mean, abs=5 * math.sqrt(var / n))
    assert float(x.var()) == pytest.approx(var, abs=5 * math.sqrt((k4 + 2 * var**2) / n))
    assert torch.allclose(x / 0.1, (x / 0.1).round(), atol=1e-3)
    assert (x < 0).any() and (x > 0).any()
    mu, sigma = drive.moments(20.0)
    assert mu == pytest.approx(0.02 * (k_e * j_e * nu_e - k_i * j_i * nu_i), rel=1e-12)
    assert sigma == pytest.approx(math.sqrt(0.02 * (k_e * j_e**2 * nu_e + k_i * j_i**2 * nu_i)), rel=1e-12)


@pytest.mark.parametrize(("k_ext", "nu_hz", "j_mv", "tau_ms"), [(1000, 20.0, 0.1, 20.0), (400, 5.0, 0.2, 10.0)])
def test_poisson_drive_moments(k_ext, nu_hz, j_mv, tau_ms):
    """mu = tau_m k J nu, sigma = sqrt(tau_m k J^2 nu) with tau_m in seconds (Brunel's eta = 2 drive: 40 mV, 2 mV)."""
    mu, sigma = PoissonDrive(k_ext, nu_hz, j_mv).moments(tau_ms)
    tau_s = tau_ms / 1000.0
    assert mu == pytest.approx(tau_s * k_ext * j_mv * nu_hz, rel=1e-12)
    assert sigma == pytest.approx(math.sqrt(tau_s * k_ext * j_mv**2 * nu_hz), rel=1e-12)
    if (k_ext, nu_hz, j_mv, tau_ms) == (1000, 20.0, 0.1, 20.0):
        assert (mu, sigma) == pytest.approx((40.0, 2.0))


# ----------------------------------------------------------------------------------------------- RateEstimator
def _bernoulli_trace(nu_hz, r_p_hz, dt_ms, n, n_steps, seed, init_rate_hz=0.0, snapshot_every=None):
    """Feed Bernoulli(p = nu dt) spikes to a RateEstimator; return its rate estimate at the snapshot steps."""
    est = RateEstimator(n, r_p_hz, dt_ms, init_rate_hz=init_rate_hz)
    est.reset_state(1)
    gen = torch.Generator().manual_seed(seed)
    p = nu_hz * dt_ms * 1e-3
    snaps = {}
    for t in range(1, n_steps + 1):
        est.step(torch.rand(1, n, generator=gen) < p)
        if snapshot_every is not None and t % snapshot_every == 0:
            snaps[t] = est.rate_hz()[0].double().clone()
    return est, snaps


def test_rate_estimator_mean_and_variance_on_poisson_trains():
    """Stationary moments of x <- d x + s, s ~ Bernoulli(p), d = e^{-r_p dt}:
    E[x] = p / (1 - d) (so E[nu_hat] = r_p p / (1 - d) = nu (1 + O(r_p dt))) and Var[x] = p (1 - p) / (1 - d^2),
    which is alpha / 2 = nu / (2 r_p) up to O(p, r_p dt) (theory.md §3).

    nu = 20 Hz, r_p = 10 Hz (alpha = 2), dt = 0.5 ms; burn-in 6 / r_p = 600 ms (the start at x = 0 is forgotten:
    e^{-6} = 0.25 %, and the estimator is started at the stationary mean below to remove even that), then 6
    snapshots 3 / r_p apart (correlation e^{-3} = 0.05) of 5000 neurons: N = 30000 near-independent samples.
    SE of the mean of x: sqrt(Var / N) = 0.0058 (tolerance 5 SE, covering the 5 % correlation); relative SE of the
    variance: sqrt((2 + excess kurtosis) / N) = 0.9 % (the cumulants of x are kappa_n(s) / (1 - d^n) ~ p / (n r_p dt),
    so its excess kurtosis is ~ r_p / nu = 1 / alpha = 0.5); tolerance 5 %.
    """
    nu, r_p, dt, n = 20.0, 10.0, 0.5, 5000
    p, d = nu * dt * 1e-3, math.exp(-r_p * dt * 1e-3)
    mean_x, var_x = p / (1 - d), p * (1 - p) / (1 - d * d)
    alpha = nu / r_p
    assert var_x == pytest.approx(alpha / 2, rel=0.01)  # the discrete value is the theory's alpha / 2
    every = round(300.0 / dt)
    _, snaps = _bernoulli_trace(
        nu, r_p, dt, n, round(2100.0 / dt), seed=11, init_rate_hz=r_p * mean_x, snapshot_every=every
    )
    x = torch.cat([v for t, v in snaps.items() if t * dt >= 600.0]).numpy() / r_p
    assert x.size == 6 * n
    assert x.mean() == pytest.approx(mean_x, abs=5 * math.sqrt(var_x / x.size))
    assert x.var() == pytest.approx(var_x, rel=0.05)
    # the estimate nu_hat = r_p x: unbiased to O(r_p dt) = 0.25 %, relative error 1 / sqrt(2 alpha) = 0.5
    nu_hat = x * r_p
    assert nu_hat.mean() == pytest.approx(nu, rel=0.02)
    assert nu_hat.std() / nu_hat.mean() == pytest.approx(1 / math.sqrt(2 * alpha), rel=0.05)


def test_rate_estimator_variance_shrinks_with_alpha():
    """Relative error 1 / sqrt(2 alpha): with r_p 10x smaller (alpha = 20 instead of 2) the spread of nu_hat is
    sqrt(10) smaller. 2000 neurons, one snapshot after 6 / r_p; relative SE of a std sqrt(1 / (2 N)) = 1.6 %,
    tolerance 8 %."""
    nu, dt, n = 20.0, 1.0, 2000
    spreads = {}
    for r_p in (10.0, 1.0):
        d = math.exp(-r_p * dt * 1e-3)
        stationary = r_p * nu * dt * 1e-3 / (1 - d)
        steps = round(6000.0 / r_p / dt)
        est, _ = _bernoulli_trace(nu, r_p, dt, n, steps, seed=3, init_rate_hz=stationary)
        spreads[r_p] = float(est.rate_hz().double().std() / est.rate_hz().double().mean())
        assert spreads[r_p] == pytest.approx(1 / math.sqrt(2 * nu / r_p), rel=0.08)
    assert spreads[10.0] / spreads[1.0] == pytest.approx(math.sqrt(10.0), rel=0.12)


def test_rate_estimator_initial_rate_and_relaxation():
    """reset_state sets nu_hat = init_rate exactly (per replica if given as a tensor); without spikes the trace
    decays as e^{-r_p t}; with Poisson spikes at nu the mean relaxes as nu + (nu_0 - nu) e^{-r_p t}.

    Relaxation check at t = 1 / r_p on 5000 neurons: Var[nu_hat] = r_p^2 Var[x] (1 - e^{-2 r_p t}) <=
    r_p nu / 2 = 100 Hz^2 at most, SE of the mean 0.14 Hz; tolerance 0.7 Hz (5 SE) against a prediction of 49.4 Hz.
    """
    est = RateEstimator(7, 10.0, 0.1, init_rate_hz=12.5)
    est.reset_state(3)
    assert est.trace.shape == (3, 7)
    assert torch.allclose(est.rate_hz(), torch.full((3, 7), 12.5))
    est.reset_state(2, init_rate_hz=torch.tensor([[1.0], [4.0]]))
    assert torch.allclose(est.rate_hz(), torch.tensor([[1.0], [4.0]]).expand(2, 7))
    for _ in range(1000):  # 100 ms without spikes
        est.step(torch.zeros(2, 7, dtype=torch.bool))
    # float32: 1000 roundings of 2^-24 each, at most 6e-5 relative
    assert torch.allclose(est.rate_hz(), torch.tensor([[1.0], [4.0]]) * math.exp(-10.0 * 0.1), rtol=1e-4, atol=0)
    assert "trace" in est.state_dict()

    nu, nu0, r_p, dt = 20.0, 100.0, 10.0, 0.1
    est, _ = _bernoulli_trace(nu, r_p, dt, 5000, round(100.0 / dt), seed=4, init_rate_hz=nu0)
    d = math.exp(-r_p * dt * 1e-3)
    n = round(100.0 / dt)
    stationary = r_p * nu * dt * 1e-3 / (1 - d)
    expected = stationary + (nu0 - stationary) * d**n  # exact discrete mean of the linear recursion
    assert expected == pytest.approx(nu + (nu0 - nu) * math.exp(-1.0), rel=1e-3)
    assert float(est.rate_hz().double().mean()) == pytest.approx(expected, abs=0.7)


def test_block_update_with_one_rate_per_replica_equals_per_step_decay():
    """Replicas that differ in r_p (alpha sweeps in one run): each replica's trace follows its own r_p, and the
    block update equals the per-step recursion x <- exp(-r_p dt) x + spikes."""
    import torch

    from torchsnn.estimators import RateEstimator

    r_p = [0.05, 0.5, 5.0]
    block, stepwise = RateEstimator(40, r_p, 0.1, 7.0), RateEstimator(40, r_p, 0.1, 7.0)
    block.reset_state(3)
    stepwise.reset_state(3)
    gen = torch.Generator().manual_seed(4)
    for _ in range(200):
        spikes = torch.rand(15, 3, 40, generator=gen) < 0.01
        block.update_block(spikes)
        for s in range(15):
            stepwise.step(spikes[s])
    torch.testing.assert_close(block.trace, stepwise.trace, rtol=1e-12, atol=1e-12)
    decays = torch.exp(-torch.tensor(r_p, dtype=torch.float64) * 0.1e-3)
    # the replica with the slowest trace remembers its initial value longest
    x0 = 7.0 / torch.tensor(r_p, dtype=torch.float64)
    remaining = x0 * decays**3000
    assert torch.all(block.trace.min(-1).values >= remaining - 1e-9)
    with pytest.raises(ValueError, match="one per replica"):
        RateEstimator(10, r_p, 0.1).reset_state(2)
