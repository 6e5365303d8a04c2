"""Predicted rate distributions (torchsnn.meanfield.distributions): Monte Carlo samples against the quadrature
moments, the degree law the samples are drawn from, and counting noise against its analytic moments (theory §5.3,
§6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from mf_helpers import compose_plain, hetero_overrides, mean_rate_hz, one_torch_thread  # noqa: F401

from torchsnn.config.theory_builder import model_from_config
from torchsnn.meanfield.distributions import Distribution, rate_distribution, sample_population
from torchsnn.meanfield.solver import solve

N_SAMPLES = 200_000


@pytest.fixture(scope="module")
def solved():
    model = model_from_config(compose_plain(*hetero_overrides(0.5)))
    return model, solve(model)


@pytest.mark.parametrize("name", ["E", "I"])
def test_samples_agree_with_quadrature_moments(solved, name):
    model, result = solved
    samples = sample_population(model, result.x, name, N_SAMPLES, np.random.default_rng(77))
    dist = rate_distribution(model, result.x, samples, name)
    assert dist.samples.shape == (N_SAMPLES,) and np.all(dist.samples >= 0)
    assert dist.mean == pytest.approx(mean_rate_hz(model, result.x, name), rel=1e-12)
    y = dist.samples
    # standard errors: of the mean, std / sqrt(n); of the std, by the delta method sqrt(m4 - s^4) / (2 s sqrt(n))
    # (rates are skewed, kurtosis ~5: about 0.3 % of the std at n = 200,000). 4.5 SE; the quadrature error of
    # mean and std is < 1e-5 relative (test_quadrature_orders_converge)
    se_mean = y.std() / math.sqrt(y.size)
    m4 = np.mean((y - y.mean()) ** 4)
    se_std = math.sqrt(m4 - y.var() ** 2) / (2 * y.std() * math.sqrt(y.size))
    assert abs(y.mean() - dist.mean) < 4.5 * se_mean + 1e-5 * dist.mean
    assert abs(y.std() - dist.std) < 4.5 * se_std + 1e-5 * dist.std
    assert dist.median == pytest.approx(float(np.median(y)), rel=1e-15)
    summary = dist.summary()
    assert summary["rate_mean_hz"] == dist.mean and summary["rate_std_hz"] == dist.std
    assert summary["rate_median_hz"] == dist.median and summary["n_samples"] == N_SAMPLES


def test_samples_draw_in_degrees_from_rho_not_rho_star(solved):
    # the rate distribution is over the neurons of E (K ~ rho_K, mean 400), not over the presynaptic sides of
    # edges (rho*, mean 432 at r = 0.5); with sd(K) = 160 the standard error of the mean is 0.36
    model, result = solved
    samples = sample_population(model, result.x, "E", N_SAMPLES, np.random.default_rng(5))
    column = model.populations["E"].nodes.inputs.index("E")
    k = samples.k[:, column]
    assert abs(k.mean() - 400.0) < 5 * k.std() / math.sqrt(k.size)
    # ... and each draw carries its rho* factor for the block E<-E: reweighting recovers E*[K] = 432
    g = samples.star["E"]
    assert abs(np.mean(g * k) - 432.0) < 5 * np.std(g * k) / math.sqrt(k.size)


def test_counting_noise_moments():
    # rates from a known law (gamma: mean 5 Hz, sd 4 Hz); a window of T = 0.5 s counts Poisson(nu T) spikes:
    # E[count / T] = E[nu] and Var[count / T] = Var[nu] + E[nu] / T (law of total variance)
    rng = np.random.default_rng(9)
    shape, scale = (5.0 / 4.0) ** 2, 16.0 / 5.0
    rates = rng.gamma(shape, scale, N_SAMPLES)
    dist = Distribution("E", float(rates.mean()), float(rates.std()), rates)
    window = 0.5
    y = dist.with_counting_noise(window, np.random.default_rng(10))
    assert y.shape == rates.shape
    np.testing.assert_allclose(y * window, np.round(y * window), atol=1e-9)  # whole spike counts over T
    mean, var = shape * scale, shape * scale**2
    se_mean = y.std() / math.sqrt(y.size)
    se_var = np.std((y - y.mean()) ** 2) / math.sqrt(y.size)  # influence function of the sample variance
    assert abs(y.mean() - mean) < 4.5 * se_mean
    assert abs(y.var() - (var + mean / window)) < 4.5 * se_var
    # the noise is visible: E[nu] / T = 10 Hz^2 on top of 16 Hz^2, i.e. ~40 standard errors
    assert y.var() - var > 20 * se_var


def test_cdf_is_the_empirical_distribution():
    samples = np.array([3.0, 1.0, 2.0, 2.0, 5.0])
    dist = Distribution("E", 2.6, 1.36, samples)
    np.testing.assert_allclose(dist.cdf(np.array([0.5, 1.0, 2.0, 4.9, 5.0, 9.0])), [0, 0.2, 0.6, 0.8, 1.0, 1.0])
    assert dist.median == 2.0
