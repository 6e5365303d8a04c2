"""Connectivity rules: exact structure (degrees, autapses, duplicates), degree laws, and the full-size timings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from torchsnn.scaffold import (
    BinomialDegree,
    ConfigurationModel,
    FixedDegree,
    FixedInDegree,
    GammaDegree,
    LognormalDegree,
    PairwiseBernoulli,
    PoissonDegree,
    Wiring,
)


class Edges:
    """A wiring's edges as numpy arrays (pre, post), for the checks below."""

    def __init__(self, w: Wiring) -> None:
        self.pre, self.post, self.report = w.pre.numpy(), w.post.numpy(), w.report


def check_simple(wiring: Wiring, n_pre: int, n_post: int, square: bool) -> Edges:
    """CSR invariants (int64 row_ptr, int32 targets, rows strictly ascending), indices in range, no duplicate
    pairs, no self-connections in square blocks."""
    assert wiring.row_ptr.dtype == torch.int64 and wiring.post_index.dtype == torch.int32
    assert wiring.row_ptr.shape == (n_pre + 1,) and int(wiring.row_ptr[0]) == 0
    w = Edges(wiring)
    assert w.pre.min(initial=0) >= 0 and w.pre.max(initial=0) < n_pre and w.post.max(initial=0) < n_post
    keys = w.pre * n_post + w.post
    assert np.all(keys[1:] > keys[:-1])  # CSR order by pre, ascending post in each row, no duplicates
    if square:
        assert not np.any(w.pre == w.post)
    return w


def degree_chisquare(law, degrees: np.ndarray) -> float:
    """Chi-square p-value of observed degrees against a law, bins expecting >= 20 each (tails merged)."""
    k, p = law.support(1e-12)
    cuts = np.searchsorted(np.cumsum(p) * degrees.size, np.arange(20, degrees.size, 20))
    edges = np.unique(np.concatenate([[0], cuts[:-1] + 1]))  # first index of each bin
    exp_bins = np.add.reduceat(p, edges) * degrees.size
    obs = np.bincount(np.searchsorted(k[edges], degrees, side="right") - 1, minlength=edges.size)
    return float(stats.chisquare(obs, exp_bins * obs.sum() / exp_bins.sum()).pvalue)


@pytest.mark.parametrize(
    ("n_pre", "n_post", "square", "k"),
    [
        (2000, 2000, True, 100),
        (1500, 800, False, 60),
        (300, 300, True, 240),  # the last one: dense (complement)
    ],
)
def test_fixed_indegree_exact_and_uniform(n_pre: int, n_post: int, square: bool, k: int) -> None:
    rule = FixedInDegree(k)
    w = check_simple(rule.connect(n_pre, n_post, square, torch.Generator().manual_seed(1)), n_pre, n_post, square)
    assert np.all(np.bincount(w.post, minlength=n_post) == k)
    out = np.bincount(w.pre, minlength=n_pre)
    laws = rule.degree_laws(n_pre, n_post, square)
    assert laws.in_degree == FixedDegree(k) and laws.copula_rho is None and laws.r == 0.0
    assert degree_chisquare(laws.out_degree, out) > 1e-3  # uniform choice: out-degrees are exactly binomial


def test_fixed_indegree_autapses_when_allowed() -> None:
    w = Edges(FixedInDegree(100, allow_autapses=True).connect(1000, 1000, True, torch.Generator().manual_seed(2)))
    assert np.all(np.bincount(w.post, minlength=1000) == 100)
    assert 60 < np.sum(w.pre == w.post) < 140  # each post neuron picks itself with probability 0.1: mean 100, sd 9.5


@pytest.mark.parametrize("p", [0.0, 0.05, 0.7, 1.0])
def test_pairwise_bernoulli_counts(p: float) -> None:
    n = 1200
    rule = PairwiseBernoulli(p)
    w = check_simple(rule.connect(n, n, True, torch.Generator().manual_seed(3)), n, n, True)
    pairs = n * (n - 1)
    assert abs(w.pre.size - p * pairs) <= 5 * math.sqrt(pairs * p * (1 - p)) + 1e-9  # binomial: 5 sd
    if 0 < p < 1:
        laws = rule.degree_laws(n, n, True)
        assert laws.in_degree == BinomialDegree(p * (n - 1), n - 1)
        assert degree_chisquare(laws.in_degree, np.bincount(w.post, minlength=n)) > 1e-3
        assert degree_chisquare(laws.out_degree, np.bincount(w.pre, minlength=n)) > 1e-3


