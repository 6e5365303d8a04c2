"""Degree laws: normalisation, exact moments, quantiles, and samples against the pmf (chi-square, with power)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from torchsnn.errors import ConfigError
from torchsnn.scaffold import (
    BinomialDegree,
    DegreeLaw,
    FixedDegree,
    GammaDegree,
    LognormalDegree,
    NegativeBinomialDegree,
    PoissonDegree,
)

LAWS = [
    FixedDegree(7),
    BinomialDegree(30, 200),
    PoissonDegree(4.5),
    NegativeBinomialDegree(20, 0.8),
    GammaDegree(40, 0.7),
    GammaDegree(2.5, 1.2),
    GammaDegree(12.4, 0.0),
    LognormalDegree(60, 1.0),
    LognormalDegree(3, 0.5),
]


def binned_chisquare(law: DegreeLaw, samples: np.ndarray, min_expected: float = 10.0) -> float:
    """p-value of scipy.stats.chisquare on counts in bins of adjacent k, each expecting >= min_expected samples."""
    k, p = law.support(1e-12)
    expected = samples.size * p
    edges, acc = [], 0.0  # bin i holds k in [edges[i], edges[i + 1])
    for kk, e in zip(k, expected, strict=True):
        if acc == 0.0:
            edges.append(kk)
        acc += e
        if acc >= min_expected:
            acc = 0.0
    exp_bins = np.add.reduceat(expected, np.searchsorted(k, edges))
    if acc and len(edges) > 1:  # merge a short last bin into the previous one
        exp_bins[-2] += exp_bins[-1]
        exp_bins, edges = exp_bins[:-1], edges[:-1]
    obs = np.bincount(np.searchsorted(edges, samples, side="right") - 1, minlength=len(edges))
    return float(stats.chisquare(obs, exp_bins * obs.sum() / exp_bins.sum()).pvalue)


@pytest.mark.parametrize("law", LAWS, ids=repr)
def test_pmf_normalised_over_support(law: DegreeLaw) -> None:
    k, p = law.support(1e-12)
    assert k.dtype == np.int64 and np.all(np.diff(k) == 1) and k[0] >= 0
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert law.pmf(k).sum() == pytest.approx(1.0, abs=1e-11)  # raw masses: only the 1e-12 tail is missing
    assert law.pmf(np.array([-1, -5])).sum() == 0.0 and law.pmf(np.array([2.5]))[0] == 0.0


@pytest.mark.parametrize("law", LAWS, ids=repr)
def test_moment_properties_match_pmf(law: DegreeLaw) -> None:
    k = np.arange(0, int(law.ppf(1 - 1e-15)) + 50)
    p = law.pmf(k)
    mean = np.dot(k, p)
    var = np.dot((k - mean) ** 2, p)
    assert law.mean == pytest.approx(mean, rel=1e-10, abs=1e-12)
    assert law.variance == pytest.approx(var, rel=1e-8, abs=1e-12)
    assert law.cv == pytest.approx(math.sqrt(var) / mean, rel=1e-8, abs=1e-12)


def test_closed_form_moments() -> None:
    assert BinomialDegree(30, 200).variance == pytest.approx(200 * 0.15 * 0.85, rel=1e-9)
    assert PoissonDegree(4.5).variance == pytest.approx(4.5, rel=1e-9)
    nb = NegativeBinomialDegree(20, 0.8)
    assert (nb.mean, nb.cv) == (pytest.approx(20, rel=1e-9), pytest.approx(0.8, rel=1e-9))
    assert GammaDegree(12.4, 0.0).mean == 12  # cv = 0: the mean rounded, a fixed degree
    assert LognormalDegree(500, 0.5).cv == pytest.approx(0.5, rel=1e-3)  # rounding hardly matters at large mean


@pytest.mark.parametrize(
    ("law", "draw"),
    [
        (GammaDegree(2.5, 1.2), lambda rng, n: rng.gamma(1 / 1.2**2, 2.5 * 1.2**2, n)),
        (
            LognormalDegree(3, 0.5),
            lambda rng, n: rng.lognormal(math.log(3) - math.log(1.25) / 2, math.log(1.25) ** 0.5, n),
        ),
    ],
)
def test_rounded_laws_against_rounded_continuous_samples(law: DegreeLaw, draw) -> None:
    """Exact mean/variance of the rounded law vs numpy's continuous sampler, rounded (an independent route)."""
    x = np.floor(draw(np.random.default_rng(3), 2_000_000) + 0.5)
    se_mean = x.std() / math.sqrt(x.size)
    se_var = math.sqrt((np.mean((x - x.mean()) ** 4) - x.var() ** 2) / x.size)
    assert abs(law.mean - x.mean()) < 5 * se_mean
    assert abs(law.variance - x.var()) < 5 * se_var
    # the rounding is visible (about +1/12 on the variance), and the properties report it, not the parameters
    assert abs(law.variance - (law.cv_param * law.mean_param) ** 2) > 5 * se_var


