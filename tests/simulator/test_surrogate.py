"""The Poisson surrogate drive (populations/surrogate.py): its per-step jump law against the analytic moments of a
compound Poisson sum, and unconnected neurons driven by it against the exact rate of a LIF neuron under Poisson
input (the dt-grid Markov chain of meanfield/markov.py), at two per-neuron rates in one population."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from torchsnn.meanfield.markov import markov_rate_hz
from torchsnn.network import Network
from torchsnn.populations import LIFPopulation, PoissonDrive
from torchsnn.populations.surrogate import PoissonSurrogateDrive, gamma_renewal_input, invert_rows, surrogate_table
from torchsnn.simulation import simulate

LIF = {"tau_m_ms": 20.0, "theta_mv": 20.0, "v_reset_mv": 10.0, "tau_ref_ms": 2.0}
DT_MS = 0.1


def test_table_has_the_moments_of_the_compound_poisson_sum():
    """Mean and variance of sum_b J_b n_b, n_b ~ Poisson(lambda_b), are sum lambda J and sum lambda J^2 (exact up
    to the truncated 1e-17 tails), for every neuron's own CDF."""
    lam = np.array([[0.2, 0.16], [4.5, 0.5], [0.0, 0.3]])
    jumps = np.array([0.1, -0.4])
    values, cdf = surrogate_table(lam, jumps)
    pmf = np.diff(cdf, prepend=0.0, axis=1)
    mean = pmf @ values.astype(np.float64)
    var = pmf @ values.astype(np.float64) ** 2 - mean**2
    np.testing.assert_allclose(mean, lam @ jumps, atol=1e-7)  # float32 values: 1e-8 mV each
    np.testing.assert_allclose(var, lam @ jumps**2, rtol=1e-6)
    assert np.all(np.diff(cdf, axis=1) >= 0) and np.all(cdf[:, -1] == 1.0)


def test_compiled_inversion_equals_searchsorted():
    """The numba kernel returns what torch.searchsorted(right=True) picks, draw for draw."""
    values, cdf = surrogate_table(np.array([[0.3, 0.1], [1.2, 0.4], [0.05, 0.0]]), np.array([0.2, -0.5]))
    g = torch.Generator().manual_seed(3)
    u = torch.rand(400, 3, dtype=torch.float64, generator=g)
    c, v = torch.from_numpy(cdf), torch.from_numpy(values)
    idx = torch.searchsorted(c, u.T.contiguous(), right=True).clamp(max=c.shape[1] - 1)
    torch.testing.assert_close(invert_rows(u, c, v), v[idx].T, rtol=0, atol=0)


@pytest.mark.slow
def test_unconnected_neurons_fire_at_the_exact_poisson_rate():
    """400 neurons: external balanced Poisson drive (PoissonDrive) plus surrogate recurrent input at two rates
    (half the neurons each). Per half, the simulated mean rate against the Markov-chain rate of the same sources
    (within 1 % of simulations, markov.py) within 1 % + 4 counting-noise standard errors (Poisson count
    variance bounds the count variance from above here: the ISI CV is below 1)."""
    n, half = 400, 200
    ext = [(1000 * 39.3, 0.1), (1000 * 26.6, -0.1)]
    rec = {0: [(400 * 5.0, 0.1), (100 * 16.0, -0.4)], 1: [(800 * 5.0, 0.1), (100 * 24.0, -0.4)]}
    rates = torch.zeros(2, n, dtype=torch.float64)
    for part, srcs in rec.items():
        for b, (lam, _) in enumerate(srcs):
            rates[b, part * half : (part + 1) * half] = lam
    base = PoissonDrive(1000, 39.3, 0.1, 1000, 26.6, 0.1)
    drive = PoissonSurrogateDrive(rates, [0.1, -0.4], base)
    pop = LIFPopulation("E", n, DT_MS, **LIF)
    net = Network({"E": pop}, {"E": drive}, {}, DT_MS, backend="numba")
    g = torch.Generator().manual_seed(11)
    net.reset(1, g)
    window_s = 4.0
    res = simulate(net, duration_ms=1000 * window_s + 200.0, transient_ms=200.0, generator=g, progress=False)
    sim = res.rates_hz("E")[0].numpy()
    for part, srcs in rec.items():
        exact = markov_rate_hz(ext + srcs, dt_ms=DT_MS, **LIF)
        got = sim[part * half : (part + 1) * half].mean()
        se = np.sqrt(exact / (half * window_s))
        assert abs(got - exact) <= 0.01 * exact + 4 * se, (part, got, exact, se)


def test_gamma_renewal_input_is_stationary_with_the_right_rate():
    """Two post neurons, 300 edges each from presynaptic neurons at 8 Hz (CV 0.5) and 2 Hz (CV 1.5), 20 s: the
    mean input per step is w sum nu dt in the first and the last quarter alike (stationary from t = 0: the
    length-biased first interval), within 4 standard errors of the counts."""
    rng = np.random.default_rng(2)
    pre = np.arange(600) % 300
    post = np.repeat([0, 1], 300)
    rates = np.where(np.arange(300) < 150, 8.0, 2.0)
    cv = np.where(np.arange(300) < 150, 0.5, 1.5)
    x = gamma_renewal_input(pre, post, rates, cv, 0.25, 2, 200_000, 0.1, rng)
    expected = 0.25 * rates.sum() * 1e-4
    for part in (x[:50_000], x[-50_000:]):
        count = part.sum(0) / 0.25
        se = np.sqrt(expected / 0.25 * 50_000 * 1.5**2)  # count variance <= CV_max^2 x mean (renewal Fano)
        assert np.all(np.abs(count - expected / 0.25 * 50_000) < 4 * se), (count, expected / 0.25 * 50_000)


def test_surrogate_drive_checks_its_input():
    from torchsnn.errors import ConfigError

    with pytest.raises(ConfigError, match="rates_hz"):
        PoissonSurrogateDrive(torch.ones(3, 5), [0.1, -0.4])
    with pytest.raises(ConfigError, match="rates"):
        PoissonSurrogateDrive(-torch.ones(2, 5), [0.1, -0.4])