@pytest.mark.parametrize("law", [GammaDegree(50, 0.6), LognormalDegree(40, 0.9), PoissonDegree(30)], ids=repr)
def test_configuration_model_square(law) -> None:
    n = 3000
    rule = ConfigurationModel(law, r=0.3)
    w = check_simple(rule.connect(n, n, True, torch.Generator().manual_seed(4)), n, n, True)
    kin, kout = np.bincount(w.post, minlength=n), np.bincount(w.pre, minlength=n)
    rep = w.report
    assert kin.sum() == kout.sum() == rep["n_edges"] == w.pre.size  # degree sums were equalised
    lost = rep["self_loops_removed"] + rep["duplicates_removed"]
    assert lost <= 1e-3 * rep["n_edges"] and rep["duplicates_initial"] >= rep["duplicates_removed"]
    # stubs adjusted ~ |sum K - sum L| ~ sqrt(2 n (1 - r)) sd_K; 5 sd
    assert rep["stubs_adjusted"] < 5 * math.sqrt(2 * n * 0.7 * law.variance)
    se = math.sqrt(law.variance / n)  # realised degrees ~ the requested law: mean within 5 se, cv within 5 %
    assert abs(kin.mean() - law.mean) < 5 * se and abs(kout.mean() - law.mean) < 5 * se
    assert kin.std() / kin.mean() == pytest.approx(law.cv, rel=0.05)
    assert rep["r_requested"] == 0.3 and abs(rep["r_realised"] - 0.3) < 0.1  # sd of r at n = 3,000: ~0.02
    assert degree_chisquare(law, kin) > 1e-3  # in-degrees are the draws themselves


def test_configuration_model_rectangular_derives_out_mean() -> None:
    n_pre, n_post = 3000, 2000
    rule = ConfigurationModel(PoissonDegree(60))
    laws = rule.degree_laws(n_pre, n_post, False)
    assert laws.out_degree == PoissonDegree(40) and laws.copula_rho is None  # n_post * 60 = n_pre * 40
    w = check_simple(rule.connect(n_pre, n_post, False, torch.Generator().manual_seed(5)), n_pre, n_post, False)
    assert np.bincount(w.pre, minlength=n_pre).mean() == pytest.approx(40, abs=5 * math.sqrt(40 / n_pre))
    assert "r_realised" not in w.report
    binom = ConfigurationModel(BinomialDegree(60)).degree_laws(n_pre, n_post, False)
    assert binom.in_degree.n_trials == n_pre and binom.out_degree == BinomialDegree(40, n_post)


def test_wiring_is_reproducible_from_the_generator() -> None:
    a = ConfigurationModel(GammaDegree(20, 0.5), r=0.2).connect(500, 500, True, torch.Generator().manual_seed(9))
    b = ConfigurationModel(GammaDegree(20, 0.5), r=0.2).connect(500, 500, True, torch.Generator().manual_seed(9))
    assert torch.equal(a.row_ptr, b.row_ptr) and torch.equal(a.post_index, b.post_index)


def test_full_size_wiring() -> None:
    """N_E = 10,000 with fixed in-degree 1,000 (1e7 edges) and a configuration model with mean degree 500 wire
    completely (speed is measured by the benchmarks, never here)."""
    w = Edges(FixedInDegree(1000).connect(10_000, 10_000, True, torch.Generator().manual_seed(0)))
    assert w.pre.size == 10_000_000 and not np.any(w.pre == w.post)
    assert np.all(np.bincount(w.post, minlength=10_000) == 1000)
    w = ConfigurationModel(GammaDegree(500, 0.5), r=0.3).connect(10_000, 10_000, True, torch.Generator().manual_seed(0))
    assert w.report["n_edges"] > 0.99 * 5_000_000