@pytest.mark.parametrize("law", LAWS, ids=repr)
def test_ppf_inverts_cdf(law: DegreeLaw) -> None:
    q = np.concatenate([np.linspace(0.001, 0.999, 501), [1e-9, 1 - 1e-9]])
    k = law.ppf(q)
    assert k.dtype == np.int64
    assert np.all(law.cdf(k) >= q - 1e-12)
    assert np.all(law.cdf(k - 1) < q)
    k_sup, _ = law.support()
    f = law.cdf(k_sup)
    assert np.array_equal(law.ppf(f[:-1]), k_sup[:-1])  # F^{-1}(F(k)) = k on the support
    assert np.array_equal(law.ppf(f[:-1] + 0.5 * law.pmf(k_sup[1:])), k_sup[1:])  # just above F(k): k + 1


@pytest.mark.parametrize("index", range(len(LAWS)))
def test_samples_fit_the_pmf(index: int) -> None:
    law = LAWS[index]
    samples = law.sample(20_000, np.random.default_rng(100 + index))
    assert samples.dtype == np.int64
    if law.variance == 0:
        assert np.all(samples == law.mean)
        return
    assert binned_chisquare(law, samples) > 1e-3


@pytest.mark.parametrize(
    ("truth", "claimed"),
    [
        (GammaDegree(40, 0.8), GammaDegree(40, 0.7)),  # wrong cv
        (LognormalDegree(60, 1.0), GammaDegree(60, 1.0)),  # wrong family, same mean and cv
        (NegativeBinomialDegree(10, 0.4), PoissonDegree(10)),  # over-dispersion
    ],
)
def test_chisquare_has_power(truth: DegreeLaw, claimed: DegreeLaw) -> None:
    samples = truth.sample(20_000, np.random.default_rng(7))
    assert binned_chisquare(truth, samples) > 1e-3
    assert binned_chisquare(claimed, samples) < 1e-6


def test_with_mean_keeps_family_and_shape() -> None:
    g = GammaDegree(None, 0.6).with_mean(50)
    assert isinstance(g, GammaDegree) and g.cv_param == 0.6 and g.mean_param == 50
    b = BinomialDegree(None).with_mean(5).with_trials(100)
    assert b.n_trials == 100 and b.variance == pytest.approx(100 * 0.05 * 0.95)
    assert GammaDegree(None, 0.6).mean is None
    assert g.describe()["family"] == "gamma" and g.describe()["cv"] == 0.6
    assert GammaDegree(50, 0.6) == g and hash(GammaDegree(50, 0.6)) == hash(g)


def test_unset_mean_or_trials_cannot_be_evaluated() -> None:
    with pytest.raises(ConfigError, match="mean"):
        GammaDegree(None, 0.5).pmf(np.arange(3))
    with pytest.raises(ConfigError, match="n_trials"):
        BinomialDegree(3).pmf(np.arange(3))
